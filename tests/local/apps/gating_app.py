"""A user's app for the local gating test: manual approval after fit(wait=False), and promotion.

``RLGated`` trains the CartPole example in the TrainAndServe workflow, gates it on the
example's deterministic evaluation and registers it as PendingManualApproval: nothing is served
until someone approves. ``RLPromoted`` serves the latest approved version of that group, without
training. Run by tests/local/test_gating_promotion.py with the real ``cdk`` CLI.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from cdk_sagemaker_rl import (
    ApprovedPolicy,
    ContainerImage,
    ModelRegistry,
    RewardGate,
    RLEstimator,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cartpole"
GROUP = "cartpole-gated"

app = cdk.App()
env = cdk.Environment(account="123456789012", region="us-east-1")
synthesizer = cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False)

gated = cdk.Stack(app, "RLGated", env=env, synthesizer=synthesizer)
estimator = RLEstimator(
    gated,
    "CartPole",
    entry_point="train.py",
    source_dir=str(EXAMPLE),
    image_uri=ContainerImage.pytorch_training("2.8"),
    train_instance_type="ml.m5.large",
    hyperparameters={"total_timesteps": 2048},  # scores 226.5 (seed 0): enough for this bar
    base_job_name=GROUP,
)
estimator.fit(wait=False)
estimator.deploy(
    "ml.m5.large",
    image=ContainerImage.pytorch_inference("2.6"),
    entry_point="inference.py",
    gate=RewardGate("eval_reward_mean", 200, evaluation_file="evaluation.json"),
    registry=ModelRegistry(manual_approval=True, approval_poll_interval=cdk.Duration.seconds(1)),
)

promoted = cdk.Stack(app, "RLPromoted", env=env, synthesizer=synthesizer)
ApprovedPolicy(promoted, "CartPole", model_package_group=GROUP).deploy(
    "ml.m5.large", entry_point="inference.py"
)
app.synth()
