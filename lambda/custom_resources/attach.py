"""``Custom::RLTrainingJobLookup``: serve a model from a training job that already exists.

``RLEstimator.attach()`` does not train; it needs the finished job's model artifact and image at
deploy time. Looking the job up during the deploy (rather than at synth time) keeps synthesis
free of AWS calls, and failing the resource when the job is not ``Completed`` stops the deploy
before an endpoint is created around a model that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from _shared.json_logger import JsonLogger
from custom_resources._cfn import (
    CustomResourceRequest,
    Outcome,
    aws_client,
    is_not_found,
    run_custom_resource,
)

logger = JsonLogger("cdk-sagemaker-rl.attach")


def _lookup(request: CustomResourceRequest) -> Outcome:
    """Create/Update: report the job's model and image, or FAILED saying why it cannot be used."""
    name = request.required("TrainingJobName")
    try:
        job = aws_client("sagemaker").describe_training_job(TrainingJobName=name)
    except ClientError as err:
        if is_not_found(err):
            return Outcome.failed(
                name, f"Training job {name} was not found in this account and region"
            )
        raise
    status = str(job.get("TrainingJobStatus", "Unknown"))
    if status != "Completed":
        reason = f"Training job {name} is {status}, not Completed"
        failure = job.get("FailureReason")
        if failure:
            reason += f": {failure}"
        return Outcome.failed(name, reason + "; only a completed job has a model to serve")
    model = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    image = (job.get("AlgorithmSpecification") or {}).get("TrainingImage")
    if not model:
        return Outcome.failed(name, f"Training job {name} is Completed but has no model artifact")
    if not image:
        return Outcome.failed(
            name,
            f"Training job {name} has no TrainingImage (it used an algorithm resource), "
            "so there is no RL image to serve it with",
        )
    logger.info(
        "training job found", training_job_name=name, model_data_url=model, training_image=image
    )
    return Outcome(
        physical_resource_id=name,
        data={"ModelDataUrl": str(model), "TrainingImage": str(image), "TrainingJobStatus": status},
    )


def _delete(request: CustomResourceRequest) -> Outcome:
    """Delete: the job is not owned by the stack, so there is nothing to do."""
    return Outcome(request.fallback_physical_id())


def on_event(event: Mapping[str, Any], context: object | None) -> dict[str, Any] | None:
    """Lambda handler of Custom::RLTrainingJobLookup; returns the response body sent."""
    return run_custom_resource(
        event, context, logger=logger, create=_lookup, update=_lookup, delete=_delete
    )
