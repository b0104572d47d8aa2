"""The emulator as a background process of its own: started (or reused) by ``deploy``, stopped by
``destroy``.

It outlives the command that started it (a new session), so that ``predict`` and ``play`` find the
deployed stack later; its pid and port are in the state directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from .messages import LocalModeError, say
from .state import State, alive
from .target import PORT_ENV, REGION, ROOT, aws_env

__all__ = ["start_emulator", "stop_emulator"]

READY_TIMEOUT = 90.0


def start_emulator(state: State) -> int:
    """Start the emulator in the background (or reuse the running one); return its pid."""
    pid = state.emulator_pid()
    if pid is not None:
        port = state.emulator_port()
        if port != state.port:
            raise LocalModeError(
                f"an emulator (pid {pid}) already runs for {state.root} on port {port}, not "
                f"{state.port}: run `python -m cdk_sagemaker_rl.local destroy` first."
            )
        say(f"emulator already running (pid {pid}) on http://localhost:{state.port}")
        return pid
    state.emulator_dir.mkdir(parents=True, exist_ok=True)
    ready_file = state.emulator_dir / "stdout.log"
    errors_file = state.emulator_dir / "stderr.log"
    with open(ready_file, "w") as out, open(errors_file, "w") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cdk_sagemaker_rl.local.emulator",
                "--port",
                str(state.port),
                "--state-dir",
                str(state.emulator_dir),
                "--region",
                REGION,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=aws_env(state.port),
            start_new_session=True,  # survives this command; `destroy` stops it
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if "emulator ready" in ready_file.read_text():
            say(f"emulator started (pid {process.pid}) on http://localhost:{state.port}")
            return process.pid
        if process.poll() is not None:
            detail = errors_file.read_text().strip() or "(no output)"
            raise LocalModeError(
                f"the emulator could not start on port {state.port}: {detail}. Choose another "
                f"port with {PORT_ENV}=<port> or --port."
            )
        time.sleep(0.2)
    _terminate(process.pid)
    raise LocalModeError(
        f"the emulator did not become ready within {READY_TIMEOUT:.0f} s; see {state.log_file}"
    )


def _terminate(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the emulator (it stops its training jobs and model servers), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop_emulator(state: State) -> bool:
    pid = state.emulator_pid()
    if pid is None:
        return False
    _terminate(pid)
    say(f"emulator stopped (pid {pid})")
    return True
