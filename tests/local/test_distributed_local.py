"""Multi-host jobs in local mode, and the Ray launcher that turns their hosts into one cluster.

The runner tests use plain scripts (a second each); the Ray tests run a real two-node Ray 2
cluster over loopback in the environment cached for examples/rllib_cartpole's requirements
(``make test`` builds it first; building it here would take minutes). Every job's hosts live in a
private network namespace, so nothing they open is reachable from outside 127.0.0.0/8.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cdk_sagemaker_rl.local.environments import build_environment
from cdk_sagemaker_rl.local.process_table import process_table
from cdk_sagemaker_rl.local.training_runner import TrainingJobResult, run_training_job
from tests.local.training_jobs import (
    make_request,
    read_tar,
    s3_fixture,
    s3_module_fixture,
    upload_source,
)

__all__ = ["s3_fixture", "s3_module_fixture"]  # fixtures used by name

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "cdk_sagemaker_rl" / "distributed" / "launcher.py"
RLLIB_EXAMPLE = REPO / "examples" / "rllib_cartpole"
#: The name the estimator gives the launcher in the source bundle.
LAUNCHER_NAME = "cdk_sagemaker_rl_ray_launcher.py"


def load_launcher() -> ModuleType:
    """The launcher as the bundle runs it: a file of its own, importing nothing of ours."""
    spec = importlib.util.spec_from_file_location("bundled_launcher", LAUNCHER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def groups_request(name: str, groups: list[tuple[str, int]], **kwargs: Any) -> dict[str, Any]:
    request = make_request(name, **kwargs)
    request["ResourceConfig"] = {
        "InstanceGroups": [
            {"InstanceGroupName": g, "InstanceType": "ml.c5.xlarge", "InstanceCount": n}
            for g, n in groups
        ],
        "VolumeSizeInGB": 1,
    }
    return request


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (the job's directories are in every one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def archive_names(s3: Any, uri: str | None) -> list[str]:
    assert uri is not None
    return sorted(read_tar(s3, uri))


HOST_SCRIPT = """
import json, os, socket
host = os.environ["SM_CURRENT_HOST"]
config = json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "resourceconfig.json")))
report = {
    "host": host,
    "hosts": json.loads(os.environ["SM_HOSTS"]),
    "group": os.environ["SM_CURRENT_INSTANCE_GROUP"],
    "config_host": config["current_host"],
    "config_groups": {g["instance_group_name"]: g["hosts"] for g in config["instance_groups"]},
    "channels": json.loads(os.environ["SM_CHANNELS"]),
    "cpus": int(os.environ["SM_NUM_CPUS"]),
    "interfaces": [name for _, name in socket.if_nameindex()],
    "addresses": json.loads(os.environ["CDK_SAGEMAKER_RL_HOST_ADDRESSES"]),
}
print("REPORT " + json.dumps(report, sort_keys=True))
with open(os.path.join(os.environ["SM_MODEL_DIR"], host + ".json"), "w") as out:
    json.dump(report, out)
"""


def reports(result: TrainingJobResult) -> dict[str, dict[str, Any]]:
    found = {}
    for line in result.log_lines:
        if "REPORT " in line:
            report = json.loads(line.split("REPORT ", 1)[1])
            assert line.startswith(f"[{report['host']}] ")  # each line says which host
            found[report["host"]] = report
    return found


def test_every_host_gets_its_tree_group_and_channels(s3: Any, tmp_path: Path) -> None:
    upload_source(s3, {"train.py": HOST_SCRIPT})
    s3.put_object(Bucket="jobs", Key="data/rollouts/seeds.txt", Body=b"1 2 3")
    request = groups_request(
        "hosts-groups",
        [("learner", 1), ("rollouts", 2)],
        channels={"seeds": "s3://jobs/data/rollouts/"},
    )
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["InstanceGroupNames"] = ["rollouts"]
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Completed", result.failure_reason
    found = reports(result)
    assert sorted(found) == ["algo-1", "algo-2", "algo-3"]
    cores = len(os.sched_getaffinity(0))
    for host, report in found.items():
        assert report["config_host"] == host
        assert report["hosts"] == ["algo-1", "algo-2", "algo-3"]
        assert report["config_groups"] == {"learner": ["algo-1"], "rollouts": ["algo-2", "algo-3"]}
        assert report["group"] == ("learner" if host == "algo-1" else "rollouts")
        # The channel goes to the groups it names only.
        assert report["channels"] == ([] if host == "algo-1" else ["seeds"])
        assert report["cpus"] == max(1, cores // 3)
        # The hosts' network has loopback only: nothing they open is reachable from outside.
        assert report["interfaces"] == ["lo"]
        assert report["addresses"] == {
            "algo-1": "127.0.0.2",
            "algo-2": "127.0.0.3",
            "algo-3": "127.0.0.4",
        }
    assert (
        tmp_path / "hosts-groups" / "algo-3" / "input" / "data" / "seeds" / "seeds.txt"
    ).is_file()
    assert not (tmp_path / "hosts-groups" / "algo-1" / "input" / "data" / "seeds").exists()
    # One model.tar.gz holds what every host saved.
    assert archive_names(s3, result.model_artifacts) == [
        "algo-1.json",
        "algo-2.json",
        "algo-3.json",
    ]


FAILING_HOST_SCRIPT = """
import os, sys, time
if os.environ["SM_CURRENT_HOST"] == "algo-2":
    raise RuntimeError("rollout host algo-2 lost its simulator")
print("algo-1 keeps training", flush=True)
time.sleep(120)
"""


def test_a_failing_host_fails_the_job_with_its_error_and_stops_the_others(
    s3: Any, tmp_path: Path
) -> None:
    upload_source(s3, {"train.py": FAILING_HOST_SCRIPT})
    request = make_request("hosts-failing")
    request["ResourceConfig"]["InstanceCount"] = 2
    started = time.monotonic()
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Failed"
    reason = result.failure_reason or ""
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError on algo-2:\nExitCode 1"), (
        reason
    )
    assert "RuntimeError: rollout host algo-2 lost its simulator" in reason
    # algo-1 was stopped, not waited for (it would have slept two minutes).
    assert time.monotonic() - started < 60
    assert not processes_mentioning(str(tmp_path))
    assert (tmp_path / "hosts-failing" / "algo-2" / "output" / "failure").is_file()


def test_a_stop_request_stops_every_host(s3: Any, tmp_path: Path) -> None:
    upload_source(s3, {"train.py": "import time\nprint('up', flush=True)\ntime.sleep(120)\n"})
    request = make_request("hosts-stopped")
    request["ResourceConfig"]["InstanceCount"] = 2
    stop = threading.Event()
    seen: list[str] = []

    def on_log(line: str) -> None:
        seen.append(line)
        if sum(line.endswith("] up") for line in seen) == 2:
            stop.set()

    result = run_training_job(request, s3=s3, work_root=tmp_path, on_log=on_log, stop_event=stop)
    assert (result.status, result.secondary_status) == ("Stopped", "Stopped")
    assert not processes_mentioning(str(tmp_path))


# --------------------------------------------------------------------------- the launcher alone
def test_launcher_picks_the_head_and_refuses_an_unknown_head_group() -> None:
    launcher = load_launcher()
    config = {
        "instance_groups": [
            {"instance_group_name": "rollouts", "hosts": ["algo-1", "algo-2"]},
            {"instance_group_name": "learner", "hosts": ["algo-3"]},
        ]
    }
    env = {
        "SM_HOSTS": json.dumps(["algo-10", "algo-2", "algo-1", "algo-3"]),
        "SM_CURRENT_HOST": "algo-2",
        "SM_RESOURCE_CONFIG": json.dumps(config),
    }
    cluster = launcher.read_cluster(env)
    assert (cluster.head_host, cluster.is_head, cluster.port) == ("algo-1", False, 6379)
    assert cluster.hosts == ["algo-1", "algo-2", "algo-3", "algo-10"]
    chosen = launcher.read_cluster({**env, launcher.HEAD_GROUP_ENV: "learner"})
    assert chosen.head_host == "algo-3"
    with pytest.raises(launcher.LauncherError, match="'gpu-learner' names no instance group"):
        launcher.read_cluster({**env, launcher.HEAD_GROUP_ENV: "gpu-learner"})


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_worker_whose_head_never_comes_up_fails_within_the_deadline(tmp_path: Path) -> None:
    port = free_port("127.0.0.2")  # nothing listens there once the socket is closed
    env = {
        **os.environ,
        "SM_HOSTS": json.dumps(["algo-1", "algo-2"]),
        "SM_CURRENT_HOST": "algo-2",
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "CDK_SAGEMAKER_RL_ENTRY_POINT": "train.py",
        "CDK_SAGEMAKER_RL_RAY_PORT": str(port),
        "CDK_SAGEMAKER_RL_RAY_STARTUP_TIMEOUT": "3",
        "CDK_SAGEMAKER_RL_HOST_ADDRESSES": json.dumps(
            {"algo-1": "127.0.0.2", "algo-2": "127.0.0.3"}
        ),
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(LAUNCHER)], env=env, capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    expected = (
        f"Ray launcher on algo-2: algo-2 could not join the Ray head algo-1 (127.0.0.2:{port}) "
        "within 3 s: the head's port never answered"
    )
    assert expected in done.stderr
    # The failure file is what SageMaker reports as the job's FailureReason.
    assert (tmp_path / "output" / "failure").read_text() == expected
    assert 3 <= elapsed < 15


KILLED_SCRIPT = """
import os, signal
print("auth mode:", os.environ.get("RAY_AUTH_MODE", "Ray's default"), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_one_host_runs_the_script_directly_with_rays_defaults(tmp_path: Path) -> None:
    """No cluster to form: the script itself, its auth left to Ray (a local ray.init() turns
    token auth on); a script killed by a signal exits as a shell reports it (137 for SIGKILL,
    as after an out-of-memory kill), not with Python's -9."""
    (tmp_path / "train.py").write_text(KILLED_SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_AUTH")}
    env.update(
        {
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "CDK_SAGEMAKER_RL_ENTRY_POINT": "train.py",
        }
    )
    done = subprocess.run(
        [sys.executable, str(LAUNCHER)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 137
    assert "auth mode: Ray's default" in done.stdout
    assert "start --head" not in done.stderr


# ------------------------------------------------------------------------------ a real cluster
@pytest.fixture(scope="module")
def ray_environment() -> Iterator[str]:
    """The environment local mode uses for the RLlib example (built by `make test` first)."""
    yield str(build_environment(RLLIB_EXAMPLE / "requirements.txt", log=lambda _line: None))


def upload_ray_source(s3: Any, files: dict[str, str]) -> None:
    """The files, the launcher as the estimator bundles it, and the example's requirements (so
    that the job runs in the environment local mode keeps for them)."""
    upload_source(
        s3,
        {
            "requirements.txt": (RLLIB_EXAMPLE / "requirements.txt").read_text(),
            **files,
            LAUNCHER_NAME: LAUNCHER.read_text(),
        },
    )


def ray_request(name: str, hosts: int, **kwargs: Any) -> dict[str, Any]:
    request = make_request(
        name,
        program=LAUNCHER_NAME,
        environment={
            "CDK_SAGEMAKER_RL_ENTRY_POINT": "train.py",
            "CDK_SAGEMAKER_RL_RAY_STARTUP_TIMEOUT": "90",
        },
        **kwargs,
    )
    request["ResourceConfig"]["InstanceCount"] = hosts
    return request


def test_two_hosts_form_a_ray_cluster_and_train_rllib(
    s3: Any, tmp_path: Path, ray_environment: str
) -> None:
    """The RLlib example, a few iterations, on a two-node Ray cluster: one host each."""
    upload_ray_source(
        s3,
        {
            "train.py": (RLLIB_EXAMPLE / "train.py").read_text(),
            # Bundled from examples/cartpole (dependencies), as the reference app does.
            "inference.py": (REPO / "examples" / "cartpole" / "inference.py").read_text(),
        },
    )
    request = ray_request(
        "ray-rllib",
        2,
        hyperparameters={"max_iterations": 2, "target_reward": 1000, "eval_episodes": 1},
        max_runtime=240,
    )
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    log = "\n".join(result.log_lines)
    assert result.status == "Completed", f"{result.failure_reason}\n{log[-3000:]}"
    assert "all 2 nodes are alive: algo-1, algo-2" in log
    assert "[algo-2] [ray-launcher]" in log and "joined the Ray head at 127.0.0.2:6379" in log
    assert "ray nodes alive: 2" in log  # what the script itself saw
    assert sum("episode_reward_mean:" in line for line in result.log_lines) >= 2
    names = archive_names(s3, result.model_artifacts)
    assert "code/inference.py" in names, names
    assert "evaluation.json" in archive_names(s3, result.output_artifacts)
    # No Ray process (nor anything else of the job) outlives it.
    assert not processes_mentioning(str(tmp_path))
    # The hosts' Ray session directories are in every Ray process's command line.
    (ray_dirs,) = set(re.findall(r"--temp-dir=(/tmp/rl-job-[^/ ]+)/", log))
    assert not processes_mentioning(ray_dirs)


WAITING_SCRIPT = """
import time
print("head script running", flush=True)
time.sleep(120)
"""


def test_a_worker_whose_ray_node_dies_fails_the_job_with_its_error(
    s3: Any, tmp_path: Path, ray_environment: str
) -> None:
    upload_ray_source(s3, {"train.py": WAITING_SCRIPT})
    killed: list[int] = []

    def on_log(line: str) -> None:
        # Once both are in the cluster, kill algo-2's raylet, as the OOM killer would.
        if "joined the Ray head" in line and not killed:
            ours = set(processes_mentioning("/algo-2/"))
            for entry in process_table():
                if entry.pid in ours and entry.command == "raylet":
                    os.kill(entry.pid, 9)
                    killed.append(entry.pid)

    result = run_training_job(
        ray_request("ray-worker-dies", 2, max_runtime=180), s3=s3, work_root=tmp_path, on_log=on_log
    )
    assert killed, "\n".join(result.log_lines[-30:])
    assert result.status == "Failed"
    reason = result.failure_reason or ""
    assert reason.startswith(
        "AlgorithmError: Ray launcher on algo-2: the Ray node of algo-2 (127.0.0.3) stopped "
        "while the head algo-1 was still running"
    ), reason
    assert not processes_mentioning(str(tmp_path))
    log = "\n".join(result.log_lines)
    (ray_dirs,) = set(re.findall(r"--temp-dir=(/tmp/rl-job-[^/ ]+)/", log))
    assert not processes_mentioning(ray_dirs)
