"""The job's processes: its environment when one is needed, then the entry point, supervised.

Each runs in a session of its own with every output line streamed to the job's log; a stop
request or the deadline sends SIGTERM to its process group and SIGKILL after the grace period, and
whatever is left in the session (daemons that made a process group of their own, such as Ray's)
is killed at the end, so nothing the job started outlives it. A failure is reported the way the
toolkit reports it (``ExecuteUserScriptError`` with the exit code, the error and the command).

A job of several hosts runs them together under :mod:`.host_network`, in a network namespace of
their own; a failure names the host it happened on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from subprocess import CalledProcessError
from typing import IO

from ..environments import job_python
from ..process_table import process_table
from .contract import Layout, host_address, to_cmd_args, training_env
from .control import FAILURE_REASON_MAX_CHARS, Guard, JobFailed, JobStopped
from .job import Host, JobSpec
from .job_log import JobLog

__all__ = ["install_requirements", "run_entry_point", "run_hosts"]

#: The launcher's local-mode settings (see cdk_sagemaker_rl/distributed/launcher.py).
HOST_ADDRESSES_ENV = "CDK_SAGEMAKER_RL_HOST_ADDRESSES"
RAY_TEMP_DIR_ENV = "CDK_SAGEMAKER_RL_RAY_TEMP_DIR"

_STDERR_TAIL_LINES = 200
_ERROR_MESSAGE_LINES = 20
_POLL_SECONDS = 0.1


def install_requirements(
    layout: Layout, python: str, environment: Mapping[str, str], log: JobLog, guard: Guard
) -> str:
    """The interpreter the job runs in: ``python`` if it satisfies code/requirements.txt, else
    the environment cached for those requirements (built with pip on first use), with the job's
    Environment applied (it may point pip at a private index, as it would in the container)."""
    requirements = layout.code_dir / "requirements.txt"
    if not requirements.is_file():
        return python

    def run(command: list[str], env: Mapping[str, str]) -> int:
        code, stderr = _run_process(command, cwd=layout.code_dir, env=env, log=log, guard=guard)
        if code != 0:
            raise JobFailed(
                "AlgorithmError: "
                + _process_error("InstallRequirementsError", code, stderr, command)
            )
        return code

    try:
        return job_python(requirements, python, environment, run, log.info)
    except CalledProcessError as error:  # pragma: no cover - run() raises JobFailed first
        raise JobFailed(f"AlgorithmError: InstallRequirementsError: {error}") from error


def _entry_point_command(program: str, python: str, args: list[str]) -> list[str]:
    """A ``.py`` entry point runs with the interpreter; anything else as a shell command."""
    if program.endswith(".py"):
        return [python, program, *args]
    return ["/bin/sh", "-c", shlex.join([f"./{program}", *args])]


def _host_env(job: JobSpec, layout: Layout, host: Host | None, args: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(training_env(job, layout, args, host))
    env.update(
        {
            "SAGEMAKER_BASE_DIR": str(layout.base),
            "TRAINING_JOB_NAME": job.name,
            "PYTHONUNBUFFERED": "1",  # the images set it: log lines arrive as they are printed
        }
    )
    env.update(job.environment)
    return env


def _script_failure(layout: Layout, message: str) -> JobFailed:
    """The script's own failure file if it left one (SageMaker reports that file, and the
    toolkit writes its message only when the script left none), else ``message``."""
    if layout.failure_file.is_file() and layout.failure_file.read_text(errors="replace").strip():
        return JobFailed(
            "AlgorithmError: " + layout.failure_file.read_text(errors="replace").strip()
        )
    layout.failure_file.write_text(message)
    return JobFailed("AlgorithmError: " + message)


def run_entry_point(job: JobSpec, layout: Layout, python: str, log: JobLog, guard: Guard) -> None:
    assert job.program is not None  # checked by fetch_source
    args = to_cmd_args(job.user_hyperparameters)
    env = _host_env(job, layout, None, args)
    command = _entry_point_command(job.program, python, args)
    if (layout.code_dir / "setup.py").is_file():
        log.info("setup.py found: local mode runs the entry point in place, without installing it")
    log.info(f"Invoking user script: {shlex.join(command)}")
    code, stderr = _run_process(command, cwd=layout.code_dir, env=env, log=log, guard=guard)
    if code == 0:
        return
    raise _script_failure(layout, _process_error("ExecuteUserScriptError", code, stderr, command))


def run_hosts(job: JobSpec, layouts: list[Layout], python: str, log: JobLog, guard: Guard) -> None:
    """Run the entry point on every host at once, in a private network namespace; the job fails
    with the first host that fails, and a stop stops them all."""
    assert job.program is not None  # checked by fetch_source
    unshare = shutil.which("unshare")
    if unshare is None:
        raise JobFailed(
            "ClientError: local mode runs a multi-host job's hosts in a network namespace of "
            "their own and needs util-linux `unshare` (Linux user namespaces) for it; run "
            "with one instance instead"
        )
    hosts = job.hosts
    args = to_cmd_args(job.user_hyperparameters)
    command = _entry_point_command(job.program, python, args)
    addresses = json.dumps({h.name: host_address(h) for h in hosts})
    with tempfile.TemporaryDirectory(prefix="rl-job-") as scratch:
        specs = []
        for host, layout in zip(hosts, layouts, strict=True):
            env = _host_env(job, layout, host, args)
            # Ray's socket paths must stay short (AF_UNIX): a short directory per host.
            env.setdefault(HOST_ADDRESSES_ENV, addresses)
            env.setdefault(RAY_TEMP_DIR_ENV, str(Path(scratch) / host.name))
            specs.append(
                {"name": host.name, "command": command, "cwd": str(layout.code_dir), "env": env}
            )
        result_file = Path(scratch) / "result.json"
        spec_file = Path(scratch) / "hosts.json"
        spec_file.write_text(
            json.dumps(
                {
                    "hosts": specs,
                    "result_file": str(result_file),
                    "grace_seconds": guard.grace_seconds,
                }
            )
        )
        hub = [
            unshare,
            "--user",
            "--map-root-user",
            "--net",
            sys.executable,
            # By path: it needs only the standard library, not this package on sys.path.
            str(Path(__file__).with_name("host_network.py")),
            str(spec_file),
        ]
        log.info(
            f"Invoking user script on {len(hosts)} hosts "
            f"({', '.join(f'{h.name}={host_address(h)}' for h in hosts)}, a private network "
            f"namespace): {shlex.join(command)}"
        )
        code, stderr = _run_process(
            hub, cwd=layouts[0].code_dir, env=os.environ, log=log, guard=guard
        )
        if code == 0:
            return
        failure = None
        if result_file.is_file():
            failure = json.loads(result_file.read_text()).get("failure")
        if not failure:
            raise JobFailed(
                "AlgorithmError: "
                + _process_error("HostNetworkError", code, stderr, hub)
                + " (the hosts' network namespace could not be set up: unprivileged user "
                "namespaces must be allowed, e.g. sysctl kernel.unprivileged_userns_clone=1 or "
                "kernel.apparmor_restrict_unprivileged_userns=0)"
            )
    host_name = failure["host"]
    layout = layouts[[h.name for h in hosts].index(host_name)]
    message = _process_error(
        f"ExecuteUserScriptError on {host_name}",
        int(failure["exit_code"]),
        list(failure["stderr_tail"]),
        command,
    )
    raise _script_failure(layout, message)


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


def _kill_session(session: int, rounds: int = 5) -> None:
    """SIGKILL every process left in ``session``: daemons the job put in process groups of
    their own (Ray's) are out of reach of the group signal but still in the job's session.
    Repeated until a scan finds none, since a dying parent may have just forked."""
    for _ in range(rounds):
        left = [p.pid for p in process_table() if p.session == session and p.state != "Z"]
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


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
        _kill_session(process.pid)
        process.wait()
        for reader in readers:
            reader.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
    return code, list(stderr_tail)
