"""Form a Ray 2 cluster across a SageMaker training job's hosts, then run the user's script.

SageMaker starts the same entry point on every host of a job and tells each one who it is
(``SM_HOSTS``, ``SM_CURRENT_HOST``, ``SM_RESOURCE_CONFIG``, the same facts as
``/opt/ml/input/config/resourceconfig.json``). A Ray cluster needs one head and the others joined
to it, so this file is the job's entry point and the user's script stays an ordinary RLlib
script that calls ``ray.init()``:

* the head host (the first host, or the first host of ``CDK_SAGEMAKER_RL_RAY_HEAD_GROUP``)
  runs ``ray start --head``, waits until every host's node is alive (or fails at the deadline,
  naming the hosts that never joined), then runs the user's entry point with ``RAY_ADDRESS``
  set, and stops its Ray processes when the script ends, passing on the script's exit code;
* every other host resolves the head (retrying until the name resolves and the port answers),
  joins with ``ray start --address``, and exits 0 once the head's Ray is gone: the job's outcome
  is the head's. A host that cannot join fails the job with its own error;
* one host alone skips Ray's cluster start: the script's ``ray.init()`` starts Ray itself.

The library adds this file to the source bundle (the estimator sets ``sagemaker_program`` to it and
``CDK_SAGEMAKER_RL_ENTRY_POINT`` to the user's script), so it must run on any image with Python
3.9+ and Ray: standard library only, Ray imported only where it is needed, nothing relative.

Authentication must agree across a cluster: a joining node that does not send the head's token is
refused, and Ray 2.60 turns token auth on as soon as a token exists (a local ``ray.init()`` writes
one to ``~/.ray``). So with several hosts ``RAY_AUTH_MODE`` is set to the same value on every node,
in the launcher's own connection and in the script: the job's own ``RAY_AUTH_MODE`` (with
``RAY_AUTH_TOKEN``) when the user sets one in ``environment``, else ``disabled``, since the hosts of
a job share a private network (or the job's VPC). One host is left to Ray's defaults.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENTRY_POINT_ENV = "CDK_SAGEMAKER_RL_ENTRY_POINT"
HEAD_GROUP_ENV = "CDK_SAGEMAKER_RL_RAY_HEAD_GROUP"
TIMEOUT_ENV = "CDK_SAGEMAKER_RL_RAY_STARTUP_TIMEOUT"
PORT_ENV = "CDK_SAGEMAKER_RL_RAY_PORT"
#: Local mode only: ``{"algo-1": "127.0.0.2", ...}``, the loopback address of each emulated host
#: (on SageMaker the host names resolve through the job's DNS).
ADDRESSES_ENV = "CDK_SAGEMAKER_RL_HOST_ADDRESSES"
#: Local mode only: Ray's temp/session directory for this host (every emulated host shares /tmp).
TEMP_DIR_ENV = "CDK_SAGEMAKER_RL_RAY_TEMP_DIR"

DEFAULT_PORT = 6379
DEFAULT_TIMEOUT_SECONDS = 300.0
#: How often a joined host checks that the head is still there. The head is gone when its port
#: refuses connections this many times in a row (nothing listens: its Ray has stopped), or when
#: it has not answered at all for _HEAD_SILENT_SECONDS (its host is gone); a slow answer under
#: load or a short network blip is neither.
_HEAD_CHECK_SECONDS = 0.5
_HEAD_REFUSED_AFTER = 2
_HEAD_SILENT_SECONDS = 30.0
#: Ray's gcs_server and raylet outlive SIGTERM by seconds (measured: still there after 10 s), and
#: nothing of the job depends on their shutting down cleanly once the script has ended.
_STOP_GRACE_SECONDS = 1.0
_PREFIX = "[ray-launcher]"


class LauncherError(Exception):
    """The cluster could not be formed; the message is the job's failure reason."""


@dataclass(frozen=True)
class Cluster:
    """Who is who in this job, from the training contract."""

    hosts: list[str]
    current_host: str
    head_host: str
    addresses: dict[str, str]
    port: int
    timeout: float

    @property
    def is_head(self) -> bool:
        return self.current_host == self.head_host


def _log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{_PREFIX} {stamp} {message}", file=sys.stderr, flush=True)


def _resource_config(env: dict[str, str]) -> dict[str, Any]:
    """``SM_RESOURCE_CONFIG``, else the config file (some images set only the file)."""
    raw = env.get("SM_RESOURCE_CONFIG")
    if raw:
        loaded: dict[str, Any] = json.loads(raw)
        return loaded
    base = Path(env.get("SAGEMAKER_BASE_DIR", "/opt/ml"))
    path = base / "input" / "config" / "resourceconfig.json"
    if path.is_file():
        loaded = json.loads(path.read_text())
        return loaded
    return {}


def read_cluster(env: dict[str, str]) -> Cluster:
    """The hosts, this host and the head, as the training contract and the options say."""
    config = _resource_config(env)
    hosts = json.loads(env["SM_HOSTS"]) if env.get("SM_HOSTS") else config.get("hosts") or []
    current = env.get("SM_CURRENT_HOST") or config.get("current_host") or ""
    if not hosts or current not in hosts:
        raise LauncherError(
            f"the training contract names no usable hosts (SM_HOSTS={hosts!r}, "
            f"SM_CURRENT_HOST={current!r}): this launcher must run as a SageMaker training job's "
            "entry point"
        )
    head = sorted(hosts, key=_host_order)[0]
    head_group = env.get(HEAD_GROUP_ENV, "")
    if head_group:
        groups = {g.get("instance_group_name"): g for g in config.get("instance_groups") or []}
        group = groups.get(head_group)
        if group is None or not group.get("hosts"):
            raise LauncherError(
                f"{HEAD_GROUP_ENV}={head_group!r} names no instance group of this job "
                f"(groups: {', '.join(sorted(str(g) for g in groups)) or 'none'})"
            )
        head = sorted(group["hosts"], key=_host_order)[0]
    addresses = json.loads(env[ADDRESSES_ENV]) if env.get(ADDRESSES_ENV) else {}
    try:
        port = int(env.get(PORT_ENV) or DEFAULT_PORT)
        timeout = float(env.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS)
    except ValueError as error:
        raise LauncherError(f"bad launcher setting: {error}") from error
    return Cluster(sorted(hosts, key=_host_order), current, head, addresses, port, timeout)


def _host_order(host: str) -> tuple[int, str]:
    """algo-2 before algo-10: SageMaker numbers hosts from 1."""
    number = host.rsplit("-", 1)[-1]
    return (int(number), host) if number.isdigit() else (sys.maxsize, host)


def _resolve(host: str, cluster: Cluster, deadline: float) -> str:
    """The host's IP address, retrying until its name resolves (hosts come up at their pace)."""
    if host in cluster.addresses:
        return cluster.addresses[host]
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return socket.gethostbyname(host)
        except OSError as error:
            last = error
            time.sleep(1.0)
    raise LauncherError(
        f"{cluster.current_host}: the name {host} did not resolve within "
        f"{cluster.timeout:g} s ({last})"
    )


def _port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    return _probe(address, port, timeout) == "open"


def _probe(address: str, port: int, timeout: float = 1.0) -> str:
    """``open``, ``refused`` (the host answers, nothing listens) or ``silent`` (no answer)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "silent"


def _ray_command(python: str, *args: str) -> list[str]:
    # `python -m`, not the `ray` script: a venv's scripts carry its original path in their
    # shebang, and the job's interpreter is the one that has Ray.
    return [python, "-m", "ray.scripts.scripts", *args]


def _ray_env(env: dict[str, str]) -> dict[str, str]:
    ray_env = dict(env)
    ray_env.setdefault("RAY_AUTH_MODE", "disabled")
    ray_env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return ray_env


def _node_options(env: dict[str, str], address: str) -> list[str]:
    options = [f"--node-ip-address={address}", "--disable-usage-stats"]
    for name, option in (("SM_NUM_CPUS", "--num-cpus"), ("SM_NUM_GPUS", "--num-gpus")):
        value = env.get(name, "")
        if value.isdigit():
            options.append(f"{option}={value}")
    if env.get(TEMP_DIR_ENV):
        options.append(f"--temp-dir={env[TEMP_DIR_ENV]}")
    return options


class RayNode:
    """This host's Ray processes, started in a process group of their own so that they can be
    stopped without `ray stop`, which would stop every Ray node on the machine."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.group: int | None = None

    def start(self, args: list[str]) -> tuple[int, str]:
        """Run ``ray start`` in a new process group, which its daemons keep; return its exit
        code and output. One start per node: a retry stops the previous attempt first."""
        command = _ray_command(sys.executable, "start", *args)
        _log("running " + shlex.join(command))
        process = subprocess.Popen(
            command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            preexec_fn=os.setpgrp,
        )
        self.group = process.pid
        output, _ = process.communicate()
        return process.returncode, output

    def raylet_alive(self) -> bool:
        """Whether this node's raylet (the process that makes it a Ray node) still runs."""
        if self.group is None:
            return False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            command = stat[stat.find("(") + 1 : stat.rfind(")")]
            fields = stat[stat.rfind(")") + 1 :].split()
            if command == "raylet" and len(fields) > 2 and fields[2] == str(self.group):
                return True
        return False

    def stop(self) -> None:
        if self.group is None:
            return
        for sig, wait in ((signal.SIGTERM, _STOP_GRACE_SECONDS), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(self.group, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end and _group_alive(self.group):
                time.sleep(0.1)
        self.group = None


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


def _wait_for_nodes(cluster: Cluster, address: str, deadline: float) -> None:
    """Block until every host's node is alive in the cluster, or fail at the deadline."""
    import ray  # only the head needs Ray in this process

    ray.init(address=f"{address}:{cluster.port}", logging_level="WARNING", log_to_driver=False)
    try:
        expected = {_resolve(h, cluster, deadline): h for h in cluster.hosts}
        alive: set[str] = set()
        while True:
            alive = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
            if set(expected) <= alive:
                _log(f"all {len(expected)} nodes are alive: {', '.join(cluster.hosts)}")
                return
            if time.monotonic() >= deadline:
                missing = [f"{h} ({ip})" for ip, h in expected.items() if ip not in alive]
                raise LauncherError(
                    f"the Ray cluster did not form within {cluster.timeout:g} s: "
                    f"{len(alive & set(expected))} of {len(expected)} nodes joined the head "
                    f"{cluster.head_host} ({address}:{cluster.port}); never joined: "
                    + ", ".join(missing)
                )
            time.sleep(0.5)
    finally:
        ray.shutdown()


def _user_command(entry_point: str, argv: list[str]) -> list[str]:
    if entry_point.endswith(".py"):
        return [sys.executable, entry_point, *argv]
    return ["/bin/sh", "-c", shlex.join([f"./{entry_point}", *argv])]


def _run_user_script(entry_point: str, argv: list[str], env: dict[str, str]) -> int:
    """Run the script in the foreground, passing SIGTERM on (SageMaker's stop signal)."""
    _log("running the entry point: " + shlex.join(_user_command(entry_point, argv)))
    process = subprocess.Popen(_user_command(entry_point, argv), env=env)

    def forward(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        code = process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    # Killed by a signal: the shell's 128 + N (an OOM kill is 137), not Python's -N.
    return 128 - code if code < 0 else code


def run_head(cluster: Cluster, env: dict[str, str], entry_point: str, argv: list[str]) -> int:
    deadline = time.monotonic() + cluster.timeout
    address = _resolve(cluster.current_host, cluster, deadline)
    node = RayNode(env)
    try:
        code, output = node.start(
            ["--head", f"--port={cluster.port}", *_node_options(env, address)]
        )
        if code != 0:
            raise LauncherError(
                f"ray start --head failed on {cluster.current_host} ({address}:{cluster.port}), "
                f"exit code {code}:\n{_tail(output)}"
            )
        _log(f"Ray head is up on {cluster.current_host} ({address}:{cluster.port})")
        _wait_for_nodes(cluster, address, deadline)
        script_env = dict(env, RAY_ADDRESS=f"{address}:{cluster.port}")
        return _run_user_script(entry_point, argv, script_env)
    finally:
        node.stop()


def run_worker(cluster: Cluster, env: dict[str, str]) -> int:
    deadline = time.monotonic() + cluster.timeout
    address = _resolve(cluster.current_host, cluster, deadline)
    head = _resolve(cluster.head_host, cluster, deadline)
    target = f"{head}:{cluster.port}"
    node = RayNode(env)
    attempt_output = "the head's port never answered"
    try:
        joined = False
        while time.monotonic() < deadline:
            if not _port_open(head, cluster.port):
                time.sleep(1.0)
                continue
            code, output = node.start([f"--address={target}", *_node_options(env, address)])
            if code == 0:
                joined = True
                break
            attempt_output = f"ray start exit code {code}:\n{_tail(output)}"
            _log(f"could not join {target} yet ({attempt_output.splitlines()[0]}); retrying")
            node.stop()
            time.sleep(2.0)
        if not joined:
            raise LauncherError(
                f"{cluster.current_host} could not join the Ray head {cluster.head_host} "
                f"({target}) within {cluster.timeout:g} s: {attempt_output}"
            )
        _log(f"{cluster.current_host} ({address}) joined the Ray head at {target}")
        refused = 0
        last_answer = time.monotonic()
        stop = {"requested": False}

        def on_term(_signum: int, _frame: object) -> None:
            stop["requested"] = True

        signal.signal(signal.SIGTERM, on_term)
        while not stop["requested"]:
            state = _probe(head, cluster.port)
            if state != "silent":
                last_answer = time.monotonic()
            refused = refused + 1 if state == "refused" else 0
            if (
                refused >= _HEAD_REFUSED_AFTER
                or time.monotonic() - last_answer >= _HEAD_SILENT_SECONDS
            ):
                _log(f"the Ray head at {target} is gone: the job's script has ended")
                return 0
            if not node.raylet_alive():
                time.sleep(2 * _HEAD_CHECK_SECONDS)
                if _port_open(head, cluster.port):
                    # The head is still there, so this node died under the job (killed, out of
                    # memory): fail the job with this host's error rather than run on short.
                    raise LauncherError(
                        f"the Ray node of {cluster.current_host} ({address}) stopped while the "
                        f"head {cluster.head_host} was still running: its raylet exited "
                        "(see raylet.out/raylet.err in the Ray session logs of this host)"
                    )
            time.sleep(_HEAD_CHECK_SECONDS)
        return 143
    finally:
        node.stop()


def _write_failure(env: dict[str, str], message: str) -> None:
    """The failure file is what SageMaker reports as the job's FailureReason."""
    output_dir = env.get("SM_OUTPUT_DIR") or str(
        Path(env.get("SAGEMAKER_BASE_DIR", "/opt/ml")) / "output"
    )
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "failure").write_text(message)
    except OSError:
        pass


class _Terminated(Exception):
    """SIGTERM (SageMaker's stop) while the cluster forms: unwind, so this node's Ray stops."""


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    entry_point = env.get(ENTRY_POINT_ENV, "")
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if not entry_point:
            raise LauncherError(f"{ENTRY_POINT_ENV} is not set: the launcher has no script to run")
        cluster = read_cluster(env)
        if len(cluster.hosts) == 1:
            return _run_user_script(entry_point, args, env)
        env = _ray_env(env)
        os.environ.update(env)  # the launcher's own ray.init() on the head
        if cluster.is_head:
            return run_head(cluster, env, entry_point, args)
        return run_worker(cluster, env)
    except _Terminated:
        _log("stopped (SIGTERM) before the script ran")
        return 143
    except LauncherError as error:
        message = f"Ray launcher on {env.get('SM_CURRENT_HOST', '?')}: {error}"
        _log(message)
        _write_failure(env, message)
        return 1


if __name__ == "__main__":
    sys.exit(main())
