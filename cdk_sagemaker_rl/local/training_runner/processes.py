"""The job's processes: ``pip install`` when needed, then the entry point, each supervised.

Each runs in its own process group with every output line streamed to the job's log; a stop
request or the deadline sends SIGTERM to the whole group and SIGKILL after the grace period, and
nothing the job started outlives it. A failure is reported the way the toolkit reports it
(``ExecuteUserScriptError`` with the exit code, the error and the command).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from ..requirements import check_requirements_with
from .contract import Layout, to_cmd_args, training_env
from .control import FAILURE_REASON_MAX_CHARS, Guard, JobFailed, JobStopped
from .job import JobSpec
from .job_log import JobLog

__all__ = ["install_requirements", "run_entry_point"]

_STDERR_TAIL_LINES = 200
_ERROR_MESSAGE_LINES = 20
_POLL_SECONDS = 0.1


def install_requirements(
    layout: Layout, python: str, environment: Mapping[str, str], log: JobLog, guard: Guard
) -> None:
    """pip install code/requirements.txt unless satisfied, with the job's Environment applied
    (it may point pip at a private index, as it would in the container)."""
    requirements = layout.code_dir / "requirements.txt"
    if not requirements.is_file():
        return
    env = {**os.environ, **environment}
    missing = check_requirements_with(python, requirements, env)
    if not missing:
        log.info(f"requirements.txt is already satisfied by {python}: nothing to install")
        return
    log.info(f"Installing requirements.txt with pip (not satisfied: {'; '.join(missing)})")
    command = [python, "-m", "pip", "install", "-r", "requirements.txt"]
    code, stderr = _run_process(command, cwd=layout.code_dir, env=env, log=log, guard=guard)
    if code != 0:
        raise JobFailed(
            "AlgorithmError: " + _process_error("InstallRequirementsError", code, stderr, command)
        )


def _entry_point_command(program: str, python: str, args: list[str]) -> list[str]:
    """A ``.py`` entry point runs with the interpreter; anything else as a shell command."""
    if program.endswith(".py"):
        return [python, program, *args]
    return ["/bin/sh", "-c", shlex.join([f"./{program}", *args])]


def run_entry_point(job: JobSpec, layout: Layout, python: str, log: JobLog, guard: Guard) -> None:
    assert job.program is not None  # checked by fetch_source
    args = to_cmd_args(job.user_hyperparameters)
    env = dict(os.environ)
    env.update(training_env(job, layout, args))
    env.update(
        {
            "SAGEMAKER_BASE_DIR": str(layout.base),
            "TRAINING_JOB_NAME": job.name,
            "PYTHONUNBUFFERED": "1",  # the images set it: log lines arrive as they are printed
        }
    )
    env.update(job.environment)
    command = _entry_point_command(job.program, python, args)
    if (layout.code_dir / "setup.py").is_file():
        log.info("setup.py found: local mode runs the entry point in place, without installing it")
    log.info(f"Invoking user script: {shlex.join(command)}")
    code, stderr = _run_process(command, cwd=layout.code_dir, env=env, log=log, guard=guard)
    if code == 0:
        return
    if layout.failure_file.is_file() and layout.failure_file.read_text(errors="replace").strip():
        # The script explained its own failure: SageMaker reports that file, as the toolkit
        # writes its message only when the script left none.
        raise JobFailed(
            "AlgorithmError: " + layout.failure_file.read_text(errors="replace").strip()
        )
    message = _process_error("ExecuteUserScriptError", code, stderr, command)
    layout.failure_file.write_text(message)
    raise JobFailed("AlgorithmError: " + message)


def _process_error(kind: str, code: int, stderr: list[str], command: list[str]) -> str:
    """The toolkit's message for a failed process: kind, exit code, the error, the command."""
    lines = [line for line in stderr if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("Traceback (most recent call last)"):
            lines = lines[index:]
            break
    error = "\n".join(lines[-_ERROR_MESSAGE_LINES:])
    head = f'{kind}:\nExitCode {code}\nErrorMessage "'
    tail = f'"\nCommand "{shlex.join(command)}", exit code: {code}'
    room = FAILURE_REASON_MAX_CHARS - len("AlgorithmError: ") - len(head) - len(tail)
    if len(error) > room:
        error = "..." + error[-max(room - 3, 0) :]
    return head + error + tail


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _run_process(
    command: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: JobLog,
    guard: Guard,
) -> tuple[int, list[str]]:
    """Run ``command`` in its own process group; return its exit code and the tail of its stderr.

    Every line of stdout and stderr goes to the log as it arrives. A stop request or the deadline
    sends SIGTERM to the whole group, then SIGKILL after the grace period, and raises JobStopped.
    On every way out, whatever is left of the group is killed.
    """
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)

    def pump(stream: IO[str], keep: deque[str] | None) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            log.line(line)
            if keep is not None:
                keep.append(line)

    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    readers = [
        threading.Thread(target=pump, args=(process.stdout, None), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, stderr_tail), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        while True:
            try:
                code = process.wait(timeout=_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            reason = guard.reason_to_stop()
            if reason is not None:
                log.info(f"{reason}: sending SIGTERM to the job's processes")
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=guard.grace_seconds)
                except subprocess.TimeoutExpired:
                    log.info(f"Still running after {guard.grace_seconds:g} s: sending SIGKILL")
                raise JobStopped(reason)
    finally:
        _signal_group(process, signal.SIGKILL)
        process.wait()
        for reader in readers:
            reader.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
    return code, list(stderr_tail)
