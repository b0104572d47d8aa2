#!/usr/bin/env python3
"""The reference app: train a CartPole-v1 policy at deploy time, then serve it.

One stack per environment listed under ``cdk-sagemaker-rl:environments`` in ``cdk.json``
(``dev`` and ``prod`` differ in instance types and budgets). ``-c example=rllib`` trains
``examples/rllib_cartpole`` instead: RLlib PPO on a Ray 2 cluster across the job's two hosts
(``-c train_instance_count=N`` changes that, for either example: the CartPole one trains on one
host by default), behind the same gate, served the same way.
Stacks are environment-agnostic unless ``-c region=...`` (and optionally ``-c account=...``) is
given; ``-c target=local`` synthesizes for the built-in local emulator
(``python -m cdk_sagemaker_rl.local``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ssm as ssm
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from cdk_sagemaker_rl import (
    ApprovedPolicy,
    AutoScaling,
    Capacity,
    ContainerImage,
    DataCapture,
    EndpointUpdate,
    RewardGate,
    RLEstimator,
    RLFramework,
    RLToolkit,
    TrafficShifting,
)

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "examples" / "cartpole"
RLLIB_EXAMPLE = HERE / "examples" / "rllib_cartpole"
#: The maintained Ray 2 entry of the image catalogue (a PyTorch DLC plus ray[rllib]).
RAY_VERSION = "2.60.0"
ENVIRONMENTS_KEY = "cdk-sagemaker-rl:environments"
#: The Deep Learning Container releases the example trains and serves on: Stable-Baselines3 2.9
#: needs torch >= 2.8 to train; serving the exported actor needs only torch.
TRAINING_PYTORCH = "2.8"
SERVING_PYTORCH = "2.6"
#: The example prints this line as it trains; SageMaker turns it into a metric.
REWARD_METRIC = {
    "Name": "episode_reward_mean",
    "Regex": "episode_reward_mean: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)",
}


#: Where the example writes its deterministic evaluation (/opt/ml/output/data/evaluation.json).
EVALUATION_FILE = "evaluation.json"


def artifacts_key_parameter(environment: str) -> str:
    """The SSM parameter holding an environment's artifacts key ARN, for its promotions."""
    return f"/cdk-sagemaker-rl/cartpole-{environment.lower()}/artifacts-key-arn"


def job_name_base(environment: str) -> str:
    """The estimator's job names, and the name of its model package group."""
    return f"cartpole-{environment.lower()}"


class CartPoleStack(cdk.Stack):
    """Train-and-serve of the CartPole example for one environment."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Mapping[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # One customer-managed key for the artifacts at rest, the training output and the
        # endpoint's storage volume (HIPAA / NIST 800-53 packs ask for KMS on all three).
        key = kms.Key(
            self,
            "ArtifactsKey",
            enable_key_rotation=True,
            description=f"cdk-sagemaker-rl {construct_id}: RL artifacts and endpoint storage",
        )
        estimator = RLEstimator(
            self,
            "CartPole",
            entry_point="train.py",
            train_instance_type=settings["train_instance_type"],
            train_max_run=cdk.Duration.minutes(int(settings["train_max_run_minutes"])),
            metric_definitions=[REWARD_METRIC],
            base_job_name=job_name_base(construct_id.split("-")[-1]),
            bucket_encryption_key=key,
            output_kms_key=key,
            **_example(settings),
        )
        ssm.StringParameter(
            self,
            "ArtifactsKeyArn",
            parameter_name=artifacts_key_parameter(construct_id.split("-")[-1]),
            string_value=key.key_arn,
            description="The key of this environment's artifacts: promotions decrypt with it",
        )
        estimator.fit()
        estimator.deploy(
            instance_type=settings["serve_instance_type"],
            initial_instance_count=int(settings.get("serve_initial_instance_count", 1)),
            image=ContainerImage.pytorch_inference(SERVING_PYTORCH),
            entry_point="inference.py",
            kms_key=key,
            gate=_gate(settings),
            **_serving_options(settings),
        )


class PromotedCartPoleStack(cdk.Stack):
    """Serves the latest approved policy another environment trained: no training here."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Mapping[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(
            self,
            "EndpointKey",
            enable_key_rotation=True,
            description=f"cdk-sagemaker-rl {construct_id}: endpoint storage",
        )
        approved = ApprovedPolicy(
            self,
            "CartPole",
            model_package_group=job_name_base(settings["serve_approved_from"]),
            # `cdk deploy -c release=<anything new>` looks the latest approved version up again.
            revision=self.node.try_get_context("release"),
        )
        endpoint = approved.deploy(
            settings["serve_instance_type"],
            int(settings.get("serve_initial_instance_count", 1)),
            entry_point="inference.py",
            kms_key=key,
            **_serving_options(settings),
        )
        # The source environment's artifacts are encrypted with its key: its ARN is read from
        # the parameter that stack publishes, at deploy time (no cross-stack export to pin).
        source_key = kms.Key.from_key_arn(
            self,
            "SourceArtifactsKey",
            ssm.StringParameter.value_for_string_parameter(
                self, artifacts_key_parameter(settings["serve_approved_from"])
            ),
        )
        source_key.grant_decrypt(endpoint.role)


def _example(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What differs between the two examples: the code, the image and the hosts (one for the
    CartPole example, two for RLlib's cluster; ``train_instance_count`` overrides either)."""
    if settings.get("example", "cartpole") == "cartpole":
        return {
            "source_dir": str(settings.get("source_dir", EXAMPLE)),
            "image_uri": ContainerImage.pytorch_training(TRAINING_PYTORCH),
            "train_instance_count": int(settings.get("train_instance_count", 1)),
            "hyperparameters": dict(settings.get("hyperparameters", {})),
        }
    # The environments' hyperparameters are the Stable-Baselines3 example's: only -c ones apply.
    return {
        "source_dir": str(settings.get("source_dir", RLLIB_EXAMPLE)),
        # One inference.py serves both examples' exports: bundled, not copied.
        "dependencies": [str(EXAMPLE / "inference.py")],
        "toolkit": RLToolkit.RAY,
        "toolkit_version": RAY_VERSION,
        "framework": RLFramework.PYTORCH,
        "train_instance_count": int(settings.get("train_instance_count", 2)),
        "hyperparameters": dict(settings.get("hyperparameter_overrides", {})),
    }


def _gate(settings: Mapping[str, Any]) -> RewardGate | None:
    """``"gate": {"threshold": 450, "max_regression": 10}`` in an environment's settings."""
    gate = settings.get("gate")
    if not gate:
        return None
    return RewardGate(
        metric=str(gate.get("metric", "eval_reward_mean")),
        threshold=gate["threshold"],
        max_regression=gate.get("max_regression"),
        evaluation_file=EVALUATION_FILE,
    )


def _serving_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Production serving per environment: capture everywhere, canary + autoscaling in prod."""
    options: dict[str, Any] = {}
    if "data_capture_percent" in settings:
        # Into the artifact bucket (data-capture/), encrypted with the bucket's key.
        options["data_capture"] = DataCapture(
            sampling_percentage=int(settings["data_capture_percent"])
        )
    if "canary_percent" in settings:
        options["update"] = EndpointUpdate.blue_green(
            traffic=TrafficShifting.canary(
                Capacity.percent(int(settings["canary_percent"])), wait=cdk.Duration.minutes(5)
            ),
            baking_period=cdk.Duration.minutes(10),
        )
    if "serve_max_instance_count" in settings:
        options["autoscaling"] = AutoScaling(
            min_capacity=int(settings.get("serve_initial_instance_count", 1)),
            max_capacity=int(settings["serve_max_instance_count"]),
            target_invocations_per_instance=200,
        )
    return options


def _overrides(app: cdk.App) -> dict[str, Any]:
    """``-c hyperparameters='{...}'``, ``-c source_dir=...``, ``-c gate_threshold=N``,
    ``-c example=rllib`` and ``-c train_instance_count=N``: what local mode lets you try."""
    overrides: dict[str, Any] = {}
    hyperparameters = app.node.try_get_context("hyperparameters")
    if hyperparameters:
        overrides["hyperparameters"] = (
            json.loads(hyperparameters) if isinstance(hyperparameters, str) else hyperparameters
        )
        overrides["hyperparameter_overrides"] = overrides["hyperparameters"]
    example = app.node.try_get_context("example")
    if example is not None:
        if example not in ("cartpole", "rllib"):
            raise SystemExit(f"-c example={example!r}: cartpole or rllib")
        overrides["example"] = example
    count = app.node.try_get_context("train_instance_count")
    if count is not None:
        try:
            overrides["train_instance_count"] = int(count)
        except ValueError:
            raise SystemExit(f"-c train_instance_count={count!r}: a whole number, e.g. 2") from None
    source_dir = app.node.try_get_context("source_dir")
    if source_dir:
        overrides["source_dir"] = source_dir
    threshold = app.node.try_get_context("gate_threshold")
    if threshold is not None:
        try:
            overrides["gate_threshold"] = float(threshold)
        except ValueError:
            raise SystemExit(f"-c gate_threshold={threshold!r}: a number, e.g. 450") from None
    return overrides


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """Build the reference app; tests call this with a context instead of going through the CLI."""
    app = cdk.App(context=dict(context or {}), outdir=outdir)
    environments: Mapping[str, Mapping[str, Any]] = app.node.try_get_context(ENVIRONMENTS_KEY)
    if not environments:
        raise SystemExit(f"cdk.json has no {ENVIRONMENTS_KEY!r} context: nothing to deploy")
    only = app.node.try_get_context("environment")
    local = app.node.try_get_context("target") == "local"
    region = app.node.try_get_context("region") or ("us-east-1" if local else None)
    account = app.node.try_get_context("account") or ("123456789012" if local else None)
    env = cdk.Environment(account=account, region=region) if region else None
    overrides = _overrides(app)
    stacks: dict[str, cdk.Stack] = {}
    # An environment serving another's approved policy needs that one's stack (its key).
    wanted = {only, environments.get(only, {}).get("serve_approved_from")} if only else None
    for name, settings in environments.items():
        if wanted is not None and name not in wanted:
            continue
        settings = {**settings, **overrides}
        if "gate_threshold" in overrides and settings.get("gate"):
            settings["gate"] = {**settings["gate"], "threshold": overrides["gate_threshold"]}
        if "hyperparameters" in overrides:
            settings["hyperparameters"] = {
                **environments[name].get("hyperparameters", {}),
                **overrides["hyperparameters"],
            }
        synthesizer = (
            # The emulator has no bootstrap-version SSM parameter rule support on updates.
            cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False) if local else None
        )
        source = settings.get("serve_approved_from")
        if source is None:
            stacks[name] = CartPoleStack(
                app,
                f"RLCartPole-{name}",
                settings=settings,
                env=env,
                synthesizer=synthesizer,
                description=f"cdk-sagemaker-rl reference app: CartPole-v1 train-and-serve ({name})",
            )
            continue
        if source not in stacks:
            raise SystemExit(
                f"environment {name!r} serves {source!r}'s approved policy: list {source!r} "
                f"before it under {ENVIRONMENTS_KEY!r} in cdk.json"
            )
        promoted = PromotedCartPoleStack(
            app,
            f"RLCartPole-{name}",
            settings=settings,
            env=env,
            synthesizer=synthesizer,
            description=f"cdk-sagemaker-rl reference app: CartPole-v1 from {source} ({name})",
        )
        # `cdk deploy --all`: the source environment trains (and registers) first.
        promoted.add_stack_dependency(stacks[source])
        stacks[name] = promoted
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
