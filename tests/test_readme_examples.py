"""The README's composable-pieces examples run as written, and do what the text says."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from tests.conftest import ROOT


def _section_code(title: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("readme")
    (work / "src").mkdir()
    (work / "src" / "train.py").write_text("print('train')\n")
    blocks = _section_code("Composable pieces")
    assert len(blocks) == 2, "the section has the training step and the endpoint examples"
    app = cdk.App()
    stack = cdk.Stack(
        app, "Readme", env=cdk.Environment(account="123456789012", region="eu-west-1")
    )
    my_function = lambda_.Function(
        stack,
        "MyFunction",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
    cwd = os.getcwd()
    os.chdir(work)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {"self": stack, "my_function": my_function})
        yield app.synth().get_stack_by_name("Readme").template
    finally:
        os.chdir(cwd)


def _statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = json.dumps(resource["Properties"]["Roles"])
        if role_prefix in roles:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_the_users_state_machine_may_run_exactly_the_named_jobs(template: dict[str, Any]) -> None:
    statements = _statements(template, "NightlyRole")
    run = [s for s in statements if "sagemaker:CreateTrainingJob" in s["Action"]]
    assert len(run) == 1
    assert json.dumps(run[0]["Resource"]).endswith(':training-job/nightly-rl-*"]]}')
    passes = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert json.dumps(passes[0]["Resource"]) == '{"Fn::GetAtt": ["ExecutionRole605A040B", "Arn"]}'
    machine = next(
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    )
    assert '"TrainingJobName.$":"$.jobName"' in json.dumps(machine["Properties"]).replace("\\", "")


def test_the_created_execution_role_reads_the_code_and_the_grant_lands_on_it(
    template: dict[str, Any],
) -> None:
    statements = _statements(template, "ExecutionRole")
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"s3:GetObject", "s3:PutObject", "logs:PutLogEvents", "ecr:BatchGetImage"} <= actions
    writes = next(s for s in statements if s.get("Sid") == "WriteArtifacts")
    assert "/models/*" in json.dumps(writes["Resource"])
    # data.grant_read(train): the grant goes to the job's role, not the state machine's.
    assert any("s3:GetBucket*" in json.dumps(s["Action"]) for s in statements)


def test_the_endpoint_example_grants_invoke_endpoint_to_the_api_and_the_function(
    template: dict[str, Any],
) -> None:
    for role in ("ApiPOSTSagemakerRole", "MyFunctionServiceRole"):
        statements = _statements(template, role)
        assert any(s["Action"] == "sagemaker:InvokeEndpoint" for s in statements), role
    alarms = [
        resource
        for logical_id, resource in template["Resources"].items()
        # The README's alarm, not the rollback alarms each endpoint creates for itself.
        if resource["Type"] == "AWS::CloudWatch::Alarm" and "RollbackAlarms" not in logical_id
    ]
    assert [a["Properties"].get("MetricName") for a in alarms] == ["Invocation5XXErrors"]


def test_the_gating_example_gates_registers_and_promotes() -> None:
    (block,) = _section_code("Gating and promotion")
    app = cdk.App()
    stack = cdk.Stack(app, "Gated", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(block, "README.md", "exec"), {"self": stack})
        template = app.synth().get_stack_by_name("Gated").template
    finally:
        os.chdir(cwd)
    types = [r["Type"] for r in template["Resources"].values()]
    assert types.count("Custom::RLPolicyGate") == 1
    assert types.count("Custom::RLApprovedModelVersion") == 1
    (gate,) = [r for r in template["Resources"].values() if r["Type"] == "Custom::RLPolicyGate"]
    assert gate["Properties"]["Gate"]["Metric"] == "eval_reward_mean"
    assert gate["Properties"]["ModelPackageGroupName"] == "cartpole-dev"
    (lookup,) = [
        r for r in template["Resources"].values() if r["Type"] == "Custom::RLApprovedModelVersion"
    ]
    assert json.dumps(lookup["Properties"]["ModelPackageGroup"]).endswith(
        ':model-package-group/cartpole-dev"]]}'
    )


def test_the_distributed_example_trains_on_ray_clusters_and_serves() -> None:
    (block,) = _section_code("Distributed RL")
    app = cdk.App()
    stack = cdk.Stack(app, "Ray", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        namespace: dict[str, Any] = {"self": stack}
        exec(compile(block, "README.md", "exec"), namespace)
        template = app.synth().get_stack_by_name("Ray").template
    finally:
        os.chdir(cwd)
    requests = {name: namespace[name].training_request() for name in ("rllib", "mixed")}
    for request in requests.values():
        assert request["HyperParameters"]["sagemaker_program"] == (
            '"cdk_sagemaker_rl_ray_launcher.py"'
        )
        assert request["Environment"]["CDK_SAGEMAKER_RL_ENTRY_POINT"] == "train.py"
    rllib, mixed = requests["rllib"], requests["mixed"]
    assert rllib["ResourceConfig"]["InstanceCount"] == 2
    assert rllib["AlgorithmSpecification"]["TrainingImage"].endswith("2.8.0-cpu-py312")
    assert mixed["ResourceConfig"]["InstanceGroups"] == [
        {"InstanceGroupName": "learner", "InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
        {"InstanceGroupName": "rollouts", "InstanceType": "ml.c5.2xlarge", "InstanceCount": 4},
    ]
    # One image on every group: the DLC's GPU variant, which also runs on the CPU group.
    assert mixed["AlgorithmSpecification"]["TrainingImage"].endswith("2.8.0-gpu-py312")
    assert mixed["Environment"]["CDK_SAGEMAKER_RL_RAY_HEAD_GROUP"] == "learner"
    assert mixed["Environment"]["CDK_SAGEMAKER_RL_RAY_STARTUP_TIMEOUT"] == "600"
    (channel,) = mixed["InputDataConfig"]
    assert channel["DataSource"]["S3DataSource"]["InstanceGroupNames"] == ["rollouts"]
    # Only the homogeneous one is deployed: one endpoint, served by the PyTorch inference image.
    endpoints = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Endpoint"
    ]
    assert len(endpoints) == 1
