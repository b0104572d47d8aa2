"""workflow_cleanup.on_event (Custom::RLServingCleanup) against moto's SageMaker.

The endpoint, endpoint configs and models are created in moto as the serving workflow creates them
(names ``<base>-<timestamp>``, tagged with the endpoint name); the CloudFormation response URL is
the recording HTTP server on 127.0.0.1 (fixtures in conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

ENDPOINT = "RLCartPole-dev-CartPole-Serving-C0F92550"
TAG_KEY = "cdk-sagemaker-rl:endpoint"
PREFIX = "cartpole-dev-"
ROLE = "arn:aws:iam::123456789012:role/model-role"

# Fixture types live in conftest.py; annotated as Any here to avoid importing conftest.
Moto = RecordingServer = Any


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


def properties(**overrides: str) -> dict[str, str]:
    return {"EndpointName": ENDPOINT, "NamePrefix": PREFIX, "TagKey": TAG_KEY, **overrides}


def send(
    cleanup: ModuleType,
    server: RecordingServer,
    cfn_event: Any,
    request_type: str,
    *,
    physical_resource_id: str | None = ENDPOINT,
    props: dict[str, str] | None = None,
    context: Any = None,
) -> dict[str, Any]:
    event = cfn_event(
        request_type,
        server.url("/cfn"),
        props if props is not None else properties(),
        resource_type="Custom::RLServingCleanup",
        physical_resource_id=None if request_type == "Create" else physical_resource_id,
    )
    cleanup.on_event(event, context)
    body: dict[str, Any] = server.requests[-1].json()
    return body


def serve(moto: Moto, job: str, *, endpoint: str | None = ENDPOINT, tag: str = ENDPOINT) -> None:
    """What one workflow run leaves: a model and an endpoint config named after the job, tagged
    with the endpoint; and the endpoint itself when ``endpoint`` is given."""
    tags = [{"Key": TAG_KEY, "Value": tag}, {"Key": "cdk-sagemaker-rl:training-job", "Value": job}]
    sagemaker = moto.sagemaker
    sagemaker.create_model(
        ModelName=job,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1",
            "ModelDataUrl": f"s3://bucket/training/{job}/output/model.tar.gz",
        },
        Tags=tags,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=job,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": job,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
        Tags=tags,
    )
    if endpoint is not None:
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=job, Tags=tags)


def inventory(moto: Moto) -> dict[str, list[str]]:
    sagemaker = moto.sagemaker
    return {
        "endpoints": sorted(e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]),
        "configs": sorted(
            c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]
        ),
        "models": sorted(m["ModelName"] for m in sagemaker.list_models()["Models"]),
    }


def set_endpoint_status(name: str, status: str) -> None:
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends["123456789012"]["us-east-1"].endpoints[name].endpoint_status = status


# --------------------------------------------------------------------------------- Create/Update
@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_do_nothing_and_keep_the_endpoint_name_as_id(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    request_type: str,
) -> None:
    serve(moto, f"{PREFIX}2026-03-04-05-06-07-089")
    before = inventory(moto)

    body = send(cleanup, http_server, cfn_event, request_type)

    assert body["Status"] == "SUCCESS", body
    assert body["PhysicalResourceId"] == ENDPOINT
    assert inventory(moto) == before


def test_create_with_a_missing_property_fails_readably(
    cleanup: ModuleType, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    props = properties()
    del props["NamePrefix"]
    body = send(cleanup, http_server, cfn_event, "Create", props=props)
    assert body["Status"] == "FAILED"
    assert "NamePrefix" in body["Reason"]


# ----------------------------------------------------------------------------------------- Delete
def test_delete_removes_the_endpoint_and_every_config_and_model_the_workflow_created(
    cleanup: ModuleType, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    first, second = f"{PREFIX}2026-03-04-05-06-07-089", f"{PREFIX}2026-03-05-05-06-07-001"
    serve(moto, first, endpoint=None)
    serve(moto, second)  # the endpoint now serves the second training
    # Same job-name prefix, another stack's endpoint: not ours.
    serve(moto, f"{PREFIX}2026-03-06-00-00-00-000", endpoint=None, tag="OtherStack-Serving-1")
    # Another estimator's workflow in the same account.
    serve(moto, "pendulum-2026-03-04-05-06-07-089", endpoint=None, tag="Pendulum-Serving-2")

    body = send(cleanup, http_server, cfn_event, "Delete")

    assert body["Status"] == "SUCCESS", body
    assert body["PhysicalResourceId"] == ENDPOINT
    assert inventory(moto) == {
        "endpoints": [],
        "configs": [f"{PREFIX}2026-03-06-00-00-00-000", "pendulum-2026-03-04-05-06-07-089"],
        "models": [f"{PREFIX}2026-03-06-00-00-00-000", "pendulum-2026-03-04-05-06-07-089"],
    }


def test_delete_with_nothing_to_delete_succeeds(
    cleanup: ModuleType, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    body = send(cleanup, http_server, cfn_event, "Delete")
    assert body["Status"] == "SUCCESS", body
    assert inventory(moto) == {"endpoints": [], "configs": [], "models": []}


def test_delete_tolerates_a_partial_leftover(
    cleanup: ModuleType, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    """A run stopped between CreateModel and CreateEndpoint left a model and a config only."""
    serve(moto, f"{PREFIX}2026-03-04-05-06-07-089", endpoint=None)
    body = send(cleanup, http_server, cfn_event, "Delete")
    assert body["Status"] == "SUCCESS", body
    assert inventory(moto) == {"endpoints": [], "configs": [], "models": []}


def test_delete_waits_for_an_endpoint_still_being_created(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(moto, f"{PREFIX}2026-03-04-05-06-07-089")
    set_endpoint_status(ENDPOINT, "Creating")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # SageMaker finishes the creation meanwhile
        sleeps.append(seconds)
        set_endpoint_status(ENDPOINT, "InService")

    monkeypatch.setattr(cleanup, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))

    body = send(cleanup, http_server, cfn_event, "Delete")

    assert body["Status"] == "SUCCESS", body
    assert len(sleeps) == 1
    assert inventory(moto)["endpoints"] == []


def test_delete_stops_waiting_before_the_lambda_times_out(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(moto, f"{PREFIX}2026-03-04-05-06-07-089")
    set_endpoint_status(ENDPOINT, "Updating")
    monkeypatch.setattr(cleanup, "POLL_SECONDS", 30.0)
    context.remaining_ms = 70_000  # 10 s left after the reserve: no room for a 30 s poll

    started = time.monotonic()
    body = send(cleanup, http_server, cfn_event, "Delete", context=context)

    assert time.monotonic() - started < 20  # did not sleep the 30 s poll
    assert body["Status"] == "SUCCESS", body
    # The deletion was still attempted (moto accepts it; SageMaker might refuse, see below).
    assert inventory(moto)["endpoints"] == []


def test_delete_never_fails_even_when_sagemaker_refuses(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "Any"
    )

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                raise denied

            return call

    monkeypatch.setattr(cleanup, "aws_client", lambda service: Refusing())

    body = send(cleanup, http_server, cfn_event, "Delete")

    assert body["Status"] == "SUCCESS", body
    assert body["PhysicalResourceId"] == ENDPOINT


def test_one_undeletable_model_does_not_stop_the_others(
    cleanup: ModuleType,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = f"{PREFIX}2026-03-04-05-06-07-089", f"{PREFIX}2026-03-05-05-06-07-001"
    serve(moto, first, endpoint=None)
    serve(moto, second, endpoint=None)
    real = cleanup.aws_client("sagemaker")

    class OneRefused:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def delete_model(self, ModelName: str) -> Any:
            if ModelName == first:
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "DeleteModel"
                )
            return real.delete_model(ModelName=ModelName)

    monkeypatch.setattr(cleanup, "aws_client", lambda service: OneRefused())

    body = send(cleanup, http_server, cfn_event, "Delete")

    assert body["Status"] == "SUCCESS", body
    assert inventory(moto)["models"] == [first]
    assert inventory(moto)["configs"] == []
    assert "ThrottlingException" in capsys.readouterr().out


def test_delete_after_a_failed_create_touches_nothing(
    cleanup: ModuleType, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    serve(moto, f"{PREFIX}2026-03-04-05-06-07-089")
    before = inventory(moto)
    body = send(
        cleanup, http_server, cfn_event, "Delete", physical_resource_id="create-failed:req-0001"
    )
    assert body["Status"] == "SUCCESS", body
    assert inventory(moto) == before
