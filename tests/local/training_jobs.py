"""A CreateTrainingJob request, its source archive and S3 (moto), for the runner's tests.

The fixtures are imported by the test modules that use them (``s3`` and ``s3_module``).
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

BUCKET = "jobs"
SOURCE_URI = f"s3://{BUCKET}/code/sourcedir.tar.gz"


@pytest.fixture(scope="module", name="s3_module")
def s3_module_fixture() -> Iterator[Any]:
    """One moto S3 for the module (starting moto costs about half a second)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            yield client


@pytest.fixture(name="s3")
def s3_fixture(s3_module: Any) -> Iterator[Any]:
    """The module's S3 with an empty bucket for each test."""
    yield s3_module
    for page in s3_module.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3_module.delete_object(Bucket=BUCKET, Key=obj["Key"])


def tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_source(s3: Any, files: dict[str, str]) -> None:
    s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=tar_gz(files))


def make_request(
    name: str,
    *,
    program: str = "train.py",
    hyperparameters: dict[str, Any] | None = None,
    channels: dict[str, str] | None = None,
    max_runtime: int = 120,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A CreateTrainingJob request as the SDK and boto3 build it (values JSON-encoded)."""
    hps = {
        **(hyperparameters or {}),
        "sagemaker_program": program,
        "sagemaker_submit_directory": SOURCE_URI,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": name,
        "sagemaker_region": "us-east-1",
    }
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "462105765813.dkr.ecr.us-east-1.amazonaws.com/x:cpu",
            "TrainingInputMode": "File",
            "MetricDefinitions": [],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/training",
        "HyperParameters": {k: json.dumps(v) for k, v in hps.items()},
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel, uri in (channels or {}).items()
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if environment:
        request["Environment"] = environment
    return request


def read_tar(s3: Any, uri: str) -> dict[str, bytes]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
