"""A user's app for the local TrainAndServe test: fit(wait=False), then deploy().

``RLWorkflow`` trains the CartPole example in the TrainAndServe workflow (the training state
machine as a nested ``startExecution.sync:2`` execution), then the workflow creates the model,
the endpoint config and the endpoint. Run by tests/local/test_train_and_serve_workflow.py with the
real ``cdk`` CLI.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from cdk_sagemaker_rl import ContainerImage, RLEstimator

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cartpole"

app = cdk.App()
env = cdk.Environment(account="123456789012", region="us-east-1")
synthesizer = cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False)

stack = cdk.Stack(app, "RLWorkflow", env=env, synthesizer=synthesizer)
estimator = RLEstimator(
    stack,
    "CartPole",
    entry_point="train.py",
    source_dir=str(EXAMPLE),
    image_uri=ContainerImage.pytorch_training("2.8"),
    train_instance_type="ml.m5.large",
    hyperparameters={"total_timesteps": 1024},
)
estimator.fit(wait=False)
estimator.deploy(
    "ml.m5.large",
    image=ContainerImage.pytorch_inference("2.6"),
    entry_point="inference.py",
)
app.synth()
