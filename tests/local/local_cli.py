"""Running the local-mode CLI from tests: a deploy on a free port, and the processes it leaves.

Shared by the end-to-end tests (tests/local/test_local_mode.py, test_serving_updates.py), which
run ``python -m cdk_sagemaker_rl.local`` as a user would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local(
    state: Path, port: int, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cdk_sagemaker_rl.local",
            *args,
            "--state-dir",
            str(state),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def deploy(state: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``local ... deploy`` on a free port; the port is picked again if another process took it
    before the emulator could bind it (a busy machine runs other servers). Returns the port."""
    for _ in range(3):
        port = free_port()
        result = local(state, port, "deploy", *args)
        if not (result.returncode == 1 and f"port {port} on 127.0.0.1 is in use" in result.stderr):
            break
    return result, port


def processes_using(state: Path) -> list[str]:
    """Command lines of live processes that mention the state directory (emulator, servers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(state) in cmdline and status != "Z":
            found.append(cmdline)
    return found


def wait_until_gone(state: Path, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = processes_using(state)
        if not left:
            return []
        time.sleep(0.5)
    return processes_using(state)
