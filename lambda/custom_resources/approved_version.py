"""``Custom::RLApprovedModelVersion``: the approved model package version a promotion serves.

Read-only: ``ListModelPackages`` of the one group (Approved, newest first) or the pinned
``Version``, then ``DescribeModelPackage``. A group without an approved version fails the deploy
with what to do, before any endpoint is touched.

ResourceProperties: ``ModelPackageGroup`` (name or ARN), optional ``Version``, ``Revision`` (only
there to make CloudFormation run the lookup again). Physical id: the version's ARN. Data:
``ModelPackageArn``, ``ModelPackageVersion``, ``Image``, ``ModelDataUrl``, ``Description``.
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

logger = JsonLogger("cdk-sagemaker-rl.approved-version")


def _version_arn(group: str, version: str) -> str:
    if group.startswith("arn:"):
        return f"{group.replace(':model-package-group/', ':model-package/')}/{version}"
    return f"{group}/{version}"


def _lookup(request: CustomResourceRequest) -> Outcome:
    group = request.required("ModelPackageGroup")
    version = request.optional("Version")
    sagemaker = aws_client("sagemaker")
    fallback = request.fallback_physical_id()
    if version is None:
        try:
            listed = sagemaker.list_model_packages(
                ModelPackageGroupName=group,
                ModelApprovalStatus="Approved",
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=1,
            ).get("ModelPackageSummaryList", [])
        except ClientError as err:
            if is_not_found(err):
                return Outcome.failed(fallback, f"Model package group {group} was not found")
            raise
        if not listed:
            return Outcome.failed(
                fallback,
                f"Model package group {group} has no Approved version yet, so there is nothing "
                "to serve. Approve one (aws sagemaker update-model-package --model-package-arn "
                "<version ARN> --model-approval-status Approved) and deploy again.",
            )
        arn = str(listed[0]["ModelPackageArn"])
    else:
        arn = _version_arn(group, version)
    try:
        package = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as err:
        if is_not_found(err):
            return Outcome.failed(fallback, f"Model package version {arn} was not found")
        raise
    status = str(package.get("ModelApprovalStatus", ""))
    if status != "Approved":
        return Outcome.failed(
            fallback, f"Model package version {arn} is {status}, not Approved: it is not served"
        )
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    container = containers[0]
    if not container.get("ModelDataUrl") or not container.get("Image"):
        return Outcome.failed(fallback, f"Model package version {arn} has no image and model data")
    logger.info("approved version", model_package_arn=arn, image=container["Image"])
    return Outcome(
        physical_resource_id=arn,
        data={
            "ModelPackageArn": arn,
            "ModelPackageVersion": str(package.get("ModelPackageVersion", "")),
            "Image": str(container["Image"]),
            "ModelDataUrl": str(container["ModelDataUrl"]),
            "Description": str(package.get("ModelPackageDescription", ""))[:1000],
        },
    )


def _delete(request: CustomResourceRequest) -> Outcome:
    """Nothing was created: the version belongs to its group."""
    return Outcome(request.fallback_physical_id())


def on_event(event: Mapping[str, Any], context: object | None) -> dict[str, Any] | None:
    """Lambda handler of Custom::RLApprovedModelVersion."""
    return run_custom_resource(
        event, context, logger=logger, create=_lookup, update=_lookup, delete=_delete
    )
