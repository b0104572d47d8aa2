"""Reward gate, model registry and promotion at synth time: wiring, requests, IAM, bad input.

One stack is synthesized once with four users of the feature: ``Gated`` (fit(wait=True), a gate on
the evaluation file with a champion rule, the default registry), ``Manual`` (fit(wait=False), a
gate on a metric definition, manual approval into a shared group), ``Promoted`` (an
ApprovedPolicy of Gated's group, with production options) and ``Pinned`` (an ApprovedPolicy of
version 3 of another account's group). Requests are checked with botocore's input shapes, the
template with cfn-lint and cdk-nag.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

from cdk_sagemaker_rl import (
    ApprovedPolicy,
    AutoScaling,
    Comparison,
    ContainerImage,
    ModelPackageGroup,
    ModelRegistry,
    RewardGate,
    RLEstimator,
    ValidationError,
)
from tests.conftest import cdk_json_context
from tests.test_api_shapes import Deployment, Integration, request_problems
from tests.test_training import ENV, EXAMPLE
from tests.test_workflow_serving import Resolver, task_request

STACK = "Gating"
PYTORCH: dict[str, Any] = {
    "entry_point": "train.py",
    "source_dir": str(EXAMPLE),
    "image_uri": ContainerImage.pytorch_training("2.6"),
    "train_instance_type": "ml.m5.large",
    "metric_definitions": [{"Name": "episode_reward_mean", "Regex": "episode_reward_mean: (\\S+)"}],
}
EVAL_GATE = RewardGate(
    "eval_reward_mean", 450, evaluation_file="evaluation.json", max_regression=10
)
OTHER_ACCOUNT = "444455556666"
FOREIGN_GROUP = f"arn:aws:sagemaker:{ENV.region}:{OTHER_ACCOUNT}:model-package-group/rl-dev"


class Synth:
    def __init__(self, out: Path) -> None:
        app = cdk.App(outdir=str(out), context=cdk_json_context())
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
        stack = cdk.Stack(app, STACK, env=ENV)
        gated = RLEstimator(stack, "Gated", job_name="cartpole-gated", **PYTORCH)
        gated.fit()
        self.gated = gated.deploy("ml.m5.large", entry_point="inference.py", gate=EVAL_GATE)
        self.gated_estimator = gated
        self.shared = ModelPackageGroup(
            stack,
            "Shared",
            model_package_group_name="rl-shared",
            shared_with_accounts=[OTHER_ACCOUNT],
        )
        manual = RLEstimator(stack, "Manual", job_name="cartpole-manual", **PYTORCH)
        manual.fit(wait=False)
        self.manual = manual.deploy(
            "ml.m5.large",
            entry_point="inference.py",
            gate=RewardGate("episode_reward_mean", 400, comparison=">"),
            registry=ModelRegistry(
                group=self.shared,
                manual_approval=True,
                approval_timeout=cdk.Duration.days(2),
                approval_poll_interval=cdk.Duration.minutes(1),
            ),
        )
        promoted = ApprovedPolicy(
            stack, "Promoted", model_package_group="cartpole-gated", revision="2026-11-30"
        )
        self.promoted = promoted.deploy(
            "ml.m5.large",
            2,
            entry_point="inference.py",
            autoscaling=AutoScaling(max_capacity=4, target_invocations_per_instance=100),
        )
        pinned = ApprovedPolicy(stack, "Pinned", model_package_group=FOREIGN_GROUP, version=3)
        self.pinned = pinned.deploy(entry_point="inference.py", instance_type="ml.m5.large")
        app.synth()
        self.path = out / f"{STACK}.template.json"
        self.template = json.loads(self.path.read_text())
        self.report = json.loads((out / "validation-report.json").read_text())
        self.resources: dict[str, Any] = self.template["Resources"]
        self.resolver = Resolver(self.template, Deployment(ENV.region, ENV.account, STACK))

    def one(self, kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
        ((logical_id, resource),) = [
            (i, r) for i, r in self.resources.items() if r["Type"] == kind and i.startswith(prefix)
        ]
        return logical_id, resource

    def statements(self, role_prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for policy in self.resources.values():
            if policy["Type"] == "AWS::IAM::Policy" and any(
                r["Ref"].startswith(role_prefix) for r in policy["Properties"]["Roles"]
            ):
                found += self.resolver.resolve(policy["Properties"]["PolicyDocument"])["Statement"]
        assert found, role_prefix
        return found


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("gating"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """action -> resources, over every statement."""
    granted: dict[str, set[str]] = {}
    for statement in statements:
        for action in _list(statement["Action"]):
            granted.setdefault(action, set()).update(_list(statement["Resource"]))
    return granted


def arn(resource: str, account: str = ENV.account) -> str:
    return f"arn:aws:sagemaker:{ENV.region}:{account}:{resource}"


# ================================================================ fit(wait=True): the resource
def test_the_gate_runs_after_training_and_before_the_model(synth: Synth) -> None:
    gate_id, gate = synth.one("Custom::RLPolicyGate", "GatedGate")
    completion = [d for d in gate["DependsOn"] if d.startswith("GatedDeployTimeCompletion")]
    assert completion, gate["DependsOn"]
    _, model = synth.one("AWS::SageMaker::Model", "GatedServing")
    assert gate_id in model["DependsOn"]
    properties = synth.resolver.resolve(gate["Properties"])
    assert properties["TrainingJobName"].startswith("cartpole-gated-")
    assert properties["ModelPackageGroupName"] == "cartpole-gated"
    assert properties["ApprovalStatus"] == "Approved"
    assert properties["Gate"] == {
        "Metric": "eval_reward_mean",
        "Comparison": ">=",
        "Threshold": "450.0",
        "MaxRegression": "10.0",
        "Source": {"Kind": "EvaluationFile", "File": "evaluation.json"},
    }
    # The champion is read from the endpoint by its synth-time ARN (Ref would be a cycle).
    assert properties["EndpointArn"] == arn(f"endpoint/{synth.gated.endpoint_name.lower()}")
    assert properties["ChampionTag"] == "cdk-sagemaker-rl:training-job"
    image = properties["Container"]["Image"]
    assert "pytorch-inference" in image
    assert properties["Container"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}


def test_the_endpoint_records_which_job_it_serves(synth: Synth) -> None:
    _, endpoint = synth.one("AWS::SageMaker::Endpoint", "GatedServing")
    run_id, _ = synth.one("Custom::RLTrainingRun", "GatedDeployTime")
    assert endpoint["Properties"]["Tags"] == [
        {
            "Key": "cdk-sagemaker-rl:training-job",
            "Value": {"Fn::GetAtt": [run_id, "TrainingJobName"]},
        }
    ]
    tags = synth.resolver.resolve(endpoint["Properties"])["Tags"]
    request = {"ResourceArn": arn("endpoint/x"), "Tags": tags}
    assert request_problems(Integration("sagemaker", "AddTags", "aws-sdk"), request) == []


def test_the_default_registry_group_is_created_by_the_gate_and_outlives_the_stack(
    synth: Synth,
) -> None:
    # Not a CloudFormation resource: the type does not exist in every region, and the record
    # of what was trained must stay when the stack goes.
    groups = [i for i, r in synth.resources.items() if r["Type"].endswith("ModelPackageGroup")]
    assert len(groups) == 1 and groups[0].startswith("Shared"), groups  # the user's own
    _, gate = synth.one("Custom::RLPolicyGate", "GatedGate")
    create = gate["Properties"]["CreateGroup"]
    request = {
        "ModelPackageGroupName": gate["Properties"]["ModelPackageGroupName"],
        "ModelPackageGroupDescription": create["Description"],
    }
    assert request["ModelPackageGroupName"] == "cartpole-gated"
    assert "Gating/Gated" in request["ModelPackageGroupDescription"]
    create_group = Integration("sagemaker", "CreateModelPackageGroup", "aws-sdk")
    assert request_problems(create_group, request) == []
    # A group the user passes is theirs: the gate never creates it.
    assert "CreateGroup" not in _workflow(synth)["States"]["Gate"]["Parameters"]["Payload"]
    outputs = {k for k in synth.template["Outputs"] if k.startswith("GatedGate")}
    assert any("GateVerdict" in k for k in outputs) and any("ModelPackageArn" in k for k in outputs)


def test_the_gate_function_reads_this_estimator_only_and_writes_its_group_only(
    synth: Synth,
) -> None:
    grants = _grants(synth.statements("GatedGateFunctionRole"))
    assert grants.pop("sagemaker:DescribeTrainingJob") == {arn("training-job/cartpole-gated-*")}
    (archives,) = grants.pop("s3:GetObject")
    assert archives.endswith("/training/cartpole-gated-*/output/output.tar.gz"), archives
    group, versions = (
        arn("model-package-group/cartpole-gated"),
        arn("model-package/cartpole-gated/*"),
    )
    assert grants.pop("sagemaker:CreateModelPackage") == {group, versions}
    assert grants.pop("sagemaker:DescribeModelPackage") == {group, versions}
    assert grants.pop("sagemaker:ListModelPackages") == {group, versions}
    assert grants.pop("sagemaker:UpdateModelPackage") == {versions}
    assert grants.pop("sagemaker:CreateModelPackageGroup") == {group}
    assert grants.pop("sagemaker:DescribeModelPackageGroup") == {group}
    endpoint = arn(f"endpoint/{synth.gated.endpoint_name.lower()}")
    assert grants.pop("sagemaker:ListTags") == {endpoint}
    assert grants.pop("logs:CreateLogStream") and grants.pop("logs:PutLogEvents")
    # What is left is X-Ray, which has no resource type.
    assert set(grants) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, grants
    assert all(r == {"*"} for r in grants.values())


# ============================================================= fit(wait=False): the workflow
def _workflow(synth: Synth) -> dict[str, Any]:
    from tests.test_api_shapes import state_machine_definition

    machine_id, _ = synth.one("AWS::StepFunctions::StateMachine", "ManualServingWorkflow")
    return state_machine_definition(synth.resolver, machine_id)


def test_the_workflow_judges_then_waits_for_approval_before_creating_the_model(
    synth: Synth,
) -> None:
    states = _workflow(synth)["States"]
    assert states["Train"]["Next"] == "Gate"
    choice = states["GatePassed?"]
    assert choice["Choices"][0] == {
        "Variable": "$.Gate.Verdict",
        "StringEquals": "failed",
        "Next": "GateFailed",
    }
    assert choice["Choices"][1]["Next"] == "WaitForApproval"
    assert choice["Default"] == "NameServingResources"
    assert states["GateFailed"] == {
        "Type": "Fail",
        "Comment": states["GateFailed"]["Comment"],
        "Error": "RewardGateFailed",
        "CausePath": "$.Gate.Message",
    }
    assert states["WaitForApproval"]["Seconds"] == 60
    assert states["WaitForApproval"]["Next"] == "CheckApproval"
    approved = states["Approved?"]
    assert [c["Next"] for c in approved["Choices"]] == ["NameServingResources", "WaitForApproval"]
    assert approved["Default"] == "NotApproved"
    # Once serving, the endpoint is tagged with the job: the next gate's champion.
    assert states["TagServedPolicy"]["Next"] == "Served"


def test_the_workflow_gate_tasks_send_valid_requests(synth: Synth) -> None:
    states = _workflow(synth)["States"]
    document = {
        "Training": {"TrainingJobName": "cartpole-manual-1", "ModelDataUrl": "s3://b/m.tar.gz"},
        "Gate": {"ModelPackageArn": arn("model-package/rl-shared/1"), "ApprovalDeadline": "1.5"},
    }
    context = {"Execution": {"Name": "cartpole-manual-1", "Id": "x"}}
    calls = {}
    for name in ("Gate", "CheckApproval", "TagServedPolicy"):
        integration, request = task_request(states[name], document, context)
        assert request_problems(integration, request) == [], (name, request)
        calls[name] = request
    payload = json.loads(calls["Gate"]["Payload"])
    assert payload["TrainingJobName"] == "cartpole-manual-1"
    assert payload["ModelPackageGroupName"] == "rl-shared"
    assert payload["ApprovalStatus"] == "PendingManualApproval"
    assert payload["ApprovalTimeoutSeconds"] == str(2 * 24 * 3600)
    assert payload["Gate"]["Comparison"] == ">" and "EndpointArn" not in payload
    check = json.loads(calls["CheckApproval"]["Payload"])
    assert check == {
        "Action": "CheckApproval",
        "ModelPackageArn": arn("model-package/rl-shared/1"),
        "Deadline": "1.5",
    }
    assert calls["TagServedPolicy"]["Tags"] == [
        {"Key": "cdk-sagemaker-rl:training-job", "Value": "cartpole-manual-1"}
    ]


def test_the_workflow_may_invoke_the_gate_and_tag_its_endpoint_only(synth: Synth) -> None:
    grants = _grants(synth.statements("ManualServingWorkflowStateMachineRole"))
    function_id, _ = synth.one("AWS::Lambda::Function", "ManualGateFunction")
    function = synth.resolver.resolve({"Fn::GetAtt": [function_id, "Arn"]})
    assert grants["lambda:InvokeFunction"] == {function, f"{function}:*"}
    assert grants["sagemaker:AddTags"] >= {arn(f"endpoint/{synth.manual.endpoint_name.lower()}")}
    # No ListTags: without max_regression the gate reads no champion.
    gate = _grants(synth.statements("ManualGateFunctionRole"))
    assert "sagemaker:ListTags" not in gate and "s3:GetObject" not in gate


def test_a_shared_group_lets_the_named_accounts_read_its_versions(synth: Synth) -> None:
    _, group = synth.one("AWS::SageMaker::ModelPackageGroup", "Shared")
    policy = synth.resolver.resolve(group["Properties"]["ModelPackageGroupPolicy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{OTHER_ACCOUNT}:root"]}
    assert sorted(statement["Action"]) == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
    ]
    assert statement["Resource"] == [
        arn("model-package-group/rl-shared"),
        arn("model-package/rl-shared/*"),
    ]
    put = Integration("sagemaker", "PutModelPackageGroupPolicy", "aws-sdk")
    request = {"ModelPackageGroupName": "rl-shared", "ResourcePolicy": json.dumps(policy)}
    assert request_problems(put, request) == []


# ======================================================================== promotion
def test_promotion_serves_the_looked_up_version_without_training(synth: Synth) -> None:
    lookup_id, lookup = synth.one("Custom::RLApprovedModelVersion", "PromotedLookup")
    assert synth.resolver.resolve(lookup["Properties"]) | {"ServiceToken": "-"} == {
        "ServiceToken": "-",
        "ModelPackageGroup": arn("model-package-group/cartpole-gated"),
        "Revision": "2026-11-30",
    }
    _, model = synth.one("AWS::SageMaker::Model", "PromotedServing")
    container = model["Properties"]["PrimaryContainer"]
    assert container["Image"] == {"Fn::GetAtt": [lookup_id, "Image"]}
    assert container["ModelDataUrl"] == {"Fn::GetAtt": [lookup_id, "ModelDataUrl"]}
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    assert lookup_id in model["DependsOn"]
    # The same production options as a trained estimator's deploy().
    synth.one("AWS::ApplicationAutoScaling::ScalableTarget", "PromotedServing")
    assert not [
        i
        for i, r in synth.resources.items()
        if i.startswith("Promoted")
        and r["Type"] in ("Custom::RLTrainingRun", "AWS::StepFunctions::StateMachine")
    ]


def test_the_lookup_is_read_only_and_scoped_to_its_group(synth: Synth) -> None:
    for prefix, account, group in (
        ("PromotedLookupFunctionRole", ENV.account, "cartpole-gated"),
        ("PinnedLookupFunctionRole", OTHER_ACCOUNT, "rl-dev"),
    ):
        grants = _grants(synth.statements(prefix))
        scoped = {
            arn(f"model-package-group/{group}", account),
            arn(f"model-package/{group}/*", account),
        }
        assert grants.pop("sagemaker:DescribeModelPackage") == scoped
        assert grants.pop("sagemaker:ListModelPackages") == scoped
        assert not [a for a in grants if a.startswith("sagemaker:")], grants
    _, pinned = synth.one("Custom::RLApprovedModelVersion", "PinnedLookup")
    assert pinned["Properties"]["Version"] == "3"
    assert pinned["Properties"]["ModelPackageGroup"] == FOREIGN_GROUP


# ================================================================================ lint and nag
def test_cfn_lint_is_clean(synth: Synth) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(synth.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_finds_nothing_unacknowledged(synth: Synth) -> None:
    (report,) = [p for p in synth.report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert report["violations"] == []
    # The only "*" resources left are X-Ray's (no resource type), one per bundled function.
    stars = [
        v["reason"]
        for v in report["suppressedViolations"]
        if v["ruleName"].endswith("[Resource::*]")
    ]
    assert stars and all("X-Ray" in r or "no resource type" in r for r in stars), stars


# ================================================================================= bad input
def _estimator(wait: bool = True, **extra: Any) -> RLEstimator:
    stack = cdk.Stack(cdk.App(), "Bad", env=ENV)
    estimator = RLEstimator(stack, "E", **{**PYTORCH, **extra})
    estimator.fit(wait=wait)
    return estimator


DEPLOY: dict[str, Any] = {"instance_type": "ml.m5.large", "entry_point": "inference.py"}


def test_a_gate_metric_nothing_produces_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        _estimator().deploy(**DEPLOY, gate=RewardGate("eval_reward_mean", 450))
    message = str(raised.value)
    assert "eval_reward_mean" in message and "'episode_reward_mean'" in message
    assert "evaluation_file" in message and "README.md#gating-and-promotion" in message


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"comparison": "~="}, "comparison='~='"),
        ({"threshold": "450"}, "threshold='450'"),
        ({"threshold": float("nan")}, "threshold=nan"),
        ({"threshold": True}, "threshold=True"),
        ({"max_regression": -1}, "max_regression=-1"),
        ({"evaluation_file": "../evaluation.json"}, "evaluation_file='../evaluation.json'"),
        ({"metric": ""}, "metric=''"),
    ],
)
def test_a_malformed_gate_is_refused(kwargs: dict[str, Any], named: str) -> None:
    arguments = {"metric": "eval_reward_mean", "threshold": 450, **kwargs}
    with pytest.raises(ValidationError) as raised:
        RewardGate(**arguments)
    assert named in str(raised.value) and "Allowed:" in str(raised.value)


def test_comparisons_are_named_by_operator_or_member() -> None:
    assert RewardGate("m", 1, comparison="<").operator is Comparison.LESS_THAN
    assert RewardGate("m", 1, comparison="LESS_THAN_OR_EQUAL").operator.value == "<="


@pytest.mark.parametrize("name", ["bad_name", "-leading", "x" * 64])
def test_a_group_name_sagemaker_refuses_is_refused(name: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _estimator().deploy(**DEPLOY, registry=ModelRegistry(group=name))
    assert repr(name) in str(raised.value) and "model package group" in str(raised.value)
    with pytest.raises(ValidationError):
        ModelPackageGroup(cdk.Stack(), "G", model_package_group_name=name)


@pytest.mark.parametrize(
    "group",
    [
        "arn:aws:sagemaker:us-west-2:1234:model-package-group/rl",
        "arn:aws:sagemaker:us-west-2:111122223333:model-package/rl/1",
        "arn:aws:sagemaker:us-west-2:111122223333:model-package-group/rl_dev",
        "rl dev",
    ],
)
def test_promotion_from_a_malformed_group_is_refused(group: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ApprovedPolicy(cdk.Stack(), "P", model_package_group=group)
    assert repr(group) in str(raised.value) and "README.md#gating-and-promotion" in str(
        raised.value
    )


def test_manual_approval_needs_a_deploy_that_can_wait_for_it() -> None:
    with pytest.raises(ValidationError) as raised:
        _estimator(wait=True).deploy(**DEPLOY, registry=ModelRegistry(manual_approval=True))
    assert "manual_approval=True" in str(raised.value) and "fit(wait=False)" in str(raised.value)
    # fit(wait=False) can.
    _estimator(wait=False).deploy(**DEPLOY, registry=ModelRegistry(manual_approval=True))


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: ModelRegistry(approval_timeout=cdk.Duration.days(1)), "approval_timeout"),
        (
            lambda: ModelRegistry(manual_approval=True, approval_timeout=cdk.Duration.days(400)),
            "approval_timeout",
        ),
        (lambda: ModelRegistry(manual_approval="yes"), "manual_approval='yes'"),  # type: ignore[arg-type]
        (lambda: ApprovedPolicy(cdk.Stack(), "P", model_package_group="g", version=0), "version=0"),
        (
            lambda: ModelPackageGroup(cdk.Stack(), "G", shared_with_accounts=["12"]),
            "shared_with_accounts",
        ),
        (
            lambda: ModelPackageGroup(cdk.Stack(), "G", description="x" * 1025),
            "description=",
        ),
        (
            lambda: ApprovedPolicy(cdk.Stack(), "P", model_package_group="g").deploy(
                "ml.m5.large", image=42
            ),
            "image=42",
        ),
    ],
)
def test_registry_and_promotion_options_are_checked(build: Any, named: str) -> None:
    with pytest.raises(ValidationError) as raised:
        build()
    assert named in str(raised.value)


def test_deploy_arguments_of_the_wrong_kind_are_refused() -> None:
    with pytest.raises(ValidationError, match="gate="):
        _estimator().deploy(**DEPLOY, gate={"metric": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="registry="):
        _estimator().deploy(**DEPLOY, registry="rl")  # type: ignore[arg-type]
    approved = ApprovedPolicy(cdk.Stack(), "Once", model_package_group="g")
    approved.deploy("ml.m5.large", entry_point="inference.py")
    with pytest.raises(ValidationError, match="deploy\\(\\) was already called"):
        approved.deploy("ml.m5.large", entry_point="inference.py")
    with pytest.raises(ValidationError, match="unknown option"):
        ApprovedPolicy(cdk.Stack(), "P", model_package_group="g").deploy(
            "ml.m5.large",
            entrypoint="inference.py",  # type: ignore[call-arg]
        )
