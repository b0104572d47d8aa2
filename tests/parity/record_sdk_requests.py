"""Record the CreateTrainingJob requests that SageMaker Python SDK v2's RLEstimator sends.

This is a fixture generator, not a test: it imports ``sagemaker``, which the project never depends
on. Run it from a throwaway virtualenv (see README.md next to this file)::

    python3 -m venv /tmp/sdkvenv2
    /tmp/sdkvenv2/bin/pip install sagemaker==2.257.7
    /tmp/sdkvenv2/bin/python tests/parity/record_sdk_requests.py

For every configuration below it builds ``sagemaker.rl.RLEstimator`` on a ``sagemaker.Session``
that cannot reach AWS, calls ``fit(inputs, wait=False, logs=False)`` and keeps the exact keyword
arguments given to ``sagemaker_client.create_training_job``. The SDK's own request-building code
runs unchanged; only its edges are replaced:

* the SageMaker client is a real botocore client with a ``Stubber``: the request is validated
  against the service model, then answered locally;
* the S3 resource is a recorder: ``Object(bucket, key).upload_file(...)`` keeps bucket, key,
  ExtraArgs and the member list of the uploaded ``sourcedir.tar.gz``;
* the default bucket (``sagemaker-<region>-<account>``) is treated as existing, and roles are
  given as ARNs, so neither S3 nor IAM is asked;
* telemetry is off, and every socket connect and botocore send raises: a missed edge fails the
  run instead of calling AWS.

Generated job names (``<base>-<UTC timestamp>``) are replaced by ``<JOB_NAME>`` after checking
that they match the SDK's pattern; the base is recorded next to each request.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import socket
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import sagemaker
import sagemaker.telemetry.telemetry_logging as telemetry_logging
from botocore.stub import Stubber
from sagemaker.rl.estimator import RLEstimator, RLFramework, RLToolkit
from sagemaker.session import Session

ACCOUNT = "111122223333"
JOB_NAME_PLACEHOLDER = "<JOB_NAME>"
# sagemaker.utils.name_from_base: base[:39] + "-" + time.strftime("%Y-%m-%d-%H-%M-%S-", gmtime) + ms
GENERATED_NAME = re.compile(r"^(?P<base>.{1,39})-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{1,3}$")
DEFAULT_OUTPUT = Path(__file__).with_name("sdk_training_requests.json")

# The code tree every configuration packs. Paths in the configurations are relative to its root.
FIXTURE_FILES: dict[str, str] = {
    "train.py": "print('standalone entry point')\n",
    "src/train.py": "import agents.ppo\n",
    "src/requirements.txt": "gym==0.10.5\n",
    "src/agents/__init__.py": "",
    "src/agents/ppo.py": "ALGO = 'ppo'\n",
    "deps/common/__init__.py": "",
    "deps/common/env_utils.py": "def make_env():\n    return None\n",
    "deps/markov/__init__.py": "",
}

US_WEST_2_VW = "462105765813.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-vw-container:vw-8.7.0-cpu"
CUSTOM_IMAGE = "111122223333.dkr.ecr.us-west-2.amazonaws.com/my-rl-image:2024.1"
LONG_IMAGE = (
    "111122223333.dkr.ecr.us-east-1.amazonaws.com/"
    "team-reinforcement-learning-experiments-stable-baselines:latest"
)

KMS_KEY_ARN = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

ALL_HYPERPARAMETER_TYPES: dict[str, Any] = {
    "episodes": 500,
    "learning_rate": 0.0003,
    "tiny": 1e-05,
    "algorithm": "PPO",
    "render": False,
    "normalize": True,
    "layers": [64, 64],
    "env_config": {"name": "CartPole-v1", "max_steps": 500, "shaped": True},
    "seed": None,
}

# name, region, estimator kwargs (JSON-able: toolkit/framework as their string values), fit kwargs.
CONFIGURATIONS: list[dict[str, Any]] = [
    {
        "name": "coach-0.11.1-tf-gpu-minimal",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.11.1",
            "framework": "tensorflow",
            "instance_type": "ml.p3.2xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-0.10.1-tf-cpu-str-input-scalar-hps",
        "region": "us-east-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.10.1",
            "framework": "tensorflow",
            "instance_type": "ml.c5.2xlarge",
            "instance_count": 1,
            "hyperparameters": {"rl.agent_params.algorithm.discount": 0.99, "save_model": 1},
        },
        "fit": {"inputs": "s3://my-data-bucket/cartpole/train"},
    },
    {
        "name": "coach-0.11.0-tf-source-dir-dict-inputs",
        "region": "eu-west-1",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "coach",
            "toolkit_version": "0.11.0",
            "framework": "tensorflow",
            "instance_type": "ml.m5.xlarge",
            "instance_count": 1,
        },
        "fit": {
            "inputs": {
                "training": "s3://my-data-bucket/rl/train",
                "replay": "s3://my-data-bucket/rl/replay/",
            }
        },
    },
    {
        "name": "coach-0.11.0-mxnet-cpu",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "coach",
            "toolkit_version": "0.11.0",
            "framework": "mxnet",
            "instance_type": "ml.c4.2xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-0.11-floating-mxnet-gpu",
        "region": "us-east-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.11",
            "framework": "mxnet",
            "instance_type": "ml.p2.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-1.0.0-tf-gpu-two-instances",
        "region": "ap-southeast-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "coach",
            "toolkit_version": "1.0.0",
            "framework": "tensorflow",
            "instance_type": "ml.g4dn.xlarge",
            "instance_count": 2,
        },
        "fit": {"inputs": "s3://my-data-bucket/apse2/train"},
    },
    {
        "name": "coach-0.11.1-tf-china",
        "region": "cn-north-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.11.1",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-0.11.1-tf-govcloud",
        "region": "us-gov-west-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.11.1",
            "framework": "tensorflow",
            "instance_type": "ml.p3.2xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-0.10.1-tf-eu-south-1",
        "region": "eu-south-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.10.1",
            "framework": "tensorflow",
            "instance_type": "ml.m5.large",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-0.5.3-tf-cpu",
        "region": "us-east-1",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "0.5.3",
            "framework": "tensorflow",
            "instance_type": "ml.c5.4xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-0.6.5-tf-gpu-all-hyperparameter-types",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "0.6.5",
            "framework": "tensorflow",
            "instance_type": "ml.p3.8xlarge",
            "instance_count": 3,
            "hyperparameters": ALL_HYPERPARAMETER_TYPES,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-0.6-floating-tf-china",
        "region": "cn-north-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "ray",
            "toolkit_version": "0.6",
            "framework": "tensorflow",
            "instance_type": "ml.c5.2xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-0.8.2-tf",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "ray",
            "toolkit_version": "0.8.2",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-0.8.5-tf",
        "region": "eu-west-1",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "0.8.5",
            "framework": "tensorflow",
            "instance_type": "ml.c5.2xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-0.8.5-torch-gpu",
        "region": "ap-southeast-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "0.8.5",
            "framework": "pytorch",
            "instance_type": "ml.g4dn.2xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-1.6.0-tf-output-path-kms",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.2xlarge",
            "instance_count": 1,
            "output_path": "s3://my-output-bucket/rl/results",
            "output_kms_key": KMS_KEY_ARN,
        },
        "fit": {"inputs": {"training": "s3://my-data-bucket/ray/train"}},
    },
    {
        "name": "ray-1.6.0-torch-gpu-job-name",
        "region": "us-east-1",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "pytorch",
            "instance_type": "ml.p3.8xlarge",
            "instance_count": 2,
        },
        "fit": {"inputs": None, "job_name": "ray-torch-cartpole-001"},
    },
    {
        "name": "vw-image-uri",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "image_uri": US_WEST_2_VW,
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": {"training": "s3://my-data-bucket/vw/train"}},
    },
    {
        "name": "vw-image-uri-explicit-metrics",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "image_uri": US_WEST_2_VW,
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "metric_definitions": [{"Name": "loss", "Regex": "average loss = ([0-9.]+)"}],
        },
        "fit": {"inputs": None},
    },
    {
        "name": "custom-image-with-toolkit-args",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "image_uri": CUSTOM_IMAGE,
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "instance_type": "ml.m5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "custom-image-long-repository-name",
        "region": "us-east-1",
        "estimator": {
            "entry_point": "train.py",
            "image_uri": LONG_IMAGE,
            "instance_type": "ml.m5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-pipe-mode-volume-max-run",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.11.1",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "input_mode": "Pipe",
            "volume_size": 100,
            "max_run": 3600,
        },
        "fit": {"inputs": "s3://my-data-bucket/pipe/train"},
    },
    {
        "name": "ray-explicit-metric-definitions",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "metric_definitions": [
                {"Name": "episode_len_mean", "Regex": "episode_len_mean: ([0-9.]+)"}
            ],
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-output-path-trailing-slash-kms-job-name",
        "region": "eu-west-1",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "coach",
            "toolkit_version": "0.11.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "output_path": "s3://my-output-bucket/",
            "output_kms_key": "alias/my-training-key",
        },
        "fit": {"inputs": None, "job_name": "coach-given-name"},
    },
    {
        "name": "ray-source-dir-with-dependencies",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "dependencies": ["deps/common", "deps/markov"],
            "toolkit": "ray",
            "toolkit_version": "0.8.5",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-dependencies-without-source-dir",
        "region": "us-east-1",
        "estimator": {
            "entry_point": "train.py",
            "dependencies": ["deps/common"],
            "toolkit": "coach",
            "toolkit_version": "0.11.1",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "entry-point-in-subdirectory-of-source-dir",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "agents/ppo.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "pytorch",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "base-job-name",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "base_job_name": "cartpole-ppo",
        },
        "fit": {"inputs": None},
    },
    {
        "name": "vpc-tags-environment-retry-log-level",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 2,
            "subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
            "security_group_ids": ["sg-0123456789abcdef0"],
            "tags": [{"Key": "project", "Value": "rl"}],
            "environment": {"RAY_LOG_LEVEL": "debug"},
            "max_retry_attempts": 2,
            "container_log_level": 10,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "spot-checkpoint-max-wait",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "1.0.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "use_spot_instances": True,
            "max_run": 7200,
            "max_wait": 10800,
            "checkpoint_s3_uri": "s3://my-output-bucket/checkpoints",
        },
        "fit": {"inputs": None},
    },
    {
        "name": "disable-profiler",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "disable_profiler": True,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "debugger-unsupported-region-custom-image",
        "region": "eu-central-2",
        "estimator": {
            "entry_point": "train.py",
            "image_uri": "111122223333.dkr.ecr.eu-central-2.amazonaws.com/my-rl-image:1",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "coach-0.11.1-tf-us-iso-east-1-no-debugger",
        "region": "us-iso-east-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.11.1",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "ray-0.6.5-tf-us-isob-east-1-no-debugger",
        "region": "us-isob-east-1",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "ray",
            "toolkit_version": "0.6.5",
            "framework": "tensorflow",
            "instance_type": "ml.p3.2xlarge",
            "instance_count": 1,
        },
        "fit": {"inputs": None},
    },
    {
        "name": "hyperparameter-string-edge-cases",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "toolkit": "coach",
            "toolkit_version": "0.11.1",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "hyperparameters": {
                "quoted": 'say "hi"',
                "unicode": "caf\u00e9",
                "empty": "",
                "numeric_string": "10",
                "negative": -3,
                "big": 12345678901234567890,
                "nested": [{"a": [1, 2.5]}, None, "x"],
            },
        },
        "fit": {"inputs": None},
    },
    {
        "name": "network-isolation",
        "region": "us-west-2",
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "toolkit": "ray",
            "toolkit_version": "1.6.0",
            "framework": "tensorflow",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 1,
            "enable_network_isolation": True,
        },
        "fit": {"inputs": None},
    },
]


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    return "aws"


def role_arn(region: str) -> str:
    return f"arn:{partition(region)}:iam::{ACCOUNT}:role/SageMakerRole"


def default_bucket(region: str) -> str:
    return f"sagemaker-{region}-{ACCOUNT}"


class _RecordingObject:
    def __init__(self, uploads: list[dict[str, Any]], bucket: str, key: str) -> None:
        self._uploads = uploads
        self._bucket = bucket
        self._key = key

    def upload_file(self, Filename: str, ExtraArgs: dict[str, Any] | None = None) -> None:
        with tarfile.open(Filename, "r:gz") as tar:
            members = sorted(info.name + ("/" if info.isdir() else "") for info in tar.getmembers())
        self._uploads.append(
            {
                "bucket": self._bucket,
                "key": self._key,
                "extra_args": ExtraArgs,
                "archive_members": members,
            }
        )


class _RecordingS3Resource:
    """Stands in for ``boto3.resource('s3')``: the SDK only calls ``Object(...).upload_file``."""

    def __init__(self) -> None:
        self.uploads: list[dict[str, Any]] = []

    def Object(self, bucket: str, key: str) -> _RecordingObject:
        return _RecordingObject(self.uploads, bucket, key)


def _refuse_network(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(f"network access attempted while recording: {args!r} {kwargs!r}")


def _refuse_send(request: Any, **kwargs: Any) -> Any:
    raise RuntimeError(f"unexpected AWS request while recording: {request.method} {request.url}")


FAKE_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@contextmanager
def _offline() -> Iterator[None]:
    # Some SDK code builds its own default boto3 client (TensorBoardApp does, in the estimator's
    # constructor): give it credentials from the environment so it never probes the instance
    # metadata service, and make its session refuse to send anything.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            # The v2 deprecation notice is logged once per process: it would only ever show up
            # in the first configuration's warnings.
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    boto3.setup_default_session(region_name="us-east-1")
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION._session.register("before-send", _refuse_send)
    original_connect = socket.socket.connect
    original_telemetry = telemetry_logging._send_telemetry_request
    socket.socket.connect = _refuse_network  # type: ignore[method-assign]
    telemetry_logging._send_telemetry_request = lambda *a, **k: None
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        telemetry_logging._send_telemetry_request = original_telemetry


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _estimator_kwargs(description: dict[str, Any]) -> dict[str, Any]:
    kwargs = copy.deepcopy(description)
    if "toolkit" in kwargs:
        kwargs["toolkit"] = RLToolkit(kwargs["toolkit"])
    if "framework" in kwargs:
        kwargs["framework"] = RLFramework(kwargs["framework"])
    return kwargs


def _replace_everywhere(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace_everywhere(item, old, new) for item in value]
    if isinstance(value, dict):
        return {
            _replace_everywhere(k, old, new): _replace_everywhere(v, old, new)
            for k, v in value.items()
        }
    return value


def record(configuration: dict[str, Any]) -> dict[str, Any]:
    region = configuration["region"]
    boto_session = boto3.Session(
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
        region_name=region,
    )
    # Registered before any client exists, so every client of this session inherits it.
    boto_session._session.register("before-send", _refuse_send)

    captured: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.append(copy.deepcopy(params))

    sagemaker_client = boto_session.client("sagemaker")
    sagemaker_client.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", capture
    )
    stubber = Stubber(sagemaker_client)
    stubber.add_response(
        "create_training_job",
        {
            "TrainingJobArn": f"arn:{partition(region)}:sagemaker:{region}:{ACCOUNT}"
            ":training-job/recorded"
        },
    )
    s3 = _RecordingS3Resource()
    with stubber:
        session = Session(
            boto_session=boto_session,
            sagemaker_client=sagemaker_client,
            default_bucket=default_bucket(region),
            sagemaker_config={
                "SchemaVersion": "1.0",
                "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
            },
        )
        # setattr: the SDK declares these attributes as None-typed.
        setattr(session, "s3_resource", s3)  # noqa: B010
        setattr(session, "_default_bucket", default_bucket(region))  # noqa: B010 (exists: no S3)

        estimator_description = configuration["estimator"]
        collector = _WarningCollector()
        sdk_logger = logging.getLogger("sagemaker")
        previous_level = sdk_logger.level
        sdk_logger.addHandler(collector)
        sdk_logger.setLevel(logging.WARNING)
        try:
            estimator = RLEstimator(
                role=role_arn(region),
                sagemaker_session=session,
                **_estimator_kwargs(estimator_description),
            )
            fit = configuration["fit"]
            estimator.fit(fit.get("inputs"), wait=False, logs=False, job_name=fit.get("job_name"))
        finally:
            sdk_logger.removeHandler(collector)
            sdk_logger.setLevel(previous_level)
        stubber.assert_no_pending_responses()

    if len(captured) != 1:
        raise AssertionError(f"{configuration['name']}: {len(captured)} CreateTrainingJob calls")
    request = captured[0]
    job_name: str = request["TrainingJobName"]
    given_name = configuration["fit"].get("job_name")
    entry: dict[str, Any] = {
        "name": configuration["name"],
        "region": region,
        "role": role_arn(region),
        "session_default_bucket": default_bucket(region),
        "estimator_kwargs": estimator_description,
        "fit": {"inputs": configuration["fit"].get("inputs"), "job_name": given_name},
    }
    if given_name:
        if job_name != given_name:
            raise AssertionError(f"{configuration['name']}: job name {job_name!r} not as given")
        entry["job_name"] = {"generated": False}
        normalised = request
        uploads: list[dict[str, Any]] = s3.uploads
        warnings = collector.messages
    else:
        match = GENERATED_NAME.match(job_name)
        if not match:
            raise AssertionError(f"{configuration['name']}: unexpected job name {job_name!r}")
        entry["job_name"] = {"generated": True, "base": match["base"]}
        normalised = _replace_everywhere(request, job_name, JOB_NAME_PLACEHOLDER)
        uploads = _replace_everywhere(s3.uploads, job_name, JOB_NAME_PLACEHOLDER)
        warnings = _replace_everywhere(collector.messages, job_name, JOB_NAME_PLACEHOLDER)
    entry["source_uploads"] = uploads
    entry["sdk_warnings"] = warnings
    entry["request"] = normalised
    return entry


def write_fixture_tree(root: Path) -> None:
    for relative, text in FIXTURE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    out_path: Path = args.out.resolve()

    logging.basicConfig(level=logging.ERROR)
    # The SDK's config loader prints an INFO line per session on its own handler.
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    results = []
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as workdir, _offline():
        write_fixture_tree(Path(workdir))
        os.chdir(workdir)  # configurations name their code with paths relative to the tree
        try:
            for configuration in CONFIGURATIONS:
                results.append(record(configuration))
        finally:
            os.chdir(cwd)

    document = {
        "sdk": {"package": "sagemaker", "version": sagemaker.__version__},
        "generator": "tests/parity/record_sdk_requests.py",
        "account": ACCOUNT,
        "placeholders": {
            JOB_NAME_PLACEHOLDER: "a job name the SDK generated: <base>-YYYY-MM-DD-HH-MM-SS-mmm "
            "(UTC), base = job_name.base of the configuration",
        },
        "fixture_files": sorted(FIXTURE_FILES),
        "configurations": results,
    }
    out_path.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n")
    print(f"wrote {len(results)} configurations to {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
