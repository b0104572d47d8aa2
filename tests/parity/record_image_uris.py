"""Record the image URIs that SageMaker Python SDK v2 selects: the oracle of tests/test_images.py.

Run it in a throwaway virtualenv that has the SDK, never in the project's own environment (the
project must not depend on the SDK it replaces)::

    python3 -m venv /tmp/sdkvenv && /tmp/sdkvenv/bin/pip install sagemaker==2.257.7
    /tmp/sdkvenv/bin/python tests/parity/record_image_uris.py

It writes tests/parity/sdk_image_uris.json. Training images are recorded through
``RLEstimator.training_image_uri()`` (the estimator's own selection path, with a stub session, so
nothing talks to AWS) and, for images RLEstimator cannot select (Vowpal Wabbit, DLC PyTorch),
through ``sagemaker.image_uris.retrieve``. Serving images go through ``RLEstimator.create_model()``
and the model's ``serving_image_uri`` the way ``deploy()`` does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from unittest import mock

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import sagemaker
from sagemaker import image_uris
from sagemaker.rl import RLEstimator, RLFramework, RLToolkit

OUTPUT = Path(__file__).with_name("sdk_image_uris.json")
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"

# (toolkit, toolkit_version, framework, instance_type, region)
RL_TRAINING = [
    ("coach", "0.10", "tensorflow", "ml.c4.2xlarge", "us-east-1"),
    ("coach", "0.10.1", "tensorflow", "ml.p2.xlarge", "eu-west-1"),
    ("coach", "0.11", "tensorflow", "ml.m5.large", "ap-east-1"),
    ("coach", "0.11", "mxnet", "ml.g4dn.xlarge", "eu-north-1"),
    ("coach", "0.11.0", "tensorflow", "ml.c5.xlarge", "af-south-1"),
    ("coach", "0.11.0", "mxnet", "ml.c5.2xlarge", "eu-south-1"),
    ("coach", "0.11.0", "mxnet", "ml.p3.2xlarge", "cn-northwest-1"),
    ("coach", "0.11.1", "tensorflow", "ml.p3.2xlarge", "us-west-2"),
    ("coach", "0.11.1", "tensorflow", "ml.c5.xlarge", "cn-north-1"),
    ("coach", "0.11.1", "tensorflow", "ml.g4dn.xlarge", "us-gov-west-1"),
    ("coach", "0.11.1", "tensorflow", "ml.m4.xlarge", "us-iso-east-1"),
    ("coach", "0.11.1", "tensorflow", "ml.p3.8xlarge", "us-isob-east-1"),
    ("coach", "1.0.0", "tensorflow", "ml.c5.xlarge", "us-west-2"),
    ("coach", "1.0.0", "tensorflow", "ml.p3.2xlarge", "eu-central-1"),
    ("ray", "0.5", "tensorflow", "ml.c5.xlarge", "me-south-1"),
    ("ray", "0.5.3", "tensorflow", "ml.p2.xlarge", "sa-east-1"),
    ("ray", "0.6", "tensorflow", "ml.c4.xlarge", "eu-west-3"),
    ("ray", "0.6.5", "tensorflow", "ml.g4dn.2xlarge", "cn-north-1"),
    ("ray", "0.6.5", "tensorflow", "ml.m5.xlarge", "af-south-1"),
    ("ray", "0.8.2", "tensorflow", "ml.c5.4xlarge", "ap-south-1"),
    ("ray", "0.8.5", "tensorflow", "ml.p3.2xlarge", "us-east-2"),
    ("ray", "0.8.5", "pytorch", "ml.c5.xlarge", "ca-central-1"),
    ("ray", "1.6.0", "tensorflow", "ml.c5.xlarge", "us-west-2"),
    ("ray", "1.6.0", "tensorflow", "ml.g5.xlarge", "ap-northeast-1"),
    ("ray", "1.6.0", "pytorch", "ml.p3.2xlarge", "eu-west-2"),
    ("ray", "1.6.0", "pytorch", "ml.m5.large", "ap-southeast-2"),
]

# (instance_type, region)
VW_TRAINING = [("ml.c5.xlarge", "us-west-2"), ("ml.m5.large", "ap-northeast-2")]

# (repository family, version, py_version or None, instance_type, region)
DLC = [
    ("pytorch-training", "2.8.0", None, "ml.g5.xlarge", "us-east-1"),
    ("pytorch-training", "2.8", "py312", "ml.c5.xlarge", "us-gov-west-1"),
    ("pytorch-training", "2.7.1", None, "ml.p4d.24xlarge", "cn-north-1"),
    ("pytorch-training", "2.5", None, "ml.m5.xlarge", "eu-south-1"),
    ("pytorch-training", "2.4.0", "py311", "ml.c5.xlarge", "af-south-1"),
    ("pytorch-inference", "2.6.0", None, "ml.c5.xlarge", "us-west-2"),
    ("pytorch-inference", "2.6", None, "ml.g4dn.xlarge", "me-south-1"),
    ("pytorch-inference", "2.5.1", "py311", "ml.m5.large", "cn-northwest-1"),
    ("pytorch-inference", "2.4", None, "ml.p3.2xlarge", "us-east-2"),
]

# Serving via RLEstimator.create_model(): (toolkit, toolkit_version, framework, instance, region)
RL_SERVING = [
    ("coach", "0.11.1", "tensorflow", "ml.c5.xlarge", "us-west-2"),
    ("coach", "0.10.1", "tensorflow", "ml.p3.2xlarge", "cn-north-1"),
    ("coach", "1.0.0", "tensorflow", "ml.g4dn.xlarge", "eu-west-1"),
    ("coach", "0.11.1", "tensorflow", "ml.g4dn.xlarge", "us-gov-west-1"),
    ("coach", "0.11.0", "mxnet", "ml.m5.large", "eu-south-1"),
    ("coach", "0.11.0", "mxnet", "ml.g4dn.xlarge", "us-iso-east-1"),
]

# TensorFlow Serving for the TF versions of the Ray images: (framework_version, instance, region)
TF_SERVING = [("2.1", "ml.c5.xlarge", "us-west-2"), ("2.5", "ml.g4dn.xlarge", "us-isob-east-1")]


def _session(region: str) -> Any:
    """A stand-in Session: the selection path only reads the region and a few config lookups."""
    session = mock.MagicMock(name="Session")
    session.boto_region_name = region
    session.sagemaker_config = None
    session.local_mode = False
    return session


def _estimator(toolkit: str, version: str, framework: str, instance: str, region: str) -> Any:
    return RLEstimator(
        entry_point="train.py",
        toolkit=RLToolkit(toolkit),
        toolkit_version=version,
        framework=RLFramework(framework),
        role=ROLE,
        instance_type=instance,
        instance_count=1,
        sagemaker_session=_session(region),
    )


def main() -> int:
    cases: list[dict[str, Any]] = []
    for toolkit, version, framework, instance, region in RL_TRAINING:
        uri = _estimator(toolkit, version, framework, instance, region).training_image_uri()
        cases.append(
            {
                "kind": "rl",
                "via": "RLEstimator.training_image_uri",
                "toolkit": toolkit,
                "toolkit_version": version,
                "framework": framework,
                "instance_type": instance,
                "region": region,
                "uri": uri,
            }
        )
    for instance, region in VW_TRAINING:
        uri = image_uris.retrieve("vw", region, version="8.7.0", instance_type=instance)
        cases.append(
            {
                "kind": "rl",
                "via": "image_uris.retrieve",
                "toolkit": "vw",
                "toolkit_version": "8.7.0",
                "framework": None,
                "instance_type": instance,
                "region": region,
                "uri": uri,
            }
        )
    for family, version, py, instance, region in DLC:
        framework, scope = family.split("-")
        uri = image_uris.retrieve(
            framework,
            region,
            version=version,
            py_version=py or _only_py_version(framework, scope, version),
            instance_type=instance,
            image_scope=scope,
        )
        cases.append(
            {
                "kind": family,
                "via": "image_uris.retrieve",
                "version": version,
                "py_version": py,
                "instance_type": instance,
                "region": region,
                "uri": uri,
            }
        )
    # create_model() needs a trained model; pretend the latest job left one.
    with mock.patch.object(
        RLEstimator,
        "model_data",
        new_callable=mock.PropertyMock,
        return_value="s3://b/model.tar.gz",
    ):
        for toolkit, version, framework, instance, region in RL_SERVING:
            estimator = _estimator(toolkit, version, framework, "ml.c5.xlarge", region)
            model = estimator.create_model()
            uri = model.serving_image_uri(region, instance)
            cases.append(
                {
                    "kind": "rl-serving",
                    "via": f"RLEstimator.create_model -> {type(model).__name__}.serving_image_uri",
                    "toolkit": toolkit,
                    "toolkit_version": version,
                    "framework": framework,
                    "framework_version": model.framework_version,
                    "instance_type": instance,
                    "region": region,
                    "uri": uri,
                }
            )
    for version, instance, region in TF_SERVING:
        uri = image_uris.retrieve(
            "tensorflow", region, version=version, instance_type=instance, image_scope="inference"
        )
        cases.append(
            {
                "kind": "tensorflow-serving",
                "via": "image_uris.retrieve",
                "version": version,
                "instance_type": instance,
                "region": region,
                "uri": uri,
            }
        )
    document = {
        "sdk_version": sagemaker.__version__,
        "recorded_by": "tests/parity/record_image_uris.py",
        "cases": cases,
    }
    OUTPUT.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUTPUT}", file=sys.stderr)
    return 0


def _only_py_version(framework: str, scope: str, version: str) -> str:
    """The SDK needs py_version for DLC images; when the caller gave none use the one published."""
    config = image_uris.config_for_framework(framework)[scope]
    full = config.get("version_aliases", {}).get(version, version)
    (py,) = config["versions"][full]["py_versions"]
    return str(py)


if __name__ == "__main__":
    raise SystemExit(main())
