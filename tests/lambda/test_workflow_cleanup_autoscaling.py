"""workflow_cleanup.on_event deregisters the serving workflow's scalable target on Delete.

With autoscaling, the TrainAndServe workflow registers the endpoint variant with Application Auto
Scaling; CloudFormation does not know it, so Custom::RLServingCleanup deregisters it, before it
deletes the endpoint. moto plays SageMaker and Application Auto Scaling in-process (fixtures in
conftest.py); where moto's answer differs from AWS's (a target that is not registered: AWS says
ObjectNotFoundException, moto ValidationException) or an error must be provoked, botocore's
Stubber answers for the Application Auto Scaling client the handler uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, TypeAlias

import boto3
import pytest
from botocore.stub import Stubber

ENDPOINT = "RLCartPole-dev-Linear-Serving-5A1B2C3D"
TAG_KEY = "cdk-sagemaker-rl:endpoint"
PREFIX = "cartpole-linear-"
JOB = f"{PREFIX}2026-03-04-05-06-07-089"
TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}
SCALING_PROPERTIES = {
    "ScalableTargetNamespace": TARGET["ServiceNamespace"],
    "ScalableTargetResourceId": TARGET["ResourceId"],
    "ScalableTargetDimension": TARGET["ScalableDimension"],
}

# Fixture types live in conftest.py; annotated as Any here to avoid importing conftest.
Moto: TypeAlias = Any
RecordingServer: TypeAlias = Any


@pytest.fixture
def cleanup(
    import_handler: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    """The handler module, imported afresh as Lambda would (see ``import_handler``)."""
    module = import_handler("custom_resources.workflow_cleanup")
    cfn = import_handler("custom_resources._cfn")
    monkeypatch.setattr(cfn, "RETRY_BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(module, "POLL_SECONDS", 0.0)
    return module


@pytest.fixture
def calls(cleanup: ModuleType) -> list[str]:
    """The operations the handler's clients send, in order (botocore's before-call event)."""
    sent: list[str] = []

    def record(model: Any, **_: Any) -> None:
        sent.append(str(model.name))

    for service in ("sagemaker", "application-autoscaling"):
        cleanup.aws_client(service).meta.events.register("before-call", record)
    return sent


@pytest.fixture
def stubbed(cleanup: ModuleType, moto: Moto) -> Iterator[Stubber]:
    """The handler's Application Auto Scaling client answering from a script (SageMaker stays
    moto's); every scripted answer must have been used."""
    with Stubber(cleanup.aws_client("application-autoscaling")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def delete(
    cleanup: ModuleType, server: RecordingServer, cfn_event: Any, **scaling: str
) -> dict[str, Any]:
    event = cfn_event(
        "Delete",
        server.url("/cfn"),
        {"EndpointName": ENDPOINT, "NamePrefix": PREFIX, "TagKey": TAG_KEY, **scaling},
        resource_type="Custom::RLServingCleanup",
        physical_resource_id=ENDPOINT,
    )
    cleanup.on_event(event, None)
    body: dict[str, Any] = server.requests[-1].json()
    return body


def serve(moto: Moto) -> None:
    """What one workflow run leaves: model, endpoint config and endpoint, tagged."""
    tags = [{"Key": TAG_KEY, "Value": ENDPOINT}]
    moto.sagemaker.create_model(
        ModelName=JOB,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/model-role",
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1",
            "ModelDataUrl": f"s3://bucket/training/{JOB}/output/model.tar.gz",
        },
        Tags=tags,
    )
    moto.sagemaker.create_endpoint_config(
        EndpointConfigName=JOB,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": JOB,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        Tags=tags,
    )
    moto.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=JOB, Tags=tags)


def autoscaling_client() -> Any:
    return boto3.client("application-autoscaling", region_name="us-east-1")


def register_as_the_workflow_does() -> None:
    """RegisterScalableTarget, PutScalingPolicy and PutScheduledAction, as the workflow's states."""
    client = autoscaling_client()
    client.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=8)
    client.put_scaling_policy(
        **TARGET,
        PolicyName=f"{ENDPOINT}-invocations",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
    )
    client.put_scheduled_action(
        **TARGET,
        ScheduledActionName="business-hours",
        Schedule="cron(0 8 ? * MON-FRI *)",
        ScalableTargetAction={"MinCapacity": 4},
    )


def registered_targets() -> list[dict[str, Any]]:
    answer = autoscaling_client().describe_scalable_targets(ServiceNamespace="sagemaker")
    return list(answer["ScalableTargets"])


def endpoints(moto: Moto) -> list[str]:
    return [e["EndpointName"] for e in moto.sagemaker.list_endpoints()["Endpoints"]]


def cleanup_log(out: str) -> dict[str, Any]:
    """The summary line the handler logs once every step has run."""
    for line in out.splitlines():
        if "serving workflow resources cleaned up" in line:
            record: dict[str, Any] = json.loads(line)
            return record
    raise AssertionError(f"no cleanup summary in the log:\n{out}")


# ----------------------------------------------------------------------------------------------
def test_delete_deregisters_the_target_before_deleting_the_endpoint(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    calls: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(moto)
    register_as_the_workflow_does()
    assert len(registered_targets()) == 1

    body = delete(cleanup, http_server, cfn_event, **SCALING_PROPERTIES)

    assert body["Status"] == "SUCCESS", body
    assert registered_targets() == []
    assert endpoints(moto) == []
    assert calls.index("DeregisterScalableTarget") < calls.index("DeleteEndpoint"), calls
    # Before anything else, the endpoint's status included: no scaling activity can start
    # while the cleanup waits for the endpoint to settle.
    assert calls[0] == "DeregisterScalableTarget", calls
    assert calls.count("DeregisterScalableTarget") == 1
    assert cleanup_log(capsys.readouterr().out)["scalable_target"] == (
        "scalable target deregistered"
    )


def test_a_target_aws_does_not_know_is_fine(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    stubbed: Stubber,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A rollback before the workflow registered it: AWS answers ObjectNotFoundException."""
    serve(moto)
    stubbed.add_client_error(
        "deregister_scalable_target",
        service_error_code="ObjectNotFoundException",
        service_message=(
            "No scalable target registered for service namespace: sagemaker, resource ID: "
            f"{TARGET['ResourceId']}, scalable dimension: {TARGET['ScalableDimension']}"
        ),
        http_status_code=400,
        expected_params=TARGET,
    )

    body = delete(cleanup, http_server, cfn_event, **SCALING_PROPERTIES)

    assert body["Status"] == "SUCCESS", body
    assert endpoints(moto) == []
    out = capsys.readouterr().out
    assert cleanup_log(out)["scalable_target"] == "scalable target not registered"
    assert "cleanup step scalable_target failed" not in out


def test_a_target_moto_does_not_know_is_fine_too(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """moto (so the local emulator) answers ValidationException "No scalable target found"."""
    serve(moto)

    body = delete(cleanup, http_server, cfn_event, **SCALING_PROPERTIES)

    assert body["Status"] == "SUCCESS", body
    assert endpoints(moto) == []
    out = capsys.readouterr().out
    assert cleanup_log(out)["scalable_target"] == "scalable target not registered"
    assert "cleanup step scalable_target failed" not in out


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "ConcurrentUpdateException", "ValidationException"]
)
def test_another_error_is_logged_and_the_rest_is_still_deleted(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    stubbed: Stubber,
    capsys: pytest.CaptureFixture[str],
    code: str,
) -> None:
    serve(moto)
    stubbed.add_client_error(
        "deregister_scalable_target",
        service_error_code=code,
        service_message=f"{code}: refused for the test",
        http_status_code=400,
        expected_params=TARGET,
    )

    body = delete(cleanup, http_server, cfn_event, **SCALING_PROPERTIES)

    assert body["Status"] == "SUCCESS", body
    assert body["PhysicalResourceId"] == ENDPOINT
    assert endpoints(moto) == []
    assert moto.sagemaker.list_models()["Models"] == []
    out = capsys.readouterr().out
    assert "cleanup step scalable_target failed" in out
    summary = cleanup_log(out)
    assert summary["scalable_target"].startswith("failed: "), summary
    assert code in summary["scalable_target"]


def test_without_autoscaling_properties_application_auto_scaling_is_never_called(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(moto)
    register_as_the_workflow_does()  # someone else's registration of the same name: untouched
    services: list[str] = []
    real = cleanup.aws_client

    def client(service: str) -> Any:
        services.append(service)
        return real(service)

    monkeypatch.setattr(cleanup, "aws_client", client)

    body = delete(cleanup, http_server, cfn_event)

    assert body["Status"] == "SUCCESS", body
    assert "application-autoscaling" not in services
    assert endpoints(moto) == []
    assert len(registered_targets()) == 1
    assert "scalable_target" not in cleanup_log(capsys.readouterr().out)


def test_an_incomplete_target_fails_create_readably(
    cleanup: ModuleType, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    properties = {"EndpointName": ENDPOINT, "NamePrefix": PREFIX, "TagKey": TAG_KEY}
    properties.update(SCALING_PROPERTIES)
    del properties["ScalableTargetDimension"]
    event = cfn_event(
        "Create", http_server.url("/cfn"), properties, resource_type="Custom::RLServingCleanup"
    )

    cleanup.on_event(event, None)

    body = http_server.requests[-1].json()
    assert body["Status"] == "FAILED"
    assert "ScalableTargetDimension" in body["Reason"]


def test_an_incomplete_target_on_delete_fails_that_step_only(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(moto)
    scaling = dict(SCALING_PROPERTIES)
    del scaling["ScalableTargetNamespace"]

    body = delete(cleanup, http_server, cfn_event, **scaling)

    assert body["Status"] == "SUCCESS", body
    assert endpoints(moto) == []
    summary = cleanup_log(capsys.readouterr().out)
    assert "ScalableTargetNamespace" in summary["scalable_target"], summary
