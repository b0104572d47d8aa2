"""Production serving: safe updates, autoscaling, serverless, data capture, container options.

One stack is synthesized once, with one estimator per combination that matters: ``Canary``
(fit(wait=True): a canary update, autoscaling with a schedule, data capture into the artifact
bucket, container options), ``Linear`` (fit(wait=False): a linear update with a user alarm,
autoscaling and data capture into a given bucket with a KMS key), ``Small`` (fit(wait=True),
serverless) and ``SmallNoWait`` (fit(wait=False), serverless). Every request, whether CloudFormation
sends it or the serving workflow, is checked with botocore's own input shapes; the template is
cfn-lint clean and cdk-nag (AwsSolutions) clean with each finding acknowledged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from cdk_sagemaker_rl import (
    AutoScaling,
    Capacity,
    ContainerImage,
    DataCapture,
    EndpointUpdate,
    RLEstimator,
    RollbackThresholds,
    ScheduledCapacity,
    ServerlessInference,
    TrafficShifting,
    ValidationError,
)
from tests.conftest import ROOT, cdk_json_context
from tests.test_api_shapes import Deployment, Integration, request_problems
from tests.test_training import ENV, EXAMPLE
from tests.test_workflow_serving import Resolver, task_request

STACK = "Production"
PYTORCH: dict[str, Any] = {
    "entry_point": "train.py",
    "source_dir": str(EXAMPLE),
    "image_uri": ContainerImage.pytorch_training("2.6"),
    "train_instance_type": "ml.m5.large",
}


class ScalingResolver(Resolver):
    """The shared resolver, plus the id Application Auto Scaling gives a scalable target."""

    def _compute(self, logical_id: str, attribute: str) -> str:
        if self._type(logical_id) == "AWS::ApplicationAutoScaling::ScalableTarget":
            return {"Ref": f"endpoint/x/variant/AllTraffic|{logical_id}"}[attribute]
        return super()._compute(logical_id, attribute)


def sagemaker(operation: str) -> Integration:
    return Integration("sagemaker", operation, "optimized")


def autoscaling(operation: str) -> Integration:
    return Integration("application-autoscaling", operation, "aws-sdk")


class Synth:
    def __init__(self, out: Path) -> None:
        app = cdk.App(outdir=str(out), context=cdk_json_context())
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
        stack = cdk.Stack(app, STACK, env=ENV)
        self.user_alarm = cloudwatch.Alarm(
            stack,
            "UserAlarm",
            metric=cloudwatch.Metric(namespace="RL", metric_name="EpisodeLength"),
            threshold=10,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        )
        capture_key = kms.Key(stack, "CaptureKey", enable_key_rotation=True)
        self.capture_bucket = s3.Bucket(
            stack,
            "Experience",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=capture_key,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            server_access_logs_prefix="access/",
        )
        canary = RLEstimator(stack, "Canary", job_name="cartpole-canary", **PYTORCH)
        canary.fit()
        self.canary = canary.deploy(
            "ml.m5.large",
            2,
            entry_point="inference.py",
            update=EndpointUpdate.blue_green(
                traffic=TrafficShifting.canary(Capacity.percent(25), wait=cdk.Duration.minutes(5)),
                baking_period=cdk.Duration.minutes(10),
                max_execution_time=cdk.Duration.hours(2),
            ),
            autoscaling=AutoScaling(
                min_capacity=2,
                max_capacity=6,
                target_invocations_per_instance=200,
                schedules=[
                    ScheduledCapacity(
                        "business-hours",
                        appscaling.Schedule.cron(hour="8", minute="0", week_day="MON-FRI"),
                        min_capacity=4,
                    )
                ],
            ),
            data_capture=DataCapture(sampling_percentage=50),
            environment={"POLICY_TEMPERATURE": "0"},
            volume_size=cdk.Size.gibibytes(30),
            model_data_download_timeout=cdk.Duration.minutes(10),
            container_startup_health_check_timeout=cdk.Duration.minutes(15),
        )
        linear = RLEstimator(stack, "Linear", job_name="cartpole-linear", **PYTORCH)
        linear.fit(wait=False)
        self.linear = linear.deploy(
            "ml.m5.large",
            4,
            entry_point="inference.py",
            update=EndpointUpdate.blue_green(
                traffic=TrafficShifting.linear(Capacity.percent(25), wait=cdk.Duration.minutes(2)),
                alarms=[self.user_alarm],
                rollback_thresholds=RollbackThresholds(
                    failed_requests_per_minute=5, max_model_latency=cdk.Duration.millis(250)
                ),
            ),
            autoscaling=AutoScaling(max_capacity=8, target_invocations_per_instance=100),
            data_capture=DataCapture(
                destination=self.capture_bucket, prefix="experience", kms_key=capture_key
            ),
        )
        small = RLEstimator(stack, "Small", job_name="cartpole-small", **PYTORCH)
        small.fit()
        self.small = small.deploy(
            serverless=ServerlessInference(memory_size_in_mb=3072, max_concurrency=10),
            entry_point="inference.py",
        )
        small_no_wait = RLEstimator(stack, "SmallNoWait", job_name="cartpole-tiny", **PYTORCH)
        small_no_wait.fit(wait=False)
        self.small_no_wait = small_no_wait.deploy(
            serverless=ServerlessInference(provisioned_concurrency=2),
            entry_point="inference.py",
            update=EndpointUpdate.blue_green(default_alarms=False),
        )
        app.synth()
        self.path = out / f"{STACK}.template.json"
        self.template = json.loads(self.path.read_text())
        self.report = json.loads((out / "validation-report.json").read_text())
        self.resources: dict[str, Any] = self.template["Resources"]
        self.resolver = ScalingResolver(self.template, Deployment(ENV.region, ENV.account, STACK))

    def of_type(self, kind: str, prefix: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if resource["Type"] == kind and logical_id.startswith(prefix)
        }

    def one(self, kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
        ((logical_id, resource),) = self.of_type(kind, prefix).items()
        return logical_id, resource

    def properties(self, kind: str, prefix: str) -> dict[str, Any]:
        _, resource = self.one(kind, prefix)
        resolved: dict[str, Any] = self.resolver.resolve(resource["Properties"])
        return resolved


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("production"))


def _no_tags(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k != "Tags"}


# ===================================================== CloudFormation: the requests it makes
def test_cloudformation_endpoint_config_is_a_valid_create_endpoint_config(synth: Synth) -> None:
    config = synth.properties("AWS::SageMaker::EndpointConfig", "CanaryServing")
    request = {"EndpointConfigName": "cartpole-canary-config", **_no_tags(config)}
    assert request_problems(sagemaker("CreateEndpointConfig"), request) == []
    (variant,) = config["ProductionVariants"]
    assert {k: v for k, v in variant.items() if k != "ModelName"} == {
        "VariantName": "AllTraffic",
        "InitialInstanceCount": 2,
        "InstanceType": "ml.m5.large",
        "InitialVariantWeight": 1,
        "VolumeSizeInGB": 30,
        "ModelDataDownloadTimeoutInSeconds": 600,
        "ContainerStartupHealthCheckTimeoutInSeconds": 900,
    }
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 50
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json"]}
    # No destination given: the estimator's artifact bucket, under data-capture/.
    artifacts = synth.resolver.resolve({"Ref": synth.one("AWS::S3::Bucket", "CanaryArtifacts")[0]})
    assert capture["DestinationS3Uri"] == f"s3://{artifacts}/data-capture"


def test_cloudformation_endpoint_update_is_a_valid_update_endpoint(synth: Synth) -> None:
    endpoint = synth.properties("AWS::SageMaker::Endpoint", "CanaryServing")
    request = _no_tags(endpoint)
    assert request_problems(sagemaker("UpdateEndpoint"), request) == []
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy == {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 300,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        },
        "TerminationWaitInSeconds": 600,
        "MaximumExecutionTimeoutInSeconds": 7200,
    }
    alarms = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    own = [
        synth.resolver.resolve({"Ref": i})
        for i in synth.of_type("AWS::CloudWatch::Alarm", "CanaryServingRollbackAlarms")
    ]
    assert sorted(a["AlarmName"] for a in alarms) == sorted(own) and len(own) == 2
    # Autoscaled: a retrain keeps the scaled instance count, but applies capture changes.
    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DataCaptureConfig"}
    ]


def test_cloudformation_autoscaling_is_valid_and_uses_the_service_linked_role(
    synth: Synth,
) -> None:
    target = synth.properties("AWS::ApplicationAutoScaling::ScalableTarget", "CanaryServing")
    endpoint_name = synth.canary.endpoint_name
    register = {k: v for k, v in target.items() if k != "ScheduledActions"}
    assert request_problems(autoscaling("RegisterScalableTarget"), register) == []
    assert register == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint_name}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 2,
        "MaxCapacity": 6,
    }  # no RoleARN: Application Auto Scaling's SageMaker service-linked role
    (schedule,) = target["ScheduledActions"]
    assert schedule == {
        "ScheduledActionName": "business-hours",
        "Schedule": "cron(0 8 ? * MON-FRI *)",
        "ScalableTargetAction": {"MinCapacity": 4},
    }
    policy = synth.properties("AWS::ApplicationAutoScaling::ScalingPolicy", "CanaryServing")
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 200.0,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }
    _, target_resource = synth.one("AWS::ApplicationAutoScaling::ScalableTarget", "CanaryServing")
    endpoint_id, _ = synth.one("AWS::SageMaker::Endpoint", "CanaryServing")
    assert endpoint_id in target_resource["DependsOn"]


def test_serverless_variant_has_no_instances(synth: Synth) -> None:
    config = synth.properties("AWS::SageMaker::EndpointConfig", "SmallServing")
    request = {"EndpointConfigName": "small", **_no_tags(config)}
    assert request_problems(sagemaker("CreateEndpointConfig"), request) == []
    (variant,) = config["ProductionVariants"]
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 10}
    # The CPU PyTorch inference image, chosen without an instance type.
    model = synth.properties("AWS::SageMaker::Model", "SmallServing")
    assert "-cpu-" in model["PrimaryContainer"]["Image"]


def test_data_capture_is_written_by_the_model_role_under_its_endpoint_only(synth: Synth) -> None:
    assert synth.linear.data_capture_uri is not None
    uri = synth.resolver.resolve(synth.linear.stack.resolve(synth.linear.data_capture_uri))
    bucket = synth.resolver.resolve({"Ref": synth.one("AWS::S3::Bucket", "Experience")[0]})
    assert uri == f"s3://{bucket}/experience/{synth.linear.endpoint_name}/AllTraffic/"
    assert synth.small.data_capture_uri is None
    statements = []
    for policy in synth.of_type("AWS::IAM::Policy", "LinearServingRole").values():
        statements += synth.resolver.resolve(policy["Properties"]["PolicyDocument"])["Statement"]
    (write,) = [s for s in statements if s.get("Sid") == "WriteDataCapture"]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == (f"arn:aws:s3:::{bucket}/experience/{synth.linear.endpoint_name}/*")
    (encrypt,) = [s for s in statements if s.get("Sid") == "EncryptDataCapture"]
    assert sorted(encrypt["Action"]) == ["kms:Encrypt", "kms:GenerateDataKey"]


# ======================================================= the serving workflow: what it sends
def _workflow_tasks(synth: Synth, prefix: str) -> dict[str, dict[str, Any]]:
    from tests.test_api_shapes import state_machine_definition

    machine_id, _ = synth.one("AWS::StepFunctions::StateMachine", f"{prefix}ServingWorkflow")
    definition = state_machine_definition(synth.resolver, machine_id)
    return {n: s for n, s in definition["States"].items() if s["Type"] == "Task"}


STATE = {
    "Serving": {"ModelName": "cartpole-linear-1", "EndpointConfigName": "cartpole-linear-1"},
    "Training": {"ModelDataUrl": "s3://b/training/cartpole-linear-1/output/model.tar.gz"},
}
CONTEXT = {"Execution": {"Name": "cartpole-linear-1", "Id": "x"}}


def test_workflow_updates_with_guardrails_and_registers_autoscaling(synth: Synth) -> None:
    tasks = _workflow_tasks(synth, "Linear")
    requests = {}
    for name, task in tasks.items():
        if name == "Train":
            continue
        integration, request = task_request(task, STATE, CONTEXT)
        assert request_problems(integration, request) == [], (name, request)
        requests[name] = request
    update = requests["UpdateEndpoint"]
    assert update["RetainAllVariantProperties"] is True
    routing = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 120,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    alarms = [
        a["AlarmName"] for a in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    user = synth.resolver.resolve({"Ref": synth.one("AWS::CloudWatch::Alarm", "UserAlarm")[0]})
    assert alarms[0] == user and len(alarms) == 3  # the user's first, then the endpoint's two
    config = requests["CreateEndpointConfig"]
    assert config["DataCaptureConfig"]["KmsKeyId"].startswith("arn:aws:kms:")
    name = synth.linear.endpoint_name
    assert requests["RegisterScalableTarget"]["ResourceId"] == f"endpoint/{name}/variant/AllTraffic"
    assert requests["PutScalingPolicy"]["PolicyType"] == "TargetTrackingScaling"


def test_rollback_alarms_fire_at_the_given_thresholds(synth: Synth) -> None:
    def thresholds(prefix: str) -> dict[str, float]:
        return {
            ("Errors" if "Errors" in logical_id else "Latency"): alarm["Properties"]["Threshold"]
            for logical_id, alarm in synth.of_type("AWS::CloudWatch::Alarm", prefix).items()
        }

    # Defaults: 1 failed request a minute, 1 s of average model latency (in microseconds).
    assert thresholds("CanaryServingRollbackAlarms") == {"Errors": 1, "Latency": 1_000_000}
    assert thresholds("LinearServingRollbackAlarms") == {"Errors": 5, "Latency": 250_000}


def test_serverless_workflow_sends_no_alarms_when_told(synth: Synth) -> None:
    tasks = _workflow_tasks(synth, "SmallNoWait")
    assert "RegisterScalableTarget" not in tasks
    integration, update = task_request(tasks["UpdateEndpoint"], STATE, CONTEXT)
    assert request_problems(integration, update) == []
    assert "AutoRollbackConfiguration" not in update["DeploymentConfig"]
    _, config = task_request(tasks["CreateEndpointConfig"], STATE, CONTEXT)
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 5,
        "ProvisionedConcurrency": 2,
    }
    assert synth.small_no_wait.alarms == []


def test_workflow_autoscaling_permissions_are_scoped(synth: Synth) -> None:
    statements = []
    for policy in synth.of_type("AWS::IAM::Policy", "LinearServingWorkflow").values():
        statements += synth.resolver.resolve(policy["Properties"]["PolicyDocument"])["Statement"]
    by_sid = {s.get("Sid"): s for s in statements}
    name = synth.linear.endpoint_name
    assert by_sid["TargetTrackingAlarms"]["Resource"].endswith(
        f":alarm:TargetTracking-endpoint/{name}/variant/AllTraffic-*"
    )
    assert by_sid["ScaleEndpoint"]["Resource"].endswith(f":endpoint/{name.lower()}")
    linked = by_sid["AutoScalingServiceLinkedRole"]
    assert linked["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
    }
    for statement in statements:
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        ):
            assert "*" not in action, statement


# ============================================================================== lint and nag
def test_cfn_lint_is_clean(synth: Synth) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(synth.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_finds_nothing_unacknowledged(synth: Synth) -> None:
    acknowledged = set()
    for plugin in synth.report["pluginReports"]:
        assert plugin["violations"] == [], plugin["violations"]
        for violation in plugin.get("suppressedViolations", []):
            assert violation["reason"].strip(), violation
            acknowledged.add(violation["ruleName"])
    # Each new wildcard is acknowledged by name, with its reason (never a blanket IAM5).
    names = {name.split("::", 1)[-1] for name in acknowledged}
    endpoint = synth.linear.endpoint_name
    assert any(f"/experience/{endpoint}/*" in n for n in names), sorted(names)
    assert any(":scalable-target/*" in n for n in names), sorted(names)
    assert any(f"TargetTracking-endpoint/{endpoint}/variant/AllTraffic-*" in n for n in names)


# ================================================================================ bad input
def _deploy(**options: Any) -> None:
    app = cdk.App(context=cdk_json_context())
    stack = cdk.Stack(app, "Bad", env=ENV)
    estimator = RLEstimator(stack, "E", **PYTORCH)
    estimator.fit()
    arguments: dict[str, Any] = {"entry_point": "inference.py"}
    if "serverless" not in options:
        arguments["instance_type"] = "ml.m5.large"
    estimator.deploy(**{**arguments, **options})


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: TrafficShifting.canary(Capacity.percent(60), wait=cdk.Duration.minutes(1)),
            "TrafficShifting.canary size='Capacity.percent(60)' is not valid. Allowed: a "
            "percentage from 1 to 50",
        ),
        (
            lambda: TrafficShifting.linear(Capacity.percent(5), wait=cdk.Duration.minutes(1)),
            "percentage from 10 to 50",
        ),
        (
            lambda: EndpointUpdate.rolling(
                batch=Capacity.percent(60), wait=cdk.Duration.minutes(1)
            ),
            "percentage from 5 to 50",
        ),
        (
            lambda: EndpointUpdate.blue_green(baking_period=cdk.Duration.hours(2)),
            "baking_period=2 hours is not valid. Allowed: an aws_cdk.Duration from 0 to 3600",
        ),
        (
            lambda: TrafficShifting.canary(Capacity.percent(10), wait=cdk.Duration.hours(3)),
            "wait=3 hours is not valid",
        ),
        (
            lambda: EndpointUpdate.blue_green(max_execution_time=cdk.Duration.minutes(5)),
            "from 600 to 28800 seconds",
        ),
        (
            lambda: AutoScaling(min_capacity=5, max_capacity=2, target_invocations_per_instance=10),
            "min_capacity=5 is greater than max_capacity=2",
        ),
        (
            lambda: AutoScaling(max_capacity=2, target_invocations_per_instance=0),
            "target_invocations_per_instance=0 is not valid. Allowed: a number > 0",
        ),
        (lambda: ServerlessInference(memory_size_in_mb=1500), "memory_size_in_mb=1500"),
        (lambda: ServerlessInference(max_concurrency=500), "max_concurrency=500"),
        (
            lambda: ServerlessInference(max_concurrency=4, provisioned_concurrency=5),
            "provisioned_concurrency=5 is not valid. Allowed: an integer from 1 to 4",
        ),
        (lambda: DataCapture(sampling_percentage=101), "sampling_percentage=101"),
        (
            lambda: RollbackThresholds(failed_requests_per_minute=0),
            "failed_requests_per_minute=0 is not valid. Allowed: an integer >= 1",
        ),
        (
            lambda: RollbackThresholds(max_model_latency=cdk.Duration.seconds(0)),
            "max_model_latency='0 seconds' is not valid",
        ),
        (
            lambda: EndpointUpdate.blue_green(rollback_thresholds=5),  # type: ignore[arg-type]
            "rollback_thresholds=5 is not valid. Allowed: RollbackThresholds(...)",
        ),
        (lambda: DataCapture(sampling_percentage=-1), "sampling_percentage=-1"),
        (
            lambda: _deploy(data_capture=DataCapture(destination="https://example.com/x")),
            "destination='https://example.com/x' is not valid. Allowed: an s3://bucket/prefix URI",
        ),
        (
            lambda: EndpointUpdate.blue_green(alarms=["my-alarm"]),
            "alarms='my-alarm' is not valid. Allowed: aws_cloudwatch.IAlarm",
        ),
        (
            lambda: _deploy(serverless=ServerlessInference(), instance_type="ml.m5.large"),
            "instance_type='ml.m5.large' cannot be combined with serverless",
        ),
        (
            lambda: _deploy(serverless=ServerlessInference(), data_capture=DataCapture()),
            "SageMaker does not capture data of serverless endpoints",
        ),
        (
            lambda: _deploy(
                serverless=ServerlessInference(),
                update=EndpointUpdate.rolling(
                    batch=Capacity.percent(10), wait=cdk.Duration.minutes(1)
                ),
            ),
            "rolling updates of serverless endpoints",
        ),
        (
            lambda: _deploy(
                serverless=ServerlessInference(),
                autoscaling=AutoScaling(max_capacity=2, target_invocations_per_instance=5),
            ),
            "serverless endpoints scale by themselves",
        ),
        (
            lambda: _deploy(serverless=ServerlessInference(), volume_size=10),
            "no instance storage volume",
        ),
        (lambda: _deploy(instance_type=None), "instance_type=None is not valid"),
        (
            lambda: _deploy(
                initial_instance_count=9,
                autoscaling=AutoScaling(max_capacity=4, target_invocations_per_instance=5),
            ),
            "outside the autoscaling range",
        ),
        (lambda: _deploy(volume_size=600), "volume_size=600 is not valid"),
        (
            lambda: _deploy(container_startup_health_check_timeout=cdk.Duration.seconds(30)),
            "container_startup_health_check_timeout=30 seconds is not valid",
        ),
        (
            lambda: _deploy(model_data_download_timeout=cdk.Duration.hours(2)),
            "model_data_download_timeout=2 hours is not valid",
        ),
        (lambda: _deploy(update="canary"), "update='canary' is not valid"),
        (lambda: _deploy(environment={"A": 1}), "environment['A']=1 is not valid"),
        (
            lambda: _deploy(update=EndpointUpdate.blue_green(alarms=[_alarm(i) for i in range(9)])),
            "watches 11 alarms",
        ),
    ],
)
def test_bad_input_is_a_synth_time_error_naming_the_value(make: Any, expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        make()
    assert expected in str(raised.value)


def _alarm(index: int) -> cloudwatch.IAlarm:
    scope = cdk.Stack(cdk.App(), f"Alarms{index}", env=ENV)
    return cloudwatch.Alarm.from_alarm_arn(
        scope, "A", f"arn:aws:cloudwatch:{ENV.region}:{ENV.account}:alarm:a{index}"
    )


# ===================================================== destroy: the workflow's scaling goes too
def test_workflow_cleanup_deregisters_autoscaling_only_where_the_workflow_registers_it(
    synth: Synth,
) -> None:
    def cleanup(prefix: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        _, resource = synth.one("Custom::RLServingCleanup", f"{prefix}ServingWorkflow")
        statements: list[dict[str, Any]] = []
        for policy in synth.of_type(
            "AWS::IAM::Policy", f"{prefix}ServingWorkflowCleanupFunction"
        ).values():
            statements += synth.resolver.resolve(policy["Properties"]["PolicyDocument"])[
                "Statement"
            ]
        properties: dict[str, Any] = synth.resolver.resolve(resource["Properties"])
        return properties, {s.get("Sid", ""): s for s in statements}

    name = synth.linear.endpoint_name
    properties, by_sid = cleanup("Linear")
    assert {k: v for k, v in properties.items() if k.startswith("ScalableTarget")} == {
        "ScalableTargetNamespace": "sagemaker",
        "ScalableTargetResourceId": f"endpoint/{name}/variant/AllTraffic",
        "ScalableTargetDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    arn = f"arn:aws:{{}}:{ENV.region}:{ENV.account}:{{}}"
    assert by_sid["DeregisterScalableTarget"]["Action"] == (
        "application-autoscaling:DeregisterScalableTarget"
    )
    assert by_sid["DeregisterScalableTarget"]["Resource"] == arn.format(
        "application-autoscaling", "scalable-target/*"
    )
    alarms = by_sid["DeleteTargetTrackingAlarms"]
    assert sorted(alarms["Action"]) == ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"]
    assert alarms["Resource"] == arn.format(
        "cloudwatch", f"alarm:TargetTracking-endpoint/{name}/variant/AllTraffic-*"
    )
    # Deregistering only: the cleanup can neither register a target nor change its scaling.
    assert [a for a in _actions(by_sid) if a.startswith("application-autoscaling:")] == [
        "application-autoscaling:DeregisterScalableTarget"
    ]

    properties, by_sid = cleanup("SmallNoWait")
    assert not [k for k in properties if k.startswith("ScalableTarget")]
    assert {"DeregisterScalableTarget", "DeleteTargetTrackingAlarms"}.isdisjoint(by_sid)
    assert not any(
        a.startswith(("application-autoscaling:", "cloudwatch:")) for a in _actions(by_sid)
    )


def _actions(statements: dict[str, dict[str, Any]]) -> list[str]:
    actions: list[str] = []
    for statement in statements.values():
        action = statement["Action"]
        actions += action if isinstance(action, list) else [action]
    return actions
