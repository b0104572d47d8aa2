"""A user's CDK app, as README.md shows it: synthesized by tests/test_packaging.py with the library
installed from its wheel (or sdist) into a fresh venv, from a folder outside the repo.

The seed's example (``fit()`` + ``deploy()``) and an attached training job served by ``deploy()``,
in one stack. It prints what the test checks about the process as one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

import cdk_sagemaker_rl
from cdk_sagemaker_rl import ContainerImage, RLEstimator, RLFramework, RLToolkit

HERE = Path(__file__).resolve().parent


class CoachStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        rl_estimator = RLEstimator(
            self,
            "Coach",
            entry_point="train.py",
            source_dir=str(HERE / "src"),
            toolkit=RLToolkit.COACH,
            toolkit_version="0.11.0",
            framework=RLFramework.MXNET,
            train_instance_type="ml.c4.2xlarge",
            train_instance_count=1,
        )
        rl_estimator.fit()
        rl_estimator.deploy(instance_type="ml.m4.xlarge", initial_instance_count=1)

        attached = RLEstimator.attach(
            self,
            "Attached",
            training_job_name="coach-2024-01-01-00-00-00-000",
            image=ContainerImage.rl(RLToolkit.COACH, "0.11.0", RLFramework.MXNET),
        )
        attached.deploy(instance_type="ml.m4.xlarge", initial_instance_count=1)


app = cdk.App()
CoachStack(app, "UserCoach")
app.synth()
print(
    json.dumps(
        {
            "library": cdk_sagemaker_rl.__file__,
            "local_imported": "cdk_sagemaker_rl.local" in sys.modules,
        }
    )
)
