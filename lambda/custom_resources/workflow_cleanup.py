"""``Custom::RLServingCleanup``: delete what the serving workflow created when the stack goes.

After ``fit(wait=False)`` + ``deploy()``, a state machine (not CloudFormation) creates the model,
the endpoint config and the endpoint, so ``cdk destroy`` would leave a billed endpoint behind.
This resource does nothing on Create and Update; on Delete it

* deregisters the endpoint variant from Application Auto Scaling, when the workflow registers it
  (the ``ScalableTarget*`` properties are given). CloudFormation does not know that registration
  either, and it would outlive the endpoint: a later endpoint of the same name would inherit the
  scaling policy and schedules. Deregistering also deletes the target's scaling policies,
  scheduled actions and target-tracking alarms. It comes first, so that no scaling activity
  changes the endpoint while it is being deleted;
* deletes the endpoint, by its fixed name (after waiting, within the Lambda's time, for a
  creation or update in progress to settle: SageMaker refuses to delete an endpoint that is
  changing);
* deletes every endpoint config and model whose name starts with ``NamePrefix`` *and* that
  carries the tag ``TagKey`` = ``EndpointName`` (the workflow tags everything it creates), so
  resources of another stack that share the job-name prefix are never touched.

Missing resources are fine, and Delete never fails: a failing Delete would block the stack's
deletion or rollback for good; whatever could not be deleted is logged with the reason.

ResourceProperties: ``EndpointName`` (the endpoint, and the tag value), ``NamePrefix`` (the job
name base and ``-``), ``TagKey``; with autoscaling, all three of ``ScalableTargetNamespace``,
``ScalableTargetResourceId`` and ``ScalableTargetDimension`` (DeregisterScalableTarget's
``ServiceNamespace``, ``ResourceId`` and ``ScalableDimension``). Physical id: the endpoint name.
No Data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from botocore.exceptions import ClientError

from _shared.json_logger import JsonLogger
from custom_resources._cfn import (
    CustomResourceRequest,
    Outcome,
    aws_client,
    is_failed_create_placeholder,
    is_not_found,
    run_custom_resource,
)

#: Endpoint states that end by themselves; DeleteEndpoint is refused while one lasts.
TRANSITIONAL_STATUSES: Final = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
#: Seconds between two DescribeEndpoint calls while waiting (module attribute: tests shorten it).
POLL_SECONDS: float = 15.0
#: Stop waiting this long before the Lambda timeout, to leave time for the deletions.
TIME_RESERVE_SECONDS: float = 60.0
#: Used when the handler runs without a Lambda context (tests).
DEFAULT_TIME_BUDGET_SECONDS: float = 600.0
#: Property -> DeregisterScalableTarget parameter; all or none of them are given.
SCALABLE_TARGET_PROPERTIES: Final = {
    "ScalableTargetNamespace": "ServiceNamespace",
    "ScalableTargetResourceId": "ResourceId",
    "ScalableTargetDimension": "ScalableDimension",
}

logger = JsonLogger("cdk-sagemaker-rl.workflow-cleanup")


def _create_or_update(request: CustomResourceRequest) -> Outcome:
    """Create/Update: nothing exists yet that this resource owns; the endpoint name is the id."""
    name = request.required("EndpointName")
    request.required("NamePrefix")
    request.required("TagKey")
    if _has_autoscaling(request):
        _scalable_target(request)  # an incomplete target would only be noticed at deletion
    return Outcome(physical_resource_id=name)


def _has_autoscaling(request: CustomResourceRequest) -> bool:
    return any(request.properties.get(name) for name in SCALABLE_TARGET_PROPERTIES)


def _scalable_target(request: CustomResourceRequest) -> dict[str, str]:
    """The DeregisterScalableTarget request; a readable error when a property is missing."""
    return {
        parameter: request.required(name) for name, parameter in SCALABLE_TARGET_PROPERTIES.items()
    }


def _not_registered(err: ClientError) -> bool:
    """True when the answer means the target is not (or no longer) registered.

    Application Auto Scaling answers ObjectNotFoundException; moto, which the local emulator
    runs, a ValidationException "No scalable target found ...".
    """
    message = str(err.response.get("Error", {}).get("Message", "")).lower()
    return is_not_found(err) or "no scalable target" in message


def _deregister_scalable_target(request: CustomResourceRequest) -> str:
    target = _scalable_target(request)
    try:
        aws_client("application-autoscaling").deregister_scalable_target(**target)
    except ClientError as err:
        if _not_registered(err):
            return "scalable target not registered"
        raise
    return "scalable target deregistered"


def _wait_until_settled(name: str, deadline: float) -> str | None:
    """The endpoint's status once it is not changing (or at the deadline); None if it is gone."""
    sagemaker = aws_client("sagemaker")
    while True:
        try:
            status = str(sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"])
        except ClientError as err:
            if is_not_found(err):
                return None
            raise
        if status not in TRANSITIONAL_STATUSES or time.monotonic() + POLL_SECONDS > deadline:
            return status
        logger.info("waiting for the endpoint to settle before deleting it", status=status)
        time.sleep(POLL_SECONDS)


def _delete_endpoint(name: str, deadline: float) -> str:
    status = _wait_until_settled(name, deadline)
    if status is None:
        return "endpoint not found"
    if status == "Deleting":
        return "endpoint already being deleted"
    try:
        aws_client("sagemaker").delete_endpoint(EndpointName=name)
    except ClientError as err:
        if is_not_found(err):
            return "endpoint not found"
        raise
    return f"endpoint deleted (was {status})"


def _tagged(arn: str, key: str, value: str) -> bool:
    """True when the resource carries ``key`` = ``value``; False when it vanished meanwhile."""
    sagemaker = aws_client("sagemaker")
    try:
        for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
            if any(t.get("Key") == key and t.get("Value") == value for t in page.get("Tags", [])):
                return True
    except ClientError as err:
        if is_not_found(err):
            return False
        raise
    return False


def _candidates(
    operation: str, items_key: str, name_key: str, arn_key: str, prefix: str
) -> Iterator[tuple[str, str]]:
    """(name, ARN) of the listed resources whose name starts with ``prefix``.

    ``NameContains`` narrows the listing on SageMaker's side; the prefix test is exact.
    """
    paginator = aws_client("sagemaker").get_paginator(operation)
    for page in paginator.paginate(NameContains=prefix):
        for item in page.get(items_key, []):
            name = str(item.get(name_key, ""))
            if name.startswith(prefix):
                yield name, str(item.get(arn_key, ""))


def _delete_tagged(
    kind: str,
    candidates: Iterator[tuple[str, str]],
    delete: Callable[[str], object],
    tag_key: str,
    endpoint_name: str,
) -> dict[str, object]:
    """Deletes each candidate carrying the endpoint's tag; one failure does not stop the rest."""
    deleted: list[str] = []
    failed: dict[str, str] = {}
    skipped = 0
    for name, arn in candidates:
        try:
            if not _tagged(arn, tag_key, endpoint_name):
                skipped += 1
                continue
            delete(name)
            deleted.append(name)
        except ClientError as err:
            if is_not_found(err):
                continue
            logger.exception(f"could not delete the {kind}", name=name)
            failed[name] = str(err.response.get("Error", {}).get("Code", "ClientError"))
    return {"deleted": deleted, "failed": failed, "not_ours": skipped}


def _delete(request: CustomResourceRequest, deadline: float) -> Outcome:
    """Delete: the scalable target first (it scales the endpoint), then the endpoint (it uses a
    config and a model), then configs, then models."""
    if is_failed_create_placeholder(request.physical_resource_id):
        logger.info("nothing to clean up: the resource was never created")
        return Outcome(request.fallback_physical_id())
    endpoint_name = request.required("EndpointName")
    prefix = request.required("NamePrefix")
    tag_key = request.required("TagKey")
    sagemaker = aws_client("sagemaker")
    steps: list[tuple[str, Callable[[], object]]] = []
    if _has_autoscaling(request):
        # Read inside the step: an incomplete target then fails this step only.
        steps.append(("scalable_target", lambda: _deregister_scalable_target(request)))
    steps += (
        ("endpoint", lambda: _delete_endpoint(endpoint_name, deadline)),
        (
            "endpoint_configs",
            lambda: _delete_tagged(
                "endpoint config",
                _candidates(
                    "list_endpoint_configs",
                    "EndpointConfigs",
                    "EndpointConfigName",
                    "EndpointConfigArn",
                    prefix,
                ),
                lambda name: sagemaker.delete_endpoint_config(EndpointConfigName=name),
                tag_key,
                endpoint_name,
            ),
        ),
        (
            "models",
            lambda: _delete_tagged(
                "model",
                _candidates("list_models", "Models", "ModelName", "ModelArn", prefix),
                lambda name: sagemaker.delete_model(ModelName=name),
                tag_key,
                endpoint_name,
            ),
        ),
    )
    results: dict[str, object] = {}
    for step, action in steps:
        try:
            results[step] = action()
        except Exception as err:
            logger.exception(f"cleanup step {step} failed", endpoint_name=endpoint_name)
            results[step] = f"failed: {type(err).__name__}: {err}"
    logger.info("serving workflow resources cleaned up", endpoint_name=endpoint_name, **results)
    return Outcome(request.physical_resource_id or endpoint_name)


def on_event(event: Mapping[str, Any], context: object | None) -> dict[str, Any] | None:
    """Lambda handler of Custom::RLServingCleanup; returns the response body sent."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = float(remaining()) / 1000.0 if callable(remaining) else DEFAULT_TIME_BUDGET_SECONDS
    deadline = time.monotonic() + max(budget - TIME_RESERVE_SECONDS, 0.0)
    return run_custom_resource(
        event,
        context,
        logger=logger,
        create=_create_or_update,
        update=_create_or_update,
        delete=lambda request: _delete(request, deadline),
    )
