"""attach.on_event (Custom::RLTrainingJobLookup) against moto's SageMaker.

The CloudFormation response URL is a recording HTTP server on 127.0.0.1.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

JOB = "cartpole-ppo-2026-03-04-05-06-07-089"
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/rl:latest"  # conftest's training image


def lookup(
    cr: SimpleNamespace,
    server: Any,
    cfn_event: Any,
    request_type: str = "Create",
    job: str = JOB,
    **kwargs: Any,
) -> dict[str, Any]:
    event = cfn_event(
        request_type,
        server.url("/cfn"),
        {"TrainingJobName": job},
        resource_type="Custom::RLTrainingJobLookup",
        **kwargs,
    )
    cr.attach.on_event(event, None)
    body: dict[str, Any] = server.requests[-1].json()
    return body


def test_completed_job_reports_model_image_and_status(
    cr: SimpleNamespace, moto: Any, http_server: Any, cfn_event: Any
) -> None:
    moto.training_job(JOB, status="Completed")

    body = lookup(cr, http_server, cfn_event)

    assert http_server.requests[0].method == "PUT"
    assert http_server.requests[0].headers["content-type"] == ""
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == JOB
    assert body["Data"] == {
        "ModelDataUrl": f"s3://bucket/output/{JOB}/output/model.tar.gz",
        "TrainingImage": IMAGE,
        "TrainingJobStatus": "Completed",
    }


def test_failed_job_fails_with_its_status_and_failure_reason(
    cr: SimpleNamespace, moto: Any, http_server: Any, cfn_event: Any
) -> None:
    moto.training_job(JOB, status="Failed", failure_reason="ClientError: out of memory")

    body = lookup(cr, http_server, cfn_event)

    assert body["Status"] == "FAILED" and body["PhysicalResourceId"] == JOB
    assert body["Reason"].startswith(
        f"Training job {JOB} is Failed, not Completed: ClientError: out of memory"
    )
    assert body["Data"] == {}


@pytest.mark.parametrize("status", ["InProgress", "Stopped"])
def test_unfinished_or_stopped_job_fails_naming_the_status(
    cr: SimpleNamespace, moto: Any, http_server: Any, cfn_event: Any, status: str
) -> None:
    moto.training_job(JOB, status=status)

    body = lookup(cr, http_server, cfn_event, "Update", physical_resource_id="older-job")

    assert body["Status"] == "FAILED"
    assert f"Training job {JOB} is {status}, not Completed" in body["Reason"]
    assert body["PhysicalResourceId"] == JOB


def test_missing_job_fails_naming_it(
    cr: SimpleNamespace, moto: Any, http_server: Any, cfn_event: Any
) -> None:
    body = lookup(cr, http_server, cfn_event, job="no-such-job")

    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("Training job no-such-job was not found")
    assert body["PhysicalResourceId"] == "no-such-job"


def test_missing_property_fails_with_a_placeholder_id(
    cr: SimpleNamespace, moto: Any, http_server: Any, cfn_event: Any
) -> None:
    body = lookup(cr, http_server, cfn_event, job="")

    assert body["Status"] == "FAILED"
    assert "TrainingJobName is required" in body["Reason"]
    assert body["PhysicalResourceId"] == "create-failed:req-0001"


def test_delete_does_nothing_and_succeeds(
    cr: SimpleNamespace, moto: Any, http_server: Any, cfn_event: Any
) -> None:
    moto.training_job(JOB, status="Completed")

    body = lookup(cr, http_server, cfn_event, "Delete", physical_resource_id=JOB)

    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == JOB
    assert moto.training_job_status(JOB) == "Completed"
