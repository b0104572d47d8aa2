"""examples/cartpole end to end: trained by the local training runner, served by the model server.

The training budget is tiny (2,048 steps): this proves the contract (hyperparameters, metric lines,
model.tar.gz layout, serving), not the policy's quality; README.md gives the measured full run.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import random
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import torch
from moto import mock_aws

from cdk_sagemaker_rl.local.model_server import LocalModelServer
from cdk_sagemaker_rl.local.training_runner import TrainingJobResult, run_training_job

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cartpole"
BUCKET = "rl-artifacts"
# The RL estimator's default Ray metric definition (rl-facts.md).
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8-cpu-py312"
EPISODE_REWARD_MEAN = re.compile(r"episode_reward_mean: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)")


def sourcedir_tar_gz() -> bytes:
    """The example's files at the archive root, as the SDK packs a source_dir."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("train.py", "inference.py", "requirements.txt", "README.md"):
            tar.add(EXAMPLE / name, arcname=name)
    return buffer.getvalue()


def training_request(name: str, hyperparameters: dict[str, Any], **channels: str) -> dict[str, Any]:
    hps = {
        **hyperparameters,
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": f"s3://{BUCKET}/source/sourcedir.tar.gz",
        "sagemaker_container_log_level": 20,
        "sagemaker_estimator": "RLEstimator",
    }
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": "episode_reward_mean", "Regex": EPISODE_REWARD_MEAN.pattern}
            ],
        },
        "HyperParameters": {k: json.dumps(v) for k, v in hps.items()},
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            }
            for channel, uri in channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/jobs"},
        "ResourceConfig": {
            "InstanceType": "ml.c5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def tar_members(s3: Any, uri: str) -> dict[str, bytes]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key="source/sourcedir.tar.gz", Body=sourcedir_tar_gz())
            yield client


@pytest.fixture(scope="module")
def trained(s3: Any, tmp_path_factory: pytest.TempPathFactory) -> TrainingJobResult:
    hyperparameters = {"total_timesteps": 2048, "n_steps": 512, "eval_episodes": 2, "seed": 1}
    return run_training_job(
        training_request("cartpole-tiny", hyperparameters),
        s3=s3,
        work_root=tmp_path_factory.mktemp("jobs"),
    )


def test_training_completes_with_scrapable_metrics(trained: TrainingJobResult) -> None:
    assert trained.status == "Completed", trained.failure_reason
    # The pinned requirements are what the venv holds: nothing is pip-installed.
    assert any("already satisfied" in line for line in trained.log_lines)
    rewards = [
        float(m.group(1)) for line in trained.log_lines if (m := EPISODE_REWARD_MEAN.search(line))
    ]
    assert len(rewards) == 4  # one per rollout: 2048 steps / 512
    assert all(reward > 0 for reward in rewards)


def test_model_tar_gz_has_the_pytorch_serving_layout(s3: Any, trained: TrainingJobResult) -> None:
    assert trained.model_artifacts == f"s3://{BUCKET}/jobs/cartpole-tiny/output/model.tar.gz"
    members = tar_members(s3, trained.model_artifacts)
    assert {
        "policy.pt",
        "policy.json",
        "model.zip",
        "code/inference.py",
        "code/requirements.txt",
    } <= set(members)
    assert members["code/inference.py"] == (EXAMPLE / "inference.py").read_bytes()
    spec = json.loads(members["policy.json"])
    assert (spec["obs_dim"], spec["n_actions"], spec["env_id"]) == (4, 2, "CartPole-v1")


def test_evaluation_lands_in_output_tar_gz(s3: Any, trained: TrainingJobResult) -> None:
    evaluation = json.loads(tar_members(s3, trained.output_artifacts or "")["evaluation.json"])
    assert evaluation["episodes"] == 2
    assert len(evaluation["rewards"]) == 2
    assert 1 <= evaluation["mean_reward"] <= 500


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_served_model_answers_actions(s3: Any, trained: TrainingJobResult) -> None:
    with LocalModelServer(trained.model_artifacts or "", s3=s3) as server:
        url = server.url + "/invocations"
        batch = {"instances": [[0.0, 0.0, 0.0, 0.0], [0.02, 0.4, -0.05, -0.6]]}
        status, body = post(url, json.dumps(batch).encode())
        assert status == 200, body
        predictions = json.loads(body)["predictions"]
        assert len(predictions) == 2 and set(predictions) <= {0, 1}

        status, body = post(url, b"[0.0, 0.0, 0.0, 0.0]")
        assert status == 200 and json.loads(body)["predictions"] == predictions[:1]

        status, body = post(url, b"0,0,0,0\n0.02,0.4,-0.05,-0.6\n", "text/csv")
        assert status == 200 and json.loads(body)["predictions"] == predictions

        status, body = post(url, b'{"instances": [[1, 2, 3]]}')
        assert status == 500
        assert body.splitlines()[0].startswith("expected observations of shape (4,) or (N, 4)")


def test_pretrained_channel_continues_training(
    s3: Any, trained: TrainingJobResult, tmp_path: Path
) -> None:
    request = training_request(
        "cartpole-continued",
        {"total_timesteps": 256, "n_steps": 256, "eval_episodes": 1},
        pretrained=trained.model_artifacts or "",
    )
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Completed", result.failure_reason
    assert any(line.startswith("continuing from ") for line in result.log_lines)
    evaluation = json.loads(tar_members(s3, result.output_artifacts or "")["evaluation.json"])
    assert evaluation["timesteps"] == 2048 + 512  # counted on from the first job (whole rollouts)


def capture_line(observations: list[list[float]], actions: list[int], encoding: str) -> str:
    """One record exactly as SageMaker data capture writes it."""

    def side(body: dict[str, Any], mode: str) -> dict[str, str]:
        text = json.dumps(body)
        if encoding == "BASE64":
            text = base64.b64encode(text.encode()).decode("ascii")
        return {
            "observedContentType": "application/json",
            "mode": mode,
            "data": text,
            "encoding": encoding,
        }

    return json.dumps(
        {
            "captureData": {
                "endpointInput": side({"instances": observations}, "INPUT"),
                "endpointOutput": side({"predictions": actions}, "OUTPUT"),
            },
            "eventMetadata": {"eventId": "0", "inferenceTime": "2025-01-02T03:04:05Z"},
            "eventVersion": "0",
        }
    )


def test_experience_channel_clones_the_captured_actions(
    s3: Any, inference: ModuleType, tmp_path: Path
) -> None:
    # 2 files x 20 records x 6 observations, pushed towards the side the pole leans to; plus one
    # record per file whose answer has the wrong length, which must be skipped, not fatal.
    rng = random.Random(7)
    observations: list[list[float]] = []
    for index, encoding in enumerate(("JSON", "BASE64")):
        lines = []
        for _ in range(20):
            batch = [
                [
                    rng.uniform(-2.4, 2.4),
                    rng.uniform(-1, 1),
                    rng.uniform(-0.2, 0.2),
                    rng.uniform(-1, 1),
                ]
                for _ in range(6)
            ]
            observations += batch
            lines.append(capture_line(batch, [1 if o[2] > 0 else 0 for o in batch], encoding))
        lines.append(capture_line([[0.0, 0.0, 0.01, 0.0]], [1, 0], encoding))
        key = f"capture/ep/AllTraffic/2025/01/02/0{index}/03-04-005-{encoding.lower()}.jsonl"
        s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode() + b"\n")

    request = training_request(
        "cartpole-experience",
        {"total_timesteps": 64, "n_steps": 64, "eval_episodes": 1},
        experience=f"s3://{BUCKET}/capture/ep/AllTraffic",
    )
    result = run_training_job(request, s3=s3, work_root=tmp_path)
    assert result.status == "Completed", result.failure_reason
    line = next(line for line in result.log_lines if "experience: " in line)
    assert "experience: 240 (observation, action) pairs from 42 capture records (2 skipped)" in line
    assert "behaviour cloning loss 0.69 -> " in line
    evaluation = json.loads(tar_members(s3, result.output_artifacts or "")["evaluation.json"])
    experience = evaluation["experience"]
    assert (experience["pairs"], experience["records"], experience["skipped"]) == (240, 42, 2)
    cloning = experience["behaviour_cloning"]
    assert cloning["loss_after"] < cloning["loss_before"]
    assert cloning["agreement_after"] >= 0.9

    # The served network (after one short PPO rollout too) still follows the captured rule.
    members = tar_members(s3, result.model_artifacts or "")
    model_dir = tmp_path / "served"
    model_dir.mkdir()
    for name in ("policy.pt", "policy.json"):
        (model_dir / name).write_bytes(members[name])
    threads = torch.get_num_threads()  # model_fn sets the serving process's thread count
    try:
        policy = inference.model_fn(str(model_dir))
        batch = inference.input_fn(json.dumps(observations), "application/json")
        served = inference.predict_fn(batch, policy)
    finally:
        torch.set_num_threads(threads)
    rule = [1 if o[2] > 0 else 0 for o in observations]
    agreement = sum(a == b for a, b in zip(served, rule, strict=True)) / len(rule)
    assert agreement >= 0.85, agreement


def test_experience_reader_takes_every_form_the_endpoint_answered(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("cartpole_train", EXAMPLE / "train.py")
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)

    def record(request: str, response: str, content_type: str = "application/json") -> str:
        sides = {
            "endpointInput": {"observedContentType": content_type, "data": request},
            "endpointOutput": {"observedContentType": "application/json", "data": response},
        }
        for side in sides.values():
            side["encoding"] = "CSV" if side["observedContentType"] == "text/csv" else "JSON"
        return json.dumps({"captureData": sides, "eventVersion": "0"})

    good = [
        record('{"instances": [[1, 2, 3, 4]]}', '{"predictions": [1]}'),
        record("[[1, 2, 3, 4], [5, 6, 7, 8]]", '{"predictions": [0, 1]}'),
        record("[1, 2, 3, 4]", '{"predictions": [0]}'),  # one bare observation
        record("1,2,3,4\n5,6,7,8\n", '{"predictions": [1, 0]}', "text/csv"),
    ]
    bad = [
        "not json",
        json.dumps(
            {"captureData": {"endpointInput": {"data": "[1, 2, 3, 4]", "encoding": "JSON"}}}
        ),
        record("[[1, 2, 3]]", '{"predictions": [0]}'),  # wrong observation width
        record("[[1, 2, 3, 4]]", '{"predictions": [2]}'),  # no such action
        record("[[1, 2, 3, 4]]", '{"predictions": [true]}'),
        record("[[1, 2, 3, 4]]", '{"message": "error"}'),
        json.dumps(
            {
                "captureData": {
                    side: {"data": "!!", "encoding": "BASE64"}
                    for side in ("endpointInput", "endpointOutput")
                }
            }
        ),
    ]
    nested = tmp_path / "AllTraffic" / "2025" / "01" / "02" / "03"
    nested.mkdir(parents=True)
    (nested / "a.jsonl").write_text("\n".join(good[:2] + bad[:4]) + "\n\n")
    (tmp_path / "b.jsonl").write_text("\n".join(good[2:] + bad[4:]))
    (tmp_path / "notes.txt").write_text(good[0])  # not a capture file
    experience = train.load_experience(tmp_path, obs_dim=4, n_actions=2)
    assert (experience.records, experience.skipped) == (11, 7)
    assert experience.actions == [1, 0, 1, 0, 1, 0]
    assert experience.observations[0] == [1.0, 2.0, 3.0, 4.0]
    assert experience.observations[-1] == [5.0, 6.0, 7.0, 8.0]
    assert len(experience.observations) == 6


# --- inference.py's input handling, in process ---------------------------------------------------


@pytest.fixture(scope="module")
def inference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cartpole_inference", EXAMPLE / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("body", "content_type", "rows"),
    [
        ('{"instances": [[1, 2, 3, 4]]}', "application/json", 1),
        ("[[1, 2, 3, 4], [5, 6, 7, 8]]", "application/json; charset=utf-8", 2),
        (b"[1, 2, 3, 4]", "application/json", 1),
        ("1,2,3,4\n5,6,7,8", "text/csv", 2),
    ],
)
def test_input_fn_accepts_the_documented_forms(
    inference: ModuleType, body: str | bytes, content_type: str, rows: int
) -> None:
    assert tuple(inference.input_fn(body, content_type).shape) == (rows, 4)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("{not json", "application/json", "not valid JSON"),
        ('{"observations": [[1, 2, 3, 4]]}', "application/json", "needs an 'instances' key"),
        ("[]", "application/json", "non-empty list"),
        ('[[1, 2, 3, 4], "x"]', "application/json", "must be a list of numbers"),
        ("[[1, 2, 3, 4], [1, 2, 3]]", "application/json", "different lengths"),
        ("[1, 2, true, 4]", "application/json", "finite numbers"),
        ("[1, 2, NaN, 4]", "application/json", "finite numbers"),
        ("1,2,x,4", "text/csv", "non-number"),
        ("<obs/>", "application/xml", "unsupported content type"),
    ],
)
def test_input_fn_rejects_bad_input_naming_the_expected_shape(
    inference: ModuleType, body: str, content_type: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        inference.input_fn(body, content_type)
    assert "observation" in str(error.value) or "content type" in str(error.value)


def test_output_fn_speaks_json_only(inference: ModuleType) -> None:
    assert inference.output_fn([0, 1], "application/json") == (
        '{"predictions": [0, 1]}',
        "application/json",
    )
    with pytest.raises(ValueError, match="unsupported accept type 'text/csv'"):
        inference.output_fn([0, 1], "text/csv")
