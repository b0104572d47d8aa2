"""Production serving on the local emulator: endpoint updates, rollback, data capture, retained
variant properties, serverless variants and autoscaling resources.

One emulator serves the module (``conftest.local_emulator``); every call goes through boto3. The
models are tiny JSON "policies" served by a script whose answers name the model's version, so an
answer tells which deployment served it; no RL training is involved.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import tarfile
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import EmulatorProcess

INFERENCE = """
    import json, os, time

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "model.json")) as f:
            model = json.load(f)
        time.sleep(model.get("load_seconds", 0))
        if model.get("broken"):
            raise ValueError(model["broken"])
        return model

    def input_fn(body, content_type):
        return json.loads(body) if content_type == "application/json" else body.hex()

    def predict_fn(data, model):
        return {"version": model["version"], "echo": data}

    def output_fn(prediction, accept):
        return json.dumps(prediction), "application/json"
"""

BROKEN = "the policy weights are corrupt (checksum 0xdeadbeef)"
VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


# --- helpers ------------------------------------------------------------------------------------


def tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def wait_until(predicate: Callable[[], Any], timeout: float = 60, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout} s")


def describe(emulator: EmulatorProcess, name: str) -> dict[str, Any]:
    result: dict[str, Any] = emulator.client("sagemaker").describe_endpoint(EndpointName=name)
    return result


def settled(emulator: EmulatorProcess, name: str, timeout: float = 60) -> dict[str, Any]:
    """DescribeEndpoint once the endpoint is no longer Creating or Updating."""
    return dict(
        wait_until(
            lambda: (
                (d := describe(emulator, name))["EndpointStatus"] not in ("Creating", "Updating")
                and d
            ),
            timeout,
        )
    )


def invoke(emulator: EmulatorProcess, name: str, payload: Any = None, **kwargs: Any) -> Any:
    arguments: dict[str, Any] = {"Body": json.dumps(payload), "ContentType": "application/json"}
    arguments.update(kwargs)
    answer = emulator.client("sagemaker-runtime").invoke_endpoint(EndpointName=name, **arguments)
    return json.loads(answer["Body"].read())


def variant(emulator: EmulatorProcess, name: str) -> dict[str, Any]:
    summary: dict[str, Any] = describe(emulator, name)["ProductionVariants"][0]
    return summary


@pytest.fixture(scope="module")
def models(local_emulator: EmulatorProcess) -> dict[str, str]:
    """Models v1, v2, v2-slow (v2 taking 1 s to load) and broken (its model_fn raises) in the
    emulated S3, by version."""
    s3 = local_emulator.client("s3")
    iam = local_emulator.client("iam")
    sagemaker = local_emulator.client("sagemaker")
    s3.create_bucket(Bucket="serving-models")
    role = iam.create_role(RoleName="serving-model-role", AssumeRolePolicyDocument="{}")
    names = {}
    for version in ("v1", "v2", "v2-slow", "broken"):
        model: dict[str, Any] = {"version": version.removesuffix("-slow")}
        if version == "v2-slow":
            model["load_seconds"] = 1.0
        if version == "broken":
            model["broken"] = BROKEN
        archive = tar_gz({"model.json": json.dumps(model), "code/inference.py": INFERENCE})
        s3.put_object(Bucket="serving-models", Key=f"{version}/model.tar.gz", Body=archive)
        names[version] = f"policy-{version}"
        sagemaker.create_model(
            ModelName=names[version],
            ExecutionRoleArn=role["Role"]["Arn"],
            PrimaryContainer={
                "Image": "serving",
                "ModelDataUrl": f"s3://serving-models/{version}/model.tar.gz",
            },
        )
    return names


def endpoint_config(
    emulator: EmulatorProcess, name: str, model: str, count: int = 1, **extra: Any
) -> str:
    production_variant = {
        "VariantName": VARIANT,
        "ModelName": model,
        "InitialInstanceCount": count,
        "InstanceType": "ml.m5.large",
        **extra.pop("variant", {}),
    }
    emulator.client("sagemaker").create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[production_variant], **extra
    )
    return name


# --- updates ------------------------------------------------------------------------------------


def test_an_update_under_load_loses_no_request_and_switches_models_once(
    local_emulator: EmulatorProcess, models: dict[str, str]
) -> None:
    sagemaker = local_emulator.client("sagemaker")
    endpoint_config(local_emulator, "load-v1", models["v1"])
    endpoint_config(local_emulator, "load-v2", models["v2-slow"])
    sagemaker.create_endpoint(EndpointName="under-load", EndpointConfigName="load-v1")
    assert settled(local_emulator, "under-load")["EndpointStatus"] == "InService"

    answers: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                answers.append(invoke(local_emulator, "under-load", [len(answers)])["version"])
            except Exception as error:  # every failure counts, whatever its kind
                failures.append(repr(error))
            stop.wait(0.1)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        time.sleep(0.6)
        started = time.monotonic()
        sagemaker.update_endpoint(EndpointName="under-load", EndpointConfigName="load-v2")
        assert describe(local_emulator, "under-load")["EndpointStatus"] == "Updating"
        updated = settled(local_emulator, "under-load")
        swap_seconds = time.monotonic() - started
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(10)
    print(
        f"\nupdate under load: {len(answers) + len(failures)} requests sent, "
        f"{len(failures)} failed, InService on the new model after {swap_seconds:.2f} s"
    )
    assert updated["EndpointStatus"] == "InService"
    assert updated["EndpointConfigName"] == "load-v2"
    assert failures == []
    assert len(answers) >= 18
    switch = answers.index("v2")
    assert switch >= 12  # 0.6 s before the update and over 1 s while the new model loads
    assert answers[:switch] == ["v1"] * switch  # the old model served until the swap...
    assert answers[switch:] == ["v2"] * (len(answers) - switch)  # ...and never again after it
    sagemaker.delete_endpoint(EndpointName="under-load")


def test_a_model_that_does_not_load_rolls_the_update_back_with_its_error(
    local_emulator: EmulatorProcess, models: dict[str, str]
) -> None:
    sagemaker = local_emulator.client("sagemaker")
    endpoint_config(local_emulator, "rollback-v1", models["v1"])
    endpoint_config(local_emulator, "rollback-broken", models["broken"])
    sagemaker.create_endpoint(EndpointName="rollback", EndpointConfigName="rollback-v1")
    settled(local_emulator, "rollback")

    started = time.monotonic()
    sagemaker.update_endpoint(EndpointName="rollback", EndpointConfigName="rollback-broken")
    assert invoke(local_emulator, "rollback", [1])["version"] == "v1"  # serves while updating
    after = settled(local_emulator, "rollback")
    rollback_seconds = time.monotonic() - started
    print(f"\nfailed update rolled back (InService on the old config) in {rollback_seconds:.2f} s")

    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == "rollback-v1"
    reason = after["FailureReason"]
    assert reason.startswith(
        f"The primary container for production variant {VARIANT} did not pass the ping health "
        f"check: ValueError: {BROKEN}"
    )
    assert 'raise ValueError(model["broken"])' in reason  # the log's traceback follows
    assert len(reason) <= 1024
    assert invoke(local_emulator, "rollback", [2]) == {"version": "v1", "echo": [2]}
    assert rollback_seconds < 15

    # A model slower to load than the variant's health check timeout fails the same way (1 s is
    # below SageMaker's minimum of 60, which boto3 checks: this client does not).
    unchecked = boto3.session.Session().client(
        "sagemaker",
        endpoint_url=local_emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(parameter_validation=False),
    )
    unchecked.create_endpoint_config(
        EndpointConfigName="rollback-slow",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": models["v2-slow"],
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "ContainerStartupHealthCheckTimeoutInSeconds": 1,
            }
        ],
    )
    sagemaker.update_endpoint(EndpointName="rollback", EndpointConfigName="rollback-slow")
    after = settled(local_emulator, "rollback")
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", "rollback-v1")
    assert after["FailureReason"].startswith(
        f"The primary container for production variant {VARIANT} did not pass the ping health "
        "check: the model server did not answer /ping within 1 s"
    )

    # The next good update clears the reason.
    sagemaker.update_endpoint(EndpointName="rollback", EndpointConfigName="rollback-v1")
    assert "FailureReason" not in settled(local_emulator, "rollback")
    sagemaker.delete_endpoint(EndpointName="rollback")


# --- data capture -------------------------------------------------------------------------------


def capture_records(emulator: EmulatorProcess, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    s3 = emulator.client("s3")
    listing = s3.list_objects_v2(Bucket="capture", Prefix=prefix).get("Contents", [])
    records = []
    for item in sorted(listing, key=lambda i: i["Key"]):
        body = s3.get_object(Bucket="capture", Key=item["Key"])["Body"].read().decode()
        records += [(item["Key"], json.loads(line)) for line in body.splitlines()]
    return records


def test_data_capture_writes_each_sampled_invocation_as_sagemaker_does(
    local_emulator: EmulatorProcess, models: dict[str, str]
) -> None:
    sagemaker = local_emulator.client("sagemaker")
    local_emulator.client("s3").create_bucket(Bucket="capture")
    key_id = local_emulator.client("kms").create_key()["KeyMetadata"]["KeyId"]
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://capture/experience",
        "KmsKeyId": key_id,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }
    endpoint_config(local_emulator, "capture-all", models["v1"], DataCaptureConfig=capture)
    endpoint_config(
        local_emulator,
        "capture-none",
        models["v2"],
        DataCaptureConfig={**capture, "InitialSamplingPercentage": 0},
    )
    sagemaker.create_endpoint(EndpointName="captured", EndpointConfigName="capture-all")
    described = settled(local_emulator, "captured")
    assert described["DataCaptureConfig"] == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 100,
        "DestinationS3Uri": "s3://capture/experience",
        "KmsKeyId": key_id,
    }

    sent = [[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4], [-1.5, 0, 0, 2]]
    answers = [
        invoke(local_emulator, "captured", obs, InferenceId=f"i-{n}") for n, obs in enumerate(sent)
    ]
    raw = local_emulator.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="captured", Body=b"\x00\x01binary", ContentType="application/x-npy"
    )
    binary_answer = raw["Body"].read()
    # Written within the flush interval, without an update or delete to force it.
    prefix = f"experience/captured/{VARIANT}/"
    records = wait_until(
        lambda: len(found := capture_records(local_emulator, prefix)) == 4 and found, 10, poll=0.25
    )

    key = records[0][0]
    name = r"\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl"
    assert re.fullmatch(re.escape(prefix) + name, key), key
    head = local_emulator.client("s3").head_object(Bucket="capture", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
    for n, (_, record) in enumerate(records[:3]):
        assert record["eventVersion"] == "0"
        assert record["eventMetadata"]["inferenceId"] == f"i-{n}"
        assert time.strptime(record["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert record["captureData"]["endpointInput"] == {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "data": json.dumps(sent[n]),
            "encoding": "JSON",
        }
        output = record["captureData"]["endpointOutput"]
        assert output["mode"] == "OUTPUT" and output["encoding"] == "JSON"
        assert json.loads(output["data"]) == answers[n]
    binary = records[3][1]["captureData"]["endpointInput"]
    assert binary["encoding"] == "BASE64"
    assert base64.b64decode(binary["data"]) == b"\x00\x01binary"
    assert json.loads(records[3][1]["captureData"]["endpointOutput"]["data"]) == json.loads(
        binary_answer
    )
    assert len({r["eventMetadata"]["eventId"] for _, r in records}) == 4

    # Records buffered when the endpoint is updated are written at once, under the old settings.
    invoke(local_emulator, "captured", [9, 9, 9, 9])
    sagemaker.update_endpoint(EndpointName="captured", EndpointConfigName="capture-none")
    settled(local_emulator, "captured")
    assert len(capture_records(local_emulator, prefix)) == 5
    assert (
        describe(local_emulator, "captured")["DataCaptureConfig"]["CurrentSamplingPercentage"] == 0
    )
    for _ in range(5):
        assert invoke(local_emulator, "captured", [0, 0, 0, 0])["version"] == "v2"
    sagemaker.delete_endpoint(EndpointName="captured")  # flushes: nothing is waiting
    assert len(capture_records(local_emulator, prefix)) == 5  # sampling 0 captured nothing


# --- variant properties, serverless, autoscaling ------------------------------------------------


def test_retained_variant_properties_keep_the_scaled_instance_count(
    local_emulator: EmulatorProcess, models: dict[str, str]
) -> None:
    sagemaker = local_emulator.client("sagemaker")
    autoscaling = local_emulator.client("application-autoscaling")
    endpoint_config(local_emulator, "scaled-v1", models["v1"], count=1)
    endpoint_config(local_emulator, "scaled-v2", models["v2"], count=2)
    guardrails = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 120,
            "MaximumExecutionTimeoutInSeconds": 1800,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "policy-errors"}]},
    }
    sagemaker.create_endpoint(
        EndpointName="scaled", EndpointConfigName="scaled-v1", DeploymentConfig=guardrails
    )
    settled(local_emulator, "scaled")
    assert describe(local_emulator, "scaled")["LastDeploymentConfig"] == guardrails
    assert variant(local_emulator, "scaled")["CurrentInstanceCount"] == 1

    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/scaled/variant/{VARIANT}",
        "ScalableDimension": DIMENSION,
    }
    autoscaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4)
    autoscaling.put_scaling_policy(
        **target,
        PolicyName="invocations",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
    )
    autoscaling.put_scheduled_action(
        **target,
        ScheduledActionName="mornings",
        Schedule="cron(0 8 * * ? *)",
        ScalableTargetAction={"MinCapacity": 2},
    )
    # The serving workflow registers through Step Functions' aws-sdk integration.
    sfn = local_emulator.client("stepfunctions")
    role = local_emulator.client("iam").get_role(RoleName="serving-model-role")["Role"]["Arn"]
    register = {
        "StartAt": "Register",
        "States": {
            "Register": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:applicationautoscaling:"
                "registerScalableTarget",
                "Parameters": {**target, "MinCapacity": 1, "MaxCapacity": 5},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="register-scaling", definition=json.dumps(register), roleArn=role
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    done = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        30,
        poll=0.2,
    )
    assert done["status"] == "SUCCEEDED", done
    with pytest.raises(ClientError, match="does not exist"):
        autoscaling.register_scalable_target(
            **{**target, "ResourceId": f"endpoint/nowhere/variant/{VARIANT}"},
            MinCapacity=1,
            MaxCapacity=4,
        )

    # Application Auto Scaling scales out...
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName="scaled",
        DesiredWeightsAndCapacities=[{"VariantName": VARIANT, "DesiredInstanceCount": 3}],
    )
    scaled = variant(local_emulator, "scaled")
    assert (scaled["CurrentInstanceCount"], scaled["DesiredInstanceCount"]) == (3, 3)
    assert scaled["CurrentWeight"] == 1.0

    # ...and a retrain that retains the variant properties keeps the 3 instances.
    sagemaker.update_endpoint(
        EndpointName="scaled",
        EndpointConfigName="scaled-v2",
        RetainAllVariantProperties=True,
        ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DataCaptureConfig"}],
        RetainDeploymentConfig=True,
    )
    after = settled(local_emulator, "scaled")
    assert after["EndpointConfigName"] == "scaled-v2"
    assert (
        after["ProductionVariants"][0]["CurrentInstanceCount"],
        after["ProductionVariants"][0]["DesiredInstanceCount"],
    ) == (3, 3)
    assert after["LastDeploymentConfig"] == guardrails
    assert invoke(local_emulator, "scaled", [1])["version"] == "v2"

    # Without it, the new config's InitialInstanceCount applies.
    sagemaker.update_endpoint(EndpointName="scaled", EndpointConfigName="scaled-v1")
    reset = settled(local_emulator, "scaled")["ProductionVariants"][0]
    assert (reset["CurrentInstanceCount"], reset["DesiredInstanceCount"]) == (1, 1)

    with pytest.raises(ClientError, match="CanarySize"):
        sagemaker.update_endpoint(
            EndpointName="scaled",
            EndpointConfigName="scaled-v2",
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 60}
                }
            },
        )
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert [t["MaxCapacity"] for t in targets["ScalableTargets"]] == [5]
    # Deregistering (what `cdk destroy`'s cleanup does) takes the policy and schedule with it.
    assert autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    autoscaling.deregister_scalable_target(**target)
    assert (
        autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    )
    assert (
        autoscaling.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
        == []
    )
    sagemaker.delete_endpoint(EndpointName="scaled")


def test_a_serverless_variant_and_container_options_are_accepted_and_served(
    local_emulator: EmulatorProcess, models: dict[str, str]
) -> None:
    sagemaker = local_emulator.client("sagemaker")
    serverless = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    sagemaker.create_endpoint_config(
        EndpointConfigName="serverless-v1",
        ProductionVariants=[
            {"VariantName": VARIANT, "ModelName": models["v1"], "ServerlessConfig": serverless}
        ],
    )
    endpoint_config(
        local_emulator,
        "options-v2",
        models["v2"],
        variant={
            "InstanceType": "ml.g5.xlarge",  # newer than moto's own instance type list
            "VolumeSizeInGB": 30,
            "ModelDataDownloadTimeoutInSeconds": 600,
            "ContainerStartupHealthCheckTimeoutInSeconds": 120,
        },
    )
    sagemaker.create_endpoint(EndpointName="serverless", EndpointConfigName="serverless-v1")
    described = settled(local_emulator, "serverless")
    assert described["EndpointStatus"] == "InService"
    summary = described["ProductionVariants"][0]
    assert summary["CurrentServerlessConfig"] == serverless
    assert "CurrentInstanceCount" not in summary
    assert "DataCaptureConfig" not in described
    assert invoke(local_emulator, "serverless", [1]) == {"version": "v1", "echo": [1]}

    sagemaker.update_endpoint(EndpointName="serverless", EndpointConfigName="options-v2")
    assert (
        settled(local_emulator, "serverless")["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    )
    assert invoke(local_emulator, "serverless", [2])["version"] == "v2"
    sagemaker.delete_endpoint(EndpointName="serverless")


# --- CloudFormation -----------------------------------------------------------------------------


def serving_template(model_url: str, role: str) -> str:
    template = {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {
                    "ExecutionRoleArn": role,
                    "PrimaryContainer": {"Image": "serving", "ModelDataUrl": model_url},
                },
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {
                            "VariantName": VARIANT,
                            "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.c6i.large",
                            "InitialVariantWeight": 1,
                            "ContainerStartupHealthCheckTimeoutInSeconds": 600,
                        }
                    ],
                    "DataCaptureConfig": {
                        "EnableCapture": True,
                        "InitialSamplingPercentage": 100,
                        "DestinationS3Uri": "s3://capture/cfn",
                        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
                    },
                },
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "EndpointName": "cfn-serving",
                    "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                    "RetainAllVariantProperties": True,
                    "ExcludeRetainedVariantProperties": [
                        {"VariantPropertyType": "DataCaptureConfig"}
                    ],
                    "DeploymentConfig": {
                        "BlueGreenUpdatePolicy": {
                            "TrafficRoutingConfiguration": {
                                "Type": "LINEAR",
                                "WaitIntervalInSeconds": 60,
                                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                            },
                            "TerminationWaitInSeconds": 60,
                        }
                    },
                },
            },
            "Target": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "DependsOn": "Endpoint",
                "Properties": {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": f"endpoint/cfn-serving/variant/{VARIANT}",
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": 1,
                    "MaxCapacity": 3,
                    "ScheduledActions": [
                        {
                            "ScheduledActionName": "business-hours",
                            "Schedule": "cron(0 8 ? * MON-FRI *)",
                            "ScalableTargetAction": {"MinCapacity": 2},
                        }
                    ],
                },
            },
            "Policy": {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
                "Properties": {
                    "PolicyName": "cfn-serving-invocations",
                    "PolicyType": "TargetTrackingScaling",
                    "ScalingTargetId": {"Ref": "Target"},
                    "TargetTrackingScalingPolicyConfiguration": {
                        "TargetValue": 50.0,
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                        },
                        "ScaleInCooldown": 300,
                        "ScaleOutCooldown": 60,
                    },
                },
            },
        },
        "Outputs": {"Target": {"Value": {"Ref": "Target"}}},
    }
    return json.dumps(template)


def settled_stack(emulator: EmulatorProcess, name: str, timeout: float = 60) -> dict[str, Any]:
    cfn = emulator.client("cloudformation")
    return dict(
        wait_until(
            lambda: (
                (s := cfn.describe_stacks(StackName=name)["Stacks"][0])["StackStatus"].endswith(
                    ("_COMPLETE", "_FAILED")
                )
                and s
            ),
            timeout,
            poll=0.2,
        )
    )


def test_cloudformation_serving_resources_deploy_and_a_failed_update_names_the_error(
    local_emulator: EmulatorProcess, models: dict[str, str]
) -> None:
    cfn = local_emulator.client("cloudformation")
    autoscaling = local_emulator.client("application-autoscaling")
    role = local_emulator.client("iam").get_role(RoleName="serving-model-role")["Role"]["Arn"]
    with contextlib.suppress(ClientError):  # made by the capture test
        local_emulator.client("s3").create_bucket(Bucket="capture")
    cfn.create_stack(
        StackName="serving-resources",
        TemplateBody=serving_template("s3://serving-models/v1/model.tar.gz", role),
    )
    stack = settled_stack(local_emulator, "serving-resources")
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    assert stack["Outputs"][0]["OutputValue"] == (
        f"endpoint/cfn-serving/variant/{VARIANT}|{DIMENSION}|sagemaker"
    )
    described = describe(local_emulator, "cfn-serving")
    assert described["DataCaptureConfig"]["CaptureStatus"] == "Started"
    assert (
        described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 60
    )
    where = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/cfn-serving/variant/{VARIANT}",
    }
    assert (
        autoscaling.describe_scalable_targets(
            **{"ServiceNamespace": "sagemaker", "ResourceIds": [where["ResourceId"]]}
        )["ScalableTargets"][0]["MaxCapacity"]
        == 3
    )
    policies = autoscaling.describe_scaling_policies(**where)["ScalingPolicies"]
    assert [p["PolicyName"] for p in policies] == ["cfn-serving-invocations"]
    actions = autoscaling.describe_scheduled_actions(**where)["ScheduledActions"]
    assert [(a["ScheduledActionName"], a["ScalableTargetAction"]) for a in actions] == [
        ("business-hours", {"MinCapacity": 2})
    ]
    assert invoke(local_emulator, "cfn-serving", [1])["version"] == "v1"

    local_emulator.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="cfn-serving",
        DesiredWeightsAndCapacities=[{"VariantName": VARIANT, "DesiredInstanceCount": 2}],
    )
    cfn.update_stack(
        StackName="serving-resources",
        TemplateBody=serving_template("s3://serving-models/broken/model.tar.gz", role),
    )
    rolled_back = settled_stack(local_emulator, "serving-resources")
    assert rolled_back["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="serving-resources")["StackEvents"]
    failed = [
        e["ResourceStatusReason"]
        for e in events
        if e["LogicalResourceId"] == "Endpoint" and e["ResourceStatus"] == "UPDATE_FAILED"
    ]
    assert len(failed) == 1
    assert f"ValueError: {BROKEN}" in failed[0]
    assert failed[0].startswith('Resource handler returned message: "Endpoint cfn-serving update')
    after = describe(local_emulator, "cfn-serving")
    assert after["EndpointStatus"] == "InService"
    # The rollback went back to the config in service (kept until the update succeeds), so the
    # endpoint was not redeployed and still says why the update failed.
    assert after["EndpointConfigName"] == described["EndpointConfigName"]
    assert f"ValueError: {BROKEN}" in after["FailureReason"]
    assert after["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert invoke(local_emulator, "cfn-serving", [2])["version"] == "v1"
    sagemaker = local_emulator.client("sagemaker")

    def config_names() -> set[str]:
        configs = sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
        return {c["EndpointConfigName"] for c in configs}

    before_retrain = config_names()
    # The config of the failed update is gone with the rollback.
    stack_configs = {n for n in before_retrain if n.startswith("serving-resources-Config")}
    assert stack_configs == {after["EndpointConfigName"]}
    # A retrain: the model and the config are replaced, the scaled count is kept, the old ones go.
    cfn.update_stack(
        StackName="serving-resources",
        TemplateBody=serving_template("s3://serving-models/v2/model.tar.gz", role),
    )
    assert settled_stack(local_emulator, "serving-resources")["StackStatus"] == "UPDATE_COMPLETE"
    retrained = describe(local_emulator, "cfn-serving")
    assert retrained["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert invoke(local_emulator, "cfn-serving", [3])["version"] == "v2"
    assert config_names() == before_retrain - {after["EndpointConfigName"]} | {
        retrained["EndpointConfigName"]
    }

    cfn.delete_stack(StackName="serving-resources")
    assert settled_stack(local_emulator, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"
    assert (
        autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[where["ResourceId"]]
        )["ScalableTargets"]
        == []
    )
    assert autoscaling.describe_scaling_policies(**where)["ScalingPolicies"] == []
    assert autoscaling.describe_scheduled_actions(**where)["ScheduledActions"] == []
    # The records the stack's endpoint captured were written when it was deleted.
    assert len(capture_records(local_emulator, f"cfn/cfn-serving/{VARIANT}/")) == 3
