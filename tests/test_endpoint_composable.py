"""RLEndpoint on its own: no estimator, any model artifact, used as aws-cdk-lib's IEndpoint.

The endpoint is built from a literal ``s3://`` artifact and a plan, then handed to what aws-cdk-lib
builds on ``aws_sagemaker.IEndpoint`` (API Gateway's SagemakerIntegration), granted to a function
and alarmed on. The app is synthesized once for the module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from cdk_sagemaker_rl import ContainerImage, RLEndpoint, ServingPlan, ValidationError
from cdk_sagemaker_rl._naming import unique_physical_name
from cdk_sagemaker_rl.serving import WorkflowTarget, serving_plan_for_attached

ENV = cdk.Environment(account="111122223333", region="us-west-2")
IMAGE = "111122223333.dkr.ecr.us-west-2.amazonaws.com/policy:1"
ARTIFACT: dict[str, Any] = {
    "model_data_url": "s3://bucket/model.tar.gz",
    "model_data_object_arn": "arn:aws:s3:::bucket/model.tar.gz",
}


def _endpoint(scope: cdk.Stack, construct_id: str, **overrides: Any) -> RLEndpoint:
    options: dict[str, Any] = {
        **ARTIFACT,
        "plan": ServingPlan("custom", ContainerImage.from_uri(IMAGE)),
        "instance_type": "ml.m5.large",
        **overrides,
    }
    return RLEndpoint(scope, construct_id, **options)


@dataclass
class Composed:
    stack: cdk.Stack
    endpoint: RLEndpoint
    attached: RLEndpoint
    template: Template

    def logical_id(self, construct: Any) -> str:
        element = (
            construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        )
        return str(self.stack.get_logical_id(element))

    def statements_of(self, role_fragment: str) -> list[dict[str, Any]]:
        return [
            statement
            for policy in self.template.find_resources("AWS::IAM::Policy").values()
            if any(role_fragment in r["Ref"] for r in policy["Properties"]["Roles"])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


@pytest.fixture(scope="module")
def composed() -> Composed:
    app = cdk.App()
    stack = cdk.Stack(app, "Composed", env=ENV)
    endpoint = _endpoint(stack, "Policy")
    attached = RLEndpoint(
        stack,
        "Attached",
        **ARTIFACT,
        plan=serving_plan_for_attached(stack, None, IMAGE, "ml.m5.large", None),
        instance_type="ml.m5.large",
        variant_name="Blue",
    )
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("POST", apigw.SagemakerIntegration(endpoint))
    caller = lambda_.Function(
        stack,
        "Caller",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    endpoint.grant_invoke(caller)
    attached.grant_predict(caller)
    cloudwatch.Alarm(
        stack,
        "ServerErrors",
        metric=endpoint.metric_invocation5xx_errors(period=cdk.Duration.minutes(5)),
        threshold=1,
        evaluation_periods=1,
    )
    cloudwatch.Alarm(
        stack,
        "SlowModel",
        metric=attached.metric_model_latency(),
        threshold=100_000,
        evaluation_periods=3,
    )
    return Composed(stack, endpoint, attached, Template.from_stack(stack))


def test_the_endpoint_serves_the_given_artifact_in_the_given_image(composed: Composed) -> None:
    model = composed.template.to_json()["Resources"][composed.logical_id(composed.endpoint.model)]
    assert model["Properties"]["PrimaryContainer"] == {
        "Image": IMAGE,
        "ModelDataUrl": "s3://bucket/model.tar.gz",
    }
    assert "DependsOn" not in model or all("Policy" in d for d in model["DependsOn"])


def test_the_endpoint_is_an_iendpoint_of_aws_cdk_lib(composed: Composed) -> None:
    endpoint_id = composed.logical_id(composed.endpoint.endpoint)
    resolve = composed.stack.resolve
    assert resolve(composed.endpoint.endpoint_arn) == {"Ref": endpoint_id}
    # The name is fixed at synth time (the model role's log permission names its log group).
    name = composed.endpoint.endpoint_name
    endpoint = composed.template.to_json()["Resources"][endpoint_id]
    assert endpoint["Properties"]["EndpointName"] == name
    assert name.startswith("Composed-Policy-")
    assert resolve(composed.endpoint.endpoint_ref.endpoint_arn) == {"Ref": endpoint_id}
    # The path is kept: the endpoint is a Resource, not a wrapper construct.
    assert composed.endpoint.node.path == "Composed/Policy"
    assert composed.endpoint.stack is composed.stack


def test_api_gateway_integration_invokes_the_endpoint(composed: Composed) -> None:
    endpoint_id = composed.logical_id(composed.endpoint.endpoint)
    (method,) = composed.template.find_resources("AWS::ApiGateway::Method").values()
    uri = composed.stack.resolve(method["Properties"]["Integration"]["Uri"])
    assert composed.endpoint.endpoint_name in json.dumps(uri)
    credentials = method["Properties"]["Integration"]["Credentials"]["Fn::GetAtt"][0]
    assert {
        "Action": "sagemaker:InvokeEndpoint",
        "Effect": "Allow",
        "Resource": {"Ref": endpoint_id},
    } in composed.statements_of(credentials)


def test_grant_invoke_is_invoke_endpoint_and_grant_predict_is_the_function(
    composed: Composed,
) -> None:
    endpoint_id = composed.logical_id(composed.endpoint.endpoint)
    statements = composed.statements_of("CallerServiceRole")
    assert {
        "Action": "sagemaker:InvokeEndpoint",
        "Effect": "Allow",
        "Resource": {"Ref": endpoint_id},
    } in statements
    predict_id = composed.logical_id(composed.attached.predict_function)
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert {"Fn::GetAtt": [predict_id, "Arn"]} in invoke["Resource"]


def test_alarms_name_the_endpoint_and_its_variant(composed: Composed) -> None:
    alarms = {
        alarm["Properties"]["MetricName"]: alarm["Properties"]
        for logical_id, alarm in composed.template.find_resources("AWS::CloudWatch::Alarm").items()
        # The user's alarms, not the rollback alarms each endpoint creates for itself.
        if "RollbackAlarms" not in logical_id
    }
    errors, latency = alarms["Invocation5XXErrors"], alarms["ModelLatency"]
    assert (errors["Namespace"], errors["Statistic"], errors["Period"]) == (
        "AWS/SageMaker",
        "Sum",
        300,
    )
    assert errors["Dimensions"] == [
        {"Name": "EndpointName", "Value": composed.endpoint.endpoint_name},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert latency["Statistic"] == "Average"
    assert {"Name": "VariantName", "Value": "Blue"} in latency["Dimensions"]


def test_metric_helpers_have_their_default_statistics(composed: Composed) -> None:
    endpoint = composed.endpoint
    helpers: dict[str, tuple[Callable[..., cloudwatch.Metric], str]] = {
        "Invocations": (endpoint.metric_invocations, "Sum"),
        "Invocation4XXErrors": (endpoint.metric_invocation4xx_errors, "Sum"),
        "InvocationModelErrors": (endpoint.metric_invocation_model_errors, "Sum"),
        "ModelLatency": (endpoint.metric_model_latency, "Average"),
    }
    for name, (helper, statistic) in helpers.items():
        metric = helper()
        assert (metric.metric_name, metric.namespace, metric.statistic) == (
            name,
            "AWS/SageMaker",
            statistic,
        )
    assert endpoint.metric_invocations(statistic="SampleCount").statistic == "SampleCount"
    custom = endpoint.metric("OverheadLatency", dimensions_map={"VariantName": "Green"})
    dimensions = dict(custom.dimensions or {})
    assert dimensions["VariantName"] == "Green"
    assert set(dimensions) == {"EndpointName", "VariantName"}


def test_an_unknown_metric_option_is_refused(composed: Composed) -> None:
    with pytest.raises(ValidationError, match=r"metric option='periode'.*Allowed: one of:.*period"):
        composed.endpoint.metric_invocations(periode=cdk.Duration.minutes(1))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("kms_key", 42, "an aws_kms.IKey, a key ARN"),
        ("kms_key", "my key", "an aws_kms.IKey, a key ARN"),
        ("variant_name", "all_traffic", "1-63 letters, digits and hyphens"),
        ("function_url", "yes", "True or False"),
        ("allow_unauthenticated_function_url", 1, "True or False"),
        ("function_url_auth_type", "NONE", "an aws_lambda.FunctionUrlAuthType"),
        ("entry_point", 3, "a .py file name (str) or None"),
        ("model_kms_key", "alias/model", "an aws_kms.IKey"),
        ("initial_instance_count", True, "an integer >= 1"),
        ("instance_type", "ml.m5.giant", "a SageMaker serving (endpoint) instance type"),
        ("plan", "custom", "a ServingPlan"),
    ],
)
def test_bad_options_name_the_value_and_what_is_allowed(
    option: str, value: object, allowed: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Bad", env=ENV)
    with pytest.raises(ValidationError) as error:
        _endpoint(stack, "Policy", **{option: value})
    message = str(error.value)
    assert f"{option}={value!r} is not valid" in message
    assert f"Allowed: {allowed}" in message
    # Refused before anything was built: the id is still free.
    assert stack.node.try_find_child("Policy") is None
    _endpoint(stack, "Policy")


def _workflow_target(stack: cdk.Stack, **extra: Any) -> WorkflowTarget:
    training = sfn.StateMachine(
        stack,
        "Training",
        definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Noop")),
    )
    return WorkflowTarget(training_machine=training, name_base="policy", **extra)


def _definition(stack: cdk.Stack, endpoint: RLEndpoint) -> dict[str, Any]:
    assert endpoint.workflow is not None
    machine = endpoint.workflow.state_machine.node.default_child
    parts = stack.resolve(machine.definition_string)["Fn::Join"][1]  # type: ignore[union-attr]
    text = "".join(part if isinstance(part, str) else "<token>" for part in parts)
    return dict(json.loads(text))


def test_an_alias_is_refused_for_the_workflow_before_anything_is_built() -> None:
    stack = cdk.Stack(cdk.App(), "Workflow", env=ENV)
    target = _workflow_target(stack)
    with pytest.raises(ValidationError, match=r"kms_key='alias/serving'.*fit\(wait=False\)"):
        _endpoint(stack, "Policy", kms_key="alias/serving", workflow=target)
    assert stack.node.try_find_child("Policy") is None
    # A key ARN is fine; the endpoint name is fixed at synth time.
    endpoint = _endpoint(
        stack,
        "Policy",
        kms_key="arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        workflow=target,
    )
    assert re.fullmatch(r"Workflow-Policy-[0-9A-F]{8}", endpoint.endpoint_name)
    assert endpoint.endpoint_name == unique_physical_name(endpoint)


def test_workflow_tags_take_extra_tags_after_ours() -> None:
    """The seam for Tags.of(...): one function renders every Tags list the workflow sends."""
    stack = cdk.Stack(cdk.App(), "Tagged", env=ENV)
    extra = [{"Key": "team", "Value": "rl"}]
    target = _workflow_target(
        stack,
        # A tag with our key would clash (SageMaker refuses a key twice): ours wins.
        extra_tags=lambda: [*extra, {"Key": "cdk-sagemaker-rl:endpoint", "Value": "other"}],
    )
    endpoint = _endpoint(stack, "Policy", workflow=target)
    extra.append({"Key": "added-later", "Value": "yes"})
    states = _definition(stack, endpoint)["States"]
    ours = {"Key": "cdk-sagemaker-rl:endpoint", "Value": endpoint.endpoint_name}
    job = {"Key": "cdk-sagemaker-rl:training-job", "Value.$": "$$.Execution.Name"}
    later = [{"Key": "team", "Value": "rl"}, {"Key": "added-later", "Value": "yes"}]
    assert states["CreateModel"]["Parameters"]["Tags"] == [ours, job, *later]
    assert states["CreateEndpointConfig"]["Parameters"]["Tags"] == [ours, job, *later]
    assert states["CreateEndpoint"]["Parameters"]["Tags"] == [ours, *later]


def test_instance_and_failed_request_metrics(composed: Composed) -> None:
    """Instance utilization is published in /aws/sagemaker/Endpoints, not AWS/SageMaker; failed
    requests follow the rollback alarms' rule."""
    endpoint = composed.endpoint
    cpu = endpoint.metric_instance("CPUUtilization")
    assert (cpu.namespace, cpu.metric_name, cpu.statistic) == (
        "/aws/sagemaker/Endpoints",
        "CPUUtilization",
        "Average",
    )
    assert cpu.dimensions == {
        "EndpointName": endpoint.endpoint_name,
        "VariantName": endpoint.variant_name,
    }
    failed = endpoint.metric_failed_requests(cdk.Duration.minutes(1))
    assert failed.expression == "MAX([FILL(errors5xx, 0), FILL(modelErrors, 0)])"
    assert failed.period.to_seconds() == 60
