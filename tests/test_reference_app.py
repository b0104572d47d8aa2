"""The reference app as a reviewer sees it: lint-clean, nag-clean, deterministic, snapshotted."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from tests.conftest import ROOT, load_template, synth_app
from tests.test_api_shapes import request_problems
from tests.test_instance_groups import train_call
from tests.test_ray_cluster import CREATE_TRAINING_JOB

#: The environments that train and serve (same shape, different sizes and gates).
TRAINED = ("RLCartPole-dev", "RLCartPole-prod")
#: Serves dev's latest approved policy (ApprovedPolicy): no training of its own.
STAGING = "RLCartPole-staging"
STACKS = (*TRAINED, STAGING)

#: Every cdk-nag finding the reference stack acknowledges instead of fixing, with where. A new
#: wildcard makes this test fail until it is fixed or deliberately added here with its reason.
EXPECTED_ACKNOWLEDGEMENTS = {
    ("CartPole/DeployTime/FunctionRole/DefaultPolicy/Resource", "Resource::*"),
    (
        "CartPole/DeployTime/FunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        "training-job/cartpole-dev-*",
    ),
    (
        "CartPole/DeployTime/FunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        "<CartPoleStateMachineB8B93C01.Name>:*",
    ),
    # The reward gate's function: X-Ray (as every bundled function), the gated job and the
    # serving policy's job (named <base>-<timestamp> at deploy time), the evaluation file in
    # their output archives, and the registry versions SageMaker numbers as it creates them.
    ("CartPole/Gate/FunctionRole/DefaultPolicy/Resource", "Resource::*"),
    (
        "CartPole/Gate/FunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        "training-job/cartpole-dev-*",
    ),
    (
        "CartPole/Gate/FunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:s3:::<CartPoleArtifactsDE17BBDC>/training/"
        "cartpole-dev-*/output/output.tar.gz",
    ),
    (
        "CartPole/Gate/FunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        "model-package/cartpole-dev/*",
    ),
    ("CartPole/ExecutionRole/DefaultPolicy/Resource", "Resource::*"),
    (
        "CartPole/ExecutionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/TrainingJobs:*",
    ),
    (
        "CartPole/ExecutionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/TrainingJobs:log-stream:cartpole-dev-*",
    ),
    (
        "CartPole/ExecutionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:s3:::<CartPoleArtifactsDE17BBDC>/training/*",
    ),
    ("CartPole/Serving/PredictFunctionRole/DefaultPolicy/Resource", "Resource::*"),
    ("CartPole/Serving/Role/DefaultPolicy/Resource", "Resource::*"),
    (
        # Data capture: SageMaker names the files under the endpoint's own prefix.
        "CartPole/Serving/Role/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:s3:::<CartPoleArtifactsDE17BBDC>/data-capture/"
        "RLCartPoledev-CartPole-Serving-58C18C56/*",
    ),
    (
        "CartPole/Serving/Role/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/Endpoints/RLCartPoledev-CartPole-Serving-58C18C56:*",
    ),
    ("CartPole/SignalFunctionRole/DefaultPolicy/Resource", "Resource::*"),
    (
        "CartPole/SignalFunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/TrainingJobs:*",
    ),
    (
        "CartPole/SignalFunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/TrainingJobs:log-stream:cartpole-dev-*",
    ),
    (
        "CartPole/SignalFunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        "training-job/cartpole-dev-*",
    ),
    ("CartPole/StateMachine/Role/DefaultPolicy/Resource", "Resource::*"),
    (
        "CartPole/StateMachine/Role/DefaultPolicy/Resource",
        "Resource::<CartPoleSignalFunctionEF14BEBD.Arn>:*",
    ),
    (
        "CartPole/StateMachine/Role/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        "training-job/cartpole-dev-*",
    ),
}


#: The same for the staging stack: the lookup of dev's latest approved version and the endpoint
#: that serves it.
STAGING_ACKNOWLEDGEMENTS = {
    # The lookup: X-Ray, and sagemaker:ListModelPackages (acknowledged as having no resource
    # type; tests/test_iam_lint.py holds it to the Service Authorization Reference).
    ("CartPole/LookupFunctionRole/DefaultPolicy/Resource", "Resource::*"),
    (
        # DescribeModelPackage of the group's versions (numbered by SageMaker).
        "CartPole/LookupFunctionRole/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        "model-package/cartpole-dev/*",
    ),
    ("CartPole/Serving/PredictFunctionRole/DefaultPolicy/Resource", "Resource::*"),
    ("CartPole/Serving/Role/DefaultPolicy/Resource", "Resource::*"),
    (
        # The approved version's image is only known at deploy time (the lookup's Image).
        "CartPole/Serving/Role/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:*:repository/*",
    ),
    (
        "CartPole/Serving/Role/DefaultPolicy/Resource",
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/Endpoints/RLCartPolestaging-CartPole-Serving-75F450F8:*",
    ),
}


def cfn_lint(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, paths)],
        cwd=ROOT,  # picks up .cfnlintrc.yaml
        capture_output=True,
        text=True,
    )


def test_one_stack_per_environment_with_different_instance_types(reference_out: Path) -> None:
    types = {}
    for stack in TRAINED:
        template = load_template(reference_out, stack)
        configs = [
            r
            for r in template["Resources"].values()
            if r["Type"] == "AWS::SageMaker::EndpointConfig"
        ]
        (config,) = configs
        types[stack] = config["Properties"]["ProductionVariants"][0]["InstanceType"]
    assert types["RLCartPole-dev"] != types["RLCartPole-prod"]


def test_reference_stacks_are_environment_agnostic(reference_out: Path) -> None:
    manifest = json.loads((reference_out / "manifest.json").read_text())
    for stack in STACKS:
        assert manifest["artifacts"][stack]["environment"] == "aws://unknown-account/unknown-region"


def test_cfn_lint_is_clean_on_every_template(reference_out: Path) -> None:
    templates = sorted(reference_out.glob("*.template.json"))
    assert len(templates) == len(STACKS)
    result = cfn_lint(templates)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(reference_out: Path, tmp_path: Path) -> None:
    """The lint check can fail: a misspelt endpoint-config property is reported."""
    template = load_template(reference_out, "RLCartPole-dev")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SageMaker::EndpointConfig":
            variant = resource["Properties"]["ProductionVariants"][0]
            variant["InstanceTyp"] = variant.pop("InstanceType")
    broken = tmp_path / "broken.template.json"
    broken.write_text(json.dumps(template))
    result = cfn_lint([broken])
    assert result.returncode != 0
    assert "InstanceTyp" in result.stdout


def _acknowledged(reference_out: Path, stack: str) -> set[tuple[str, str]]:
    report = json.loads((reference_out / "validation-report.json").read_text())
    rows = set()
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["violations"]
        for violation in plugin.get("suppressedViolations", []):
            assert violation["reason"].strip(), violation
            finding = violation["ruleName"].split("[", 1)[1].rstrip("]")
            for construct in violation["violatingConstructs"]:
                path = construct["constructPath"]
                if path.startswith(stack + "/"):
                    rows.add((path.split("/", 1)[1], finding))
    return rows


def test_cdk_nag_findings_are_fixed_or_acknowledged_as_listed(reference_out: Path) -> None:
    assert _acknowledged(reference_out, "RLCartPole-dev") == EXPECTED_ACKNOWLEDGEMENTS
    assert _acknowledged(reference_out, STAGING) == STAGING_ACKNOWLEDGEMENTS


def test_staging_serves_the_approved_version_without_training(reference_out: Path) -> None:
    """Staging trains nothing: its model is the version the lookup resolves, after dev."""
    resources = load_template(reference_out, STAGING)["Resources"]
    kinds = {r["Type"] for r in resources.values()}
    assert not kinds & {
        "Custom::RLTrainingRun",
        "Custom::RLPolicyGate",
        "AWS::StepFunctions::StateMachine",
        "AWS::S3::Bucket",
        "AWS::SageMaker::ModelPackageGroup",
    }, kinds
    (lookup,) = [i for i, r in resources.items() if r["Type"] == "Custom::RLApprovedModelVersion"]
    (model,) = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Model"]
    container = model["Properties"]["PrimaryContainer"]
    assert container["Image"] == {"Fn::GetAtt": [lookup, "Image"]}
    assert container["ModelDataUrl"] == {"Fn::GetAtt": [lookup, "ModelDataUrl"]}
    assert lookup in model["DependsOn"]
    manifest = json.loads((reference_out / "manifest.json").read_text())
    # `cdk deploy --all` deploys dev (which trains and registers) first.
    assert "RLCartPole-dev" in manifest["artifacts"][STAGING]["dependencies"]


def test_synth_is_deterministic(reference_out: Path, tmp_path: Path) -> None:
    first = reference_out
    second = synth_app(tmp_path / "again")
    compared = 0
    for path in sorted(first.rglob("*")):
        if path.is_dir():
            continue
        twin = second / path.relative_to(first)
        assert twin.exists(), f"{path.relative_to(first)} only in the first synth"
        assert filecmp.cmp(path, twin, shallow=False), f"{path.relative_to(first)} differs"
        compared += 1
    assert compared > 10


@pytest.mark.parametrize("stack", ["RLCartPole-dev"])
def test_reference_template_snapshot(reference_out: Path, stack: str, snapshot: Any) -> None:
    assert load_template(reference_out, stack) == snapshot


def test_local_target_has_a_concrete_environment_and_no_bootstrap_rule(tmp_path: Path) -> None:
    out = synth_app(tmp_path / "local", {"target": "local", "environment": "dev"})
    template = load_template(out, "RLCartPole-dev")
    assert "CheckBootstrapVersion" not in template.get("Rules", {})
    assert not (out / "RLCartPole-prod.template.json").exists()
    shutil.rmtree(out)


def test_a_gate_threshold_override_must_be_a_number() -> None:
    from app import build_app
    from tests.conftest import cdk_json_context

    context = {**cdk_json_context(), "environment": "dev", "gate_threshold": "high"}
    with pytest.raises(SystemExit, match="gate_threshold='high': a number"):
        build_app(context)


def test_the_rllib_example_trains_through_the_ray_launcher_on_two_hosts() -> None:
    """``-c example=rllib`` (what ``demo --example rllib`` deploys): the catalogued Ray 2 image,
    the launcher as the program, two hosts, the same gate and serving."""
    from app import build_app
    from tests.conftest import cdk_json_context

    context = {
        **cdk_json_context(),
        "environment": "dev",
        "target": "local",
        "example": "rllib",
    }
    app = build_app(context)
    stack = app.node.find_child("RLCartPole-dev")
    assert isinstance(stack, cdk.Stack)
    template = Template.from_stack(stack).to_json()
    request = train_call(stack, template)
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["HyperParameters"]["sagemaker_program"] == '"cdk_sagemaker_rl_ray_launcher.py"'
    assert request["Environment"]["CDK_SAGEMAKER_RL_ENTRY_POINT"] == "train.py"
    # The Stable-Baselines3 example's hyperparameters do not leak into the RLlib script.
    assert "total_timesteps" not in request["HyperParameters"]
    assert "/pytorch-training:2.8.0-cpu-py312" in request["AlgorithmSpecification"]["TrainingImage"]
    assert request_problems(CREATE_TRAINING_JOB, request) == []


@pytest.mark.parametrize(("count", "expected"), [(None, 1), ("3", 3)])
def test_the_cartpole_example_honours_train_instance_count(
    count: str | None, expected: int
) -> None:
    """``-c train_instance_count=N`` reaches the CartPole example's job too (one host without)."""
    from app import build_app
    from tests.conftest import cdk_json_context

    context = {**cdk_json_context(), "environment": "dev", "target": "local"}
    if count is not None:
        context["train_instance_count"] = count
    stack = build_app(context).node.find_child("RLCartPole-dev")
    assert isinstance(stack, cdk.Stack)
    request = train_call(stack, Template.from_stack(stack).to_json())
    assert request["ResourceConfig"]["InstanceCount"] == expected
    assert request["HyperParameters"]["sagemaker_program"] == '"train.py"'


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("example", "dqn", "example='dqn': cartpole or rllib"),
        ("train_instance_count", "two", "train_instance_count='two': a whole number"),
    ],
)
def test_local_mode_settings_of_the_examples_are_checked(
    key: str, value: str, message: str
) -> None:
    from app import build_app
    from tests.conftest import cdk_json_context

    with pytest.raises(SystemExit, match=message):
        build_app({**cdk_json_context(), "environment": "dev", key: value})
