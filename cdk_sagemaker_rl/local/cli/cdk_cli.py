"""The real ``cdk`` CLI, run against the emulator, with the training log shown while it waits.

A deploy waits for training inside the CLI (the stack's custom resource), for many minutes; the
training jobs' reward lines are shown meanwhile, and a watchdog stops the CLI when the emulator
dies or the deploy takes too long, instead of letting it retry against a dead endpoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .messages import LocalModeError
from .state import State, alive
from .target import ROOT, aws_env

__all__ = ["SYNTHESIZE", "cdk_command", "run_cdk"]

CDK_TIMEOUT = 45 * 60.0


def cdk_command(*args: str) -> list[str]:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        raise LocalModeError(
            f"the aws-cdk CLI is not installed ({cdk} is missing): run `npm ci` in {ROOT} "
            "(or `make demo`)."
        )
    return [str(cdk), *args]


#: ``run_cdk``'s default app: the reference app, synthesized by the CLI.
SYNTHESIZE = "synthesize"


def run_cdk(
    state: State,
    args: Sequence[str],
    *,
    emulator_pid: int | None,
    show: bool = True,
    app: str | None = SYNTHESIZE,
) -> tuple[int, list[str]]:
    """Run the CLI against the emulator, streaming its output and the training log.

    ``app`` is :data:`SYNTHESIZE` (the reference app, synthesized into ``state.cdk_out``), a cloud
    assembly directory to read instead of synthesizing, or None for no app at all: the CLI then
    runs outside the project, where no ``cdk.json`` names one (``cdk bootstrap`` of an explicit
    environment synthesizes the app only to look for more environments).
    """
    env = aws_env(state.port)
    cwd = ROOT
    if app == SYNTHESIZE:
        options = [
            *("--app", f"{sys.executable} app.py", "--output", str(state.cdk_out)),
            *("--context", "target=local", "--context", "environment=dev"),
        ]
    elif app is not None:
        options = ["--app", app]
    else:
        options = []
        cwd = state.no_app_dir
        cwd.mkdir(parents=True, exist_ok=True)
    command = cdk_command(*args, *options, "--no-notices", "--no-version-reporting")
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    stop_tail = threading.Event()
    tail = threading.Thread(
        target=_tail_training_log, args=(state.training_log, stop_tail), daemon=True
    )
    tail.start()
    watchdog_reason: list[str] = []
    finished = threading.Event()

    def watchdog() -> None:
        started = time.monotonic()
        # Woken at once when the CLI exits: no half-second sleep left to join after every call.
        while not finished.wait(0.5) and process.poll() is None:
            if emulator_pid is not None and not alive(emulator_pid):
                watchdog_reason.append(
                    f"the emulator (pid {emulator_pid}) died during the deploy; its log: "
                    f"{state.log_file}"
                )
            elif time.monotonic() - started > CDK_TIMEOUT:
                watchdog_reason.append(f"cdk did not finish within {CDK_TIMEOUT:.0f} s")
            if watchdog_reason:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                return

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        lines.append(line)
        if show and line.strip():
            print(f"  cdk | {line}", flush=True)
    code = process.wait()
    finished.set()
    stop_tail.set()
    tail.join(timeout=2)
    guard.join(timeout=2)
    if not watchdog_reason and emulator_pid is not None and not alive(emulator_pid):
        # cdk may notice the dead endpoint before the watchdog does: say what really happened.
        watchdog_reason.append(
            f"the emulator (pid {emulator_pid}) died during the deploy; its log: {state.log_file}"
        )
    if watchdog_reason:
        raise LocalModeError(watchdog_reason[0])
    return code, lines


_REWARD = re.compile(r"episode_reward_mean: ([-+0-9.eE]+)")
#: Lines shown besides the reward: failures, the job's status, and where its reward curve is.
_SHOWN = re.compile(r"Traceback|Error|(?i:status|reward curve)")


def _tail_training_log(path: Path, stop: threading.Event) -> None:
    """Show the training jobs' log lines (reward as it trains) while cdk waits for them."""
    position = path.stat().st_size if path.exists() else 0
    while True:
        stopping = stop.is_set()  # read once more after the stop: nothing written is lost
        if path.exists():
            with open(path, errors="replace") as handle:
                handle.seek(position)
                for line in handle:
                    text = line.rstrip()
                    match = _REWARD.search(text)
                    if match or _SHOWN.search(text):
                        print(f"  training | {text}", flush=True)
                position = handle.tell()
        if stopping:
            return
        stop.wait(0.5)
