"""Fixtures for local-mode tests: a local emulator process on a free port.

The emulator runs as a subprocess (``python -m cdk_sagemaker_rl.local.emulator``), never in the
test process: its plugins patch moto for the whole process, which would change the behaviour of
tests that use moto's in-process mocks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Dummy credentials: the emulator accepts anything, and real ones must never be needed.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class EmulatorProcess:
    """A running emulator subprocess and how to talk to it."""

    port: int
    state_dir: Path
    process: subprocess.Popen[bytes]
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def output_path(self) -> Path:
        """The process's stdout and stderr."""
        return self.state_dir / "process.out"

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (an AWS CLI, the cdk CLI) that should use the emulator."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {**clean, **DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self, service: str) -> Any:
        """A boto3 client on the emulator (cached per service)."""
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.session.Session().client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=DUMMY_AWS_ENV["AWS_REGION"],
                aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            )
        return self._clients[service]

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM the emulator and wait for it; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def spawn_emulator(
    state_dir: Path, port: int | None = None, *, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m cdk_sagemaker_rl.local.emulator`` without waiting for it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", **(extra_env or {})}
    with (state_dir / "process.out").open("ab") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cdk_sagemaker_rl.local.emulator",
                "--port",
                str(port if port is not None else free_port()),
                "--state-dir",
                str(state_dir),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _bound_port(state_dir: Path, pid: int) -> int | None:
    """The port the emulator ``pid`` listens on, once it has written ``emulator.json``."""
    try:
        info = json.loads((state_dir / "emulator.json").read_text())
    except (OSError, ValueError):
        return None
    return int(info["port"]) if info.get("pid") == pid else None


def start_emulator(state_dir: Path, *, timeout: float = 120) -> EmulatorProcess:
    """Start an emulator on a free port and wait until it answers ``/_local/health``.

    The emulator binds port 0 itself and reports the port it got: a port picked here and bound
    later could be taken meanwhile by another process of a busy machine.
    """
    process = spawn_emulator(state_dir, 0)
    emulator = EmulatorProcess(0, state_dir, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = emulator.output_path.read_text(errors="replace")
            raise RuntimeError(f"the emulator exited with {process.returncode}:\n{output}")
        emulator.port = emulator.port or _bound_port(state_dir, process.pid) or 0
        if emulator.port:
            try:
                with urllib.request.urlopen(f"{emulator.endpoint_url}/_local/health", timeout=5):
                    return emulator
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.1)
    emulator.stop()
    raise RuntimeError(f"the emulator did not answer within {timeout} s")


@pytest.fixture(scope="module")
def local_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator process per test module, stopped (SIGTERM) at the end of the module."""
    emulator = start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield emulator
    finally:
        emulator.stop()
