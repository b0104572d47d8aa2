"""approved_version.on_event (Custom::RLApprovedModelVersion) against moto's model registry.

The CloudFormation response URL is a recording HTTP server on 127.0.0.1. moto stamps versions
to the millisecond, so the tests that depend on "newest" set each version's CreationTime.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType, SimpleNamespace
from typing import Any, TypeAlias

import pytest

RegistryMoto: TypeAlias = Any
RecordingServer: TypeAlias = Any
Lookup: TypeAlias = Callable[..., dict[str, Any]]
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
GROUP = "cartpole-ppo"
GROUP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{GROUP}"
LOGS = " (handler logs: CloudWatch Logs /aws/lambda/rl-handler 2026/01/01/[$LATEST]abcdef)"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def version_arn(number: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{number}"


def image(number: int) -> str:
    return f"111122223333.dkr.ecr.us-east-1.amazonaws.com/rl-serve:{number}"


def model_data(number: int) -> str:
    return f"s3://bucket/output/job-{number}/output/model.tar.gz"


@pytest.fixture
def approved_version(
    cr: SimpleNamespace, import_handler: Callable[[str], ModuleType]
) -> ModuleType:
    return import_handler("custom_resources.approved_version")


@pytest.fixture
def http_server(module_http_server: RecordingServer) -> RecordingServer:
    """The module's recording server, emptied: CloudFormation's response URL for one test."""
    module_http_server.requests.clear()
    module_http_server.script.clear()
    return module_http_server


@pytest.fixture
def moto(registry_moto: RegistryMoto) -> RegistryMoto:
    registry_moto.model_package_group(GROUP)
    return registry_moto


def add_versions(moto: RegistryMoto, *statuses: str) -> list[str]:
    """Versions 1..n of GROUP with ``statuses``, an hour apart, each with its own image and data."""
    return [
        moto.model_package(
            GROUP,
            status,
            image=image(number),
            model_data_url=model_data(number),
            created=T0 + timedelta(hours=number),
        )
        for number, status in enumerate(statuses, start=1)
    ]


@pytest.fixture
def lookup(
    approved_version: ModuleType, moto: RegistryMoto, cfn_call: Callable[..., dict[str, Any]]
) -> Lookup:
    """Sends one CloudFormation request to the handler (see ``cfn_call``); returns the response."""

    def request(
        properties: dict[str, Any],
        request_type: str = "Create",
        physical_resource_id: str | None = None,
    ) -> dict[str, Any]:
        return cfn_call(
            approved_version,
            properties,
            request_type,
            physical_resource_id,
            resource_type="Custom::RLApprovedModelVersion",
        )

    return request


def statuses(moto: RegistryMoto) -> list[str]:
    listed = moto.sagemaker.list_model_packages(
        ModelPackageGroupName=GROUP, SortBy="CreationTime", SortOrder="Ascending"
    )["ModelPackageSummaryList"]
    return [item["ModelApprovalStatus"] for item in listed]


@pytest.mark.parametrize("group", [GROUP_ARN, GROUP], ids=["group-arn", "group-name"])
def test_newest_approved_version_is_served_pending_and_rejected_ones_are_skipped(
    lookup: Lookup, moto: RegistryMoto, group: str
) -> None:
    add_versions(moto, "Approved", "Approved", "PendingManualApproval", "Rejected")

    body = lookup({"ModelPackageGroup": group})

    assert body["Status"] == "SUCCESS" and body["Reason"] == ""
    assert body["PhysicalResourceId"] == version_arn(2)
    assert body["Data"] == {
        "ModelPackageArn": version_arn(2),
        "ModelPackageVersion": "2",
        "Image": image(2),
        "ModelDataUrl": model_data(2),
        "Description": "",
    }
    # Read-only: nothing registered, nothing approved or rejected.
    assert statuses(moto) == ["Approved", "Approved", "PendingManualApproval", "Rejected"]


def test_the_description_of_the_version_is_passed_on(lookup: Lookup, moto: RegistryMoto) -> None:
    moto.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelPackageDescription="Reward gate passed: eval_reward_mean = 487, required >= 450.",
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": image(1), "ModelDataUrl": model_data(1)}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )

    body = lookup({"ModelPackageGroup": GROUP})

    assert body["Data"]["Description"] == (
        "Reward gate passed: eval_reward_mean = 487, required >= 450."
    )


def test_a_version_approved_later_is_found_by_the_next_revision(
    lookup: Lookup, moto: RegistryMoto
) -> None:
    add_versions(moto, "Approved", "PendingManualApproval")
    first = lookup({"ModelPackageGroup": GROUP_ARN, "Revision": "r1"})
    moto.sagemaker.update_model_package(
        ModelPackageArn=version_arn(2), ModelApprovalStatus="Approved"
    )

    second = lookup(
        {"ModelPackageGroup": GROUP_ARN, "Revision": "r2"}, "Update", first["PhysicalResourceId"]
    )

    assert first["PhysicalResourceId"] == version_arn(1)
    assert second["Status"] == "SUCCESS"
    assert second["PhysicalResourceId"] == version_arn(2)
    assert second["Data"]["Image"] == image(2)
    assert second["Data"]["ModelDataUrl"] == model_data(2)


def test_pinned_version_is_served_even_when_a_newer_one_is_approved(
    lookup: Lookup, moto: RegistryMoto
) -> None:
    add_versions(moto, "Approved", "Approved", "Approved")

    body = lookup({"ModelPackageGroup": GROUP_ARN, "Version": "2"})

    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == version_arn(2)
    assert body["Data"] == {
        "ModelPackageArn": version_arn(2),
        "ModelPackageVersion": "2",
        "Image": image(2),
        "ModelDataUrl": model_data(2),
        "Description": "",
    }


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_pinned_version_that_is_not_approved_fails_naming_its_status(
    lookup: Lookup, moto: RegistryMoto, status: str
) -> None:
    add_versions(moto, "Approved", status)

    body = lookup({"ModelPackageGroup": GROUP_ARN, "Version": "2"})

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        f"Model package version {version_arn(2)} is {status}, not Approved: it is not served" + LOGS
    )
    assert body["PhysicalResourceId"] == "create-failed:req-0001"
    assert body["Data"] == {}


def test_pinned_version_that_does_not_exist_fails(lookup: Lookup, moto: RegistryMoto) -> None:
    add_versions(moto, "Approved")

    body = lookup({"ModelPackageGroup": GROUP_ARN, "Version": "7"})

    assert body["Status"] == "FAILED"
    assert body["Reason"] == f"Model package version {version_arn(7)} was not found" + LOGS


@pytest.mark.parametrize(
    "existing", [(), ("PendingManualApproval", "Rejected")], ids=["empty", "none-approved"]
)
def test_group_without_an_approved_version_fails_telling_how_to_approve_one(
    lookup: Lookup, moto: RegistryMoto, existing: tuple[str, ...]
) -> None:
    add_versions(moto, *existing)

    body = lookup({"ModelPackageGroup": GROUP_ARN})

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        f"Model package group {GROUP_ARN} has no Approved version yet, so there is nothing to "
        "serve. Approve one (aws sagemaker update-model-package --model-package-arn "
        "<version ARN> --model-approval-status Approved) and deploy again." + LOGS
    )
    assert body["PhysicalResourceId"] == "create-failed:req-0001"


def test_unknown_group_fails_naming_it(lookup: Lookup, moto: RegistryMoto) -> None:
    """moto (like the local emulator) lists no versions for a group that does not exist."""
    add_versions(moto, "Approved")  # in another group: must not be picked
    other = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/no-such-group"

    body = lookup({"ModelPackageGroup": other})

    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith(f"Model package group {other} has no Approved version yet")


def test_update_that_fails_keeps_the_version_being_served(
    lookup: Lookup, moto: RegistryMoto
) -> None:
    add_versions(moto, "Approved", "Rejected")

    body = lookup({"ModelPackageGroup": GROUP_ARN, "Version": "2"}, "Update", version_arn(1))

    assert body["Status"] == "FAILED"
    assert body["PhysicalResourceId"] == version_arn(1)


def test_missing_group_property_fails(lookup: Lookup) -> None:
    body = lookup({"Version": "1"})

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        "Custom::RLApprovedModelVersion property ModelPackageGroup is required and must be a "
        "non-empty string" + LOGS
    )


def test_delete_answers_success_and_leaves_the_version_alone(
    lookup: Lookup, moto: RegistryMoto
) -> None:
    add_versions(moto, "Approved")

    body = lookup({"ModelPackageGroup": GROUP_ARN}, "Delete", version_arn(1))

    assert body["Status"] == "SUCCESS" and body["Reason"] == ""
    assert body["PhysicalResourceId"] == version_arn(1) and body["Data"] == {}
    assert statuses(moto) == ["Approved"]
