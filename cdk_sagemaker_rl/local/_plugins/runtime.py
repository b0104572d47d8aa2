"""State shared by the emulator's plugins, and the helpers they all need.

moto keeps its backends in module globals, so the plugins patch moto process-wide and there can be
only one emulator per process. The plugins reach the running emulator through :func:`context`
instead of holding a reference, so that a patch installed once keeps working when a later
emulator (the next test module, say) replaces the first one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "LOG",
    "DummyCredentials",
    "EmulatorContext",
    "EmulatorStopping",
    "context",
    "set_context",
]

#: moto's default account: what every request signed with non-moto credentials lands in.
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

LOG = logging.getLogger("cdk_sagemaker_rl.local.emulator")

#: The access key pair handed to everything that talks to the emulator. moto maps unknown keys to
#: DEFAULT_ACCOUNT_ID; what matters is that these are never real credentials.
DummyCredentials = ("testing", "testing", "testing")


class EmulatorStopping(Exception):
    """Raised inside long waits (wait conditions, custom resources) when the emulator shuts down."""


class EmulatorContext:
    """Where the emulator listens, where it keeps state, and what it must clean up on stop."""

    def __init__(self, port: int, state_dir: Path, region: str = DEFAULT_REGION) -> None:
        self.port = port
        self.state_dir = state_dir
        self.region = region
        self.shutdown = threading.Event()
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._stoppers: list[Callable[[], None]] = []
        self._clients: dict[str, Any] = {}

    @property
    def endpoint_url(self) -> str:
        """The URL clients use. ``localhost``, not ``127.0.0.1``: moto reads S3 template URLs as
        path-style only for that host name (see docs in shared notes)."""
        return f"http://localhost:{self.port}"

    def aws_environment(self) -> dict[str, str]:
        """Environment that points an AWS SDK at the emulator with dummy credentials.

        Child processes (Lambda handlers) get this on top of their own environment, so that a
        handler can never reach real AWS even when the user's shell holds real credentials.
        """
        key, secret, token = DummyCredentials
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": token,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # A profile or config file could carry a different endpoint or credential process.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the emulator (cached: clients are thread-safe)."""
        with self._lock:
            cached = self._clients.get(service)
            if cached is not None:
                return cached
            import boto3
            from botocore.config import Config

            key, secret, token = DummyCredentials
            # A fresh session per client: boto3's default session is not thread-safe.
            session = boto3.session.Session(
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                aws_session_token=token,
                region_name=self.region,
            )
            created = session.client(
                service,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
            self._clients[service] = created
            return created

    def track(self, process: subprocess.Popen[bytes]) -> None:
        """Remember a child process so that :meth:`kill_children` can end it."""
        with self._lock:
            self._children.add(process)

    def untrack(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children.discard(process)

    def kill_children(self) -> None:
        """Kill the process group of every tracked child that is still running."""
        with self._lock:
            children = list(self._children)
            self._children.clear()
        for process in children:
            kill_process_group(process)

    def on_stop(self, stopper: Callable[[], None]) -> None:
        """Register a clean-up that :meth:`run_stoppers` calls when the emulator stops."""
        with self._lock:
            self._stoppers.append(stopper)

    def run_stoppers(self) -> None:
        with self._lock:
            stoppers = list(self._stoppers)
            self._stoppers.clear()
        for stopper in stoppers:
            try:
                stopper()
            except Exception:
                LOG.exception("clean-up on stop failed")

    def wait_for(
        self,
        done: Callable[[], bool],
        timeout: float | None,
        *,
        cancelled: threading.Event | None = None,
        poll: float = 0.25,
    ) -> bool:
        """Poll ``done`` until it is true (True), ``timeout`` passes (False), or the emulator stops
        or ``cancelled`` is set (EmulatorStopping). Waits of hours must stay interruptible."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if done():
                return True
            if self.shutdown.is_set():
                raise EmulatorStopping("the emulator is stopping")
            if cancelled is not None and cancelled.is_set():
                raise EmulatorStopping("the operation was cancelled")
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)


def kill_process_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL ``process`` and its group (children are started in their own session)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        LOG.warning("process %s did not exit after SIGKILL", process.pid)


_current: EmulatorContext | None = None


def set_context(value: EmulatorContext | None) -> None:
    global _current
    _current = value


def context() -> EmulatorContext:
    """The running emulator's context; a patched moto code path without one is a bug."""
    if _current is None:
        raise RuntimeError("the local emulator is not running in this process")
    return _current
