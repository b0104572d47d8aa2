"""Distributed RL in local mode: the RLlib example on 1 local host against 2, in one run.

Each run is a real local-mode training job (``training_runner.run_training_job``, S3 from moto)
of ``examples/rllib_cartpole`` in the environment cached for its requirements, started through
the Ray launcher exactly as the estimator bundles it. A job of one host gives Ray both cores; a
job of two hosts is two Ray nodes of one core each, in a private network namespace. The runs
alternate (1 host, 2 hosts, 1 host, ...) so a busy machine slows both alike.

Measured from the job's log as it streams: the time from the job's start to the first
``episode_reward_mean`` >= 450, the training seconds the script reports at that point, and for
two hosts the cluster start-up (from ``ray start --head`` to every node alive). The deterministic
evaluation of the exported policy (20 episodes, ``evaluation.json``) is in the notes.
"""

from __future__ import annotations

import io
import json
import os
import re
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "rllib_cartpole"
LAUNCHER = ROOT / "cdk_sagemaker_rl" / "distributed" / "launcher.py"
LAUNCHER_NAME = "cdk_sagemaker_rl_ray_launcher.py"
TARGET = 450.0
_REWARD = re.compile(r"episode_reward_mean: ([-+]?[0-9]*\.?[0-9]+)")
_SECONDS = re.compile(r"seconds: ([0-9.]+)")


@dataclass(frozen=True)
class TrainingRun:
    hosts: int
    job_seconds: float
    to_target_seconds: float | None
    training_seconds: float | None
    cluster_start_seconds: float | None
    eval_reward_mean: float | None


def _source_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("train.py", "requirements.txt"):
            tar.add(EXAMPLE / name, arcname=name)
        # Bundled from examples/cartpole (dependencies), as the reference app does.
        tar.add(ROOT / "examples" / "cartpole" / "inference.py", arcname="inference.py")
        tar.add(LAUNCHER, arcname=LAUNCHER_NAME)
    return buffer.getvalue()


def _request(name: str, hosts: int) -> dict[str, Any]:
    hyperparameters = {
        "sagemaker_program": LAUNCHER_NAME,
        "sagemaker_submit_directory": "s3://bench/code/sourcedir.tar.gz",
        "target_reward": TARGET,
        "max_iterations": 60,
        "seed": 0,
    }
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/benchmark",
        "HyperParameters": {k: json.dumps(v) for k, v in hyperparameters.items()},
        "OutputDataConfig": {"S3OutputPath": "s3://bench/out/"},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": hosts},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "Environment": {"CDK_SAGEMAKER_RL_ENTRY_POINT": "train.py"},
    }


def _evaluation(s3: Any, uri: str | None) -> float | None:
    if not uri:
        return None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        member = tar.extractfile("evaluation.json")
        if member is None:
            return None
        return float(json.load(member)["eval_reward_mean"])


def train_once(s3: Any, hosts: int, index: int, work_root: Path) -> TrainingRun:
    from cdk_sagemaker_rl.local.training_runner import run_training_job

    started = time.perf_counter()
    marks: dict[str, float] = {}
    training: list[float] = []

    def on_log(line: str) -> None:
        now = time.perf_counter() - started
        sys.stderr.write(f"  [{hosts} host{'s' if hosts > 1 else ''}] {line}\n")
        if "start --head" in line and "head" not in marks:
            marks["head"] = now
        if "nodes are alive" in line and "alive" not in marks:
            marks["alive"] = now
        reward = _REWARD.search(line)
        if reward and float(reward.group(1)) >= TARGET and "target" not in marks:
            marks["target"] = now
            seconds = _SECONDS.search(line)
            if seconds:
                training.append(float(seconds.group(1)))

    result = run_training_job(
        _request(f"bench-rllib-{hosts}h-{index}", hosts),
        s3=s3,
        work_root=work_root,
        on_log=on_log,
    )
    if result.status != "Completed":
        raise RuntimeError(f"the {hosts}-host job ended {result.status}: {result.failure_reason}")
    cluster = marks["alive"] - marks["head"] if {"head", "alive"} <= set(marks) else None
    return TrainingRun(
        hosts=hosts,
        job_seconds=time.perf_counter() - started,
        to_target_seconds=marks.get("target"),
        training_seconds=training[0] if training else None,
        cluster_start_seconds=cluster,
        eval_reward_mean=_evaluation(s3, result.output_artifacts),
    )


def measure(repeat: int) -> dict[int, list[TrainingRun]]:
    """``repeat`` jobs of each size, alternating; S3 is moto, the environment the cached one."""
    import boto3
    from moto import mock_aws

    from cdk_sagemaker_rl.local.environments import build_environment

    build_environment(EXAMPLE / "requirements.txt", log=lambda line: print(line, file=sys.stderr))
    runs: dict[int, list[TrainingRun]] = {1: [], 2: []}
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="benchmark", AWS_SECRET_ACCESS_KEY="benchmark")
    try:
        with mock_aws(), tempfile.TemporaryDirectory(prefix="bench-rllib-") as scratch:
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="bench")
            s3.put_object(Bucket="bench", Key="code/sourcedir.tar.gz", Body=_source_archive())
            for index in range(repeat):
                for hosts in (1, 2):
                    print(
                        f"RLlib example on {hosts} local host(s), run {index + 1}", file=sys.stderr
                    )
                    runs[hosts].append(train_once(s3, hosts, index, Path(scratch)))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return runs


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def rows(runs: Mapping[int, list[TrainingRun]], row: Callable[..., Any]) -> list[Any]:
    """The table rows (``row`` builds one: the benchmark's Row)."""
    one, two = (_median([r.to_target_seconds for r in runs[n]]) for n in (1, 2))
    details = {
        n: (
            f"median of {len(runs[n])} run(s); "
            f"job {_median([r.job_seconds for r in runs[n]]):.0f} s; "
            f"training {_fmt(_median([r.training_seconds for r in runs[n]]))} s of it; "
            f"eval (20 episodes of the exported policy) "
            f"{_fmt(_median([r.eval_reward_mean for r in runs[n]]))}"
        )
        for n in (1, 2)
    }
    result = [
        row(
            "RLlib PPO CartPole, 1 local host (2 CPUs): time to mean reward 450",
            f"{_fmt(one)} s",
            notes=details[1],
        ),
        row(
            "RLlib PPO CartPole, 2 local hosts (1 CPU each, Ray cluster): time to mean reward 450",
            f"{_fmt(two)} s",
            baseline=f"{_fmt(one)} s (1 host)",
            ratio=(two / one) if one and two else None,
            notes=details[2],
        ),
    ]
    start = _median([r.cluster_start_seconds for r in runs[2]])
    result.append(
        row(
            "Ray cluster start-up, 2 local hosts",
            f"{_fmt(start)} s",
            notes="from `ray start --head` to both nodes alive (launcher log)",
        )
    )
    return result


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
