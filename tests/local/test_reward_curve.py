"""The reward curve a local training job leaves next to its outputs: from its log lines, with its
own MetricDefinitions, as a PNG; never a reason for the job to fail."""

from __future__ import annotations

import io
import json
import struct
import sys
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_sagemaker_rl.local.training_runner import reward_curve, run_training_job
from cdk_sagemaker_rl.local.training_runner.job import JobSpec
from cdk_sagemaker_rl.local.training_runner.job_log import JobLog

# What the toolkit defines for RL images (cdk_sagemaker_rl/training/config.py).
NUMBER = r"([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)"
DEFINITIONS = [
    {"Name": "episode_reward_max", "Regex": f"episode_reward_max: {NUMBER}"},
    {"Name": "episode_reward_mean", "Regex": f"episode_reward_mean: {NUMBER}"},
]
# What examples/cartpole/train.py prints after each rollout.
ROLLOUTS = [
    f"timesteps: {2048 * n} episode_reward_mean: {10.0 * n:.3f} episode_reward_max: {20.0 * n:.3f}"
    for n in range(1, 6)
]
BUCKET = "jobs"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, after checking its signature and header chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND"
    return int(width), int(height)


def job_spec(definitions: list[dict[str, str]]) -> JobSpec:
    return JobSpec.from_request(
        {
            "TrainingJobName": "curve-job",
            "AlgorithmSpecification": {"MetricDefinitions": definitions},
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        }
    )


def log_of(lines: list[str]) -> JobLog:
    log = JobLog(None)
    for line in lines:
        log.line(line)
    return log


def test_the_curve_is_a_png_of_the_preferred_metric_over_timesteps(tmp_path: Path) -> None:
    log = log_of(["Invoking user script", *ROLLOUTS, "trained 10240 timesteps in 3.0 s"])
    series = reward_curve.reward_series(log.lines, DEFINITIONS)
    assert series.metric == "episode_reward_mean"  # preferred, though not the first definition
    assert series.x == [2048.0, 4096.0, 6144.0, 8192.0, 10240.0]
    assert series.y == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert series.x_label == "timesteps"

    path = reward_curve.write(job_spec(DEFINITIONS), tmp_path, log, "Completed")
    assert path == tmp_path / "reward_curve.png"
    assert png_size(path) == (800, 450)
    assert log.lines[-1].endswith(
        f"reward curve: {path} (5 points of episode_reward_mean over timesteps; "
        "training status: Completed)"
    )


def test_without_timesteps_x_is_the_log_line_and_the_first_metric_is_used(tmp_path: Path) -> None:
    lines = ["start", "loss = 0.9", "noise", "loss = 0.5", "loss = 0.25"]
    series = reward_curve.reward_series(lines, [{"Name": "loss", "Regex": "loss = ([0-9.]+)"}])
    assert (series.metric, series.x_label) == ("loss", "log line number")
    assert series.x == [2.0, 4.0, 5.0]
    assert series.y == [0.9, 0.5, 0.25]


@pytest.mark.parametrize(
    ("definitions", "lines", "reason"),
    [
        ([], ROLLOUTS, "the job has no MetricDefinitions"),
        (DEFINITIONS, ["no metric here"], "no log line matched the Regex of metric"),
        ([{"Name": "bad", "Regex": "("}], ROLLOUTS, "the Regex of metric bad does not compile"),
    ],
)
def test_no_curve_is_logged_with_its_reason(
    tmp_path: Path, definitions: list[dict[str, str]], lines: list[str], reason: str
) -> None:
    log = log_of(lines)
    assert reward_curve.write(job_spec(definitions), tmp_path, log, "Completed") is None
    assert f"No reward curve: {reason}" in log.lines[-1]
    assert not (tmp_path / "reward_curve.png").exists()


def test_a_missing_matplotlib_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    log = log_of(ROLLOUTS)
    assert reward_curve.write(job_spec(DEFINITIONS), tmp_path, log, "Completed") is None
    assert "No reward curve: matplotlib is not installed" in log.lines[-1]
    assert "pip install -e '.[local]'" in log.lines[-1]


# --- through the runner -------------------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            yield client


def request_running(s3: Any, name: str, script: str) -> dict[str, Any]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = textwrap.dedent(script).encode()
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=BUCKET, Key=f"code/{name}.tar.gz", Body=buffer.getvalue())
    hyperparameters = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": f"s3://{BUCKET}/code/{name}.tar.gz",
    }
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingInputMode": "File", "MetricDefinitions": DEFINITIONS},
        "HyperParameters": {k: json.dumps(v) for k, v in hyperparameters.items()},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def test_a_job_leaves_its_curve_next_to_its_outputs_and_logs_where(s3: Any, tmp_path: Path) -> None:
    script = "".join(f"print({line!r}, flush=True)\n" for line in ROLLOUTS)
    result = run_training_job(request_running(s3, "curve-ok", script), s3=s3, work_root=tmp_path)
    assert result.status == "Completed", result.failure_reason
    path = tmp_path / "curve-ok" / "reward_curve.png"
    assert (tmp_path / "curve-ok" / "output.tar.gz").is_file()  # next to the job's tarballs
    png_size(path)
    assert any(
        line.endswith(
            f"reward curve: {path} (5 points of episode_reward_mean over "
            "timesteps; training status: Completed)"
        )
        for line in result.log_lines
    )
    uploaded = s3.get_object(Bucket=BUCKET, Key="out/curve-ok/output/reward_curve.png")
    assert uploaded["Body"].read() == path.read_bytes()


def test_a_failed_job_with_metrics_still_gets_its_curve(s3: Any, tmp_path: Path) -> None:
    script = (
        "".join(f"print({line!r}, flush=True)\n" for line in ROLLOUTS[:2])
        + 'raise ValueError("the reward went NaN")\n'
    )
    result = run_training_job(request_running(s3, "curve-nan", script), s3=s3, work_root=tmp_path)
    assert result.status == "Failed"
    assert "the reward went NaN" in (result.failure_reason or "")
    png_size(tmp_path / "curve-nan" / "reward_curve.png")
    assert any("training status: Failed" in line for line in result.log_lines)
