"""The model registry, endpoint tags and the gate's Step Functions states on the local emulator.

What the reward gate and the promotion workflow call, called the same way (boto3 over HTTP):
model package groups (API and ``AWS::SageMaker::ModelPackageGroup``), versions with their
approval status, tags of a CloudFormation endpoint through updates and rollbacks, and a state
machine with ``lambda:invoke``, ``Wait``, ``Choice``, ``Fail`` and ``aws-sdk:sagemaker:addTags``.
One emulator serves the module (``conftest.local_emulator``); the only model server is the one of
the endpoint stack, serving a tiny JSON "policy".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import EmulatorProcess
from test_emulator import (
    outputs,
    resource_events,
    role_arn,
    settled_stack,
    tar_gz,
    wait_until,
    zip_files,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
TRAINING_JOB_TAG = "cdk-sagemaker-rl:training-job"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/policy-2024-01-01-00-00-00-000"
GROUP_TYPE = "AWS::SageMaker::ModelPackageGroup"

INFERENCE = """
    import json, os

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "model.json")) as f:
            return json.load(f)

    def input_fn(body, content_type):
        return json.loads(body)

    def predict_fn(data, model):
        return {"version": model["version"]}

    def output_fn(prediction, accept):
        return json.dumps(prediction), "application/json"
"""

# The gate's verdict, as the reward gate function answers the workflow.
GATE = """
    def handler(event, context):
        passed = float(event["Score"]) >= float(event["Threshold"])
        verdict = "passed" if passed else "failed"
        return {"Verdict": verdict, "Message": f"score {event['Score']}: {verdict}",
                "Extra": "dropped by ResultSelector"}
"""


# --- helpers ------------------------------------------------------------------------------------


def error_of(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error: dict[str, str] = raised.value.response["Error"]
    return error


def tags_of(emulator: EmulatorProcess, arn: str) -> dict[str, str]:
    tags = emulator.client("sagemaker").list_tags(ResourceArn=arn)["Tags"]
    assert len({t["Key"] for t in tags}) == len(tags), tags  # one value per key
    return {t["Key"]: t["Value"] for t in tags}


def group_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{name}"


def inference_specification(model_url: str = "s3://models/policy/model.tar.gz") -> dict[str, Any]:
    return {
        "Containers": [
            {
                "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1",
                "ModelDataUrl": model_url,
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
            }
        ],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    }


# --- versions through the API -------------------------------------------------------------------


def test_versions_are_numbered_described_approved_and_listed_newest_first(
    local_emulator: EmulatorProcess,
) -> None:
    sagemaker = local_emulator.client("sagemaker")
    missing = error_of(
        lambda: sagemaker.create_model_package(
            ModelPackageGroupName="no-such-group",
            InferenceSpecification=inference_specification(),
            ModelApprovalStatus="Approved",
        )
    )
    assert missing["Code"] == "ValidationException"
    assert missing["Message"] == f"ModelPackageGroup {group_arn('no-such-group')} does not exist."

    sagemaker.create_model_package_group(
        ModelPackageGroupName="policies", ModelPackageGroupDescription="CartPole policies"
    )
    assert error_of(lambda: sagemaker.create_model_package_group(ModelPackageGroupName="policies"))[
        "Code"
    ] == ("ValidationException")

    def register(status: str | None, token: str, **extra: Any) -> str:
        arguments: dict[str, Any] = {
            "ModelPackageGroupName": "policies",
            "ModelPackageDescription": f"gate says {status}",
            "InferenceSpecification": inference_specification(),
            "MetadataProperties": {"GeneratedBy": JOB_ARN},
            "CustomerMetadataProperties": {"GateVerdict": "passed", "GateValue": "500.0"},
            "ClientToken": token,
            **extra,
        }
        if status is not None:
            arguments["ModelApprovalStatus"] = status
        return str(sagemaker.create_model_package(**arguments)["ModelPackageArn"])

    first = register("Approved", "token-1")
    assert first == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/policies/1"
    described = sagemaker.describe_model_package(ModelPackageName=first)
    assert described["ModelPackageGroupName"] == described["ModelPackageName"] == "policies"
    assert described["ModelPackageVersion"] == 1
    assert described["ModelPackageArn"] == first
    assert described["ModelPackageStatus"] == "Completed"
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ModelPackageDescription"] == "gate says Approved"
    assert described["InferenceSpecification"] == inference_specification()
    assert described["MetadataProperties"] == {"GeneratedBy": JOB_ARN}
    assert described["CustomerMetadataProperties"] == {
        "GateVerdict": "passed",
        "GateValue": "500.0",
    }
    assert described["CreationTime"].tzinfo is not None

    # The same ClientToken is the same request: no second version.
    assert register("Approved", "token-1") == first
    # Without ModelApprovalStatus a version waits for approval, as on AWS.
    pending = register(None, "token-2")
    assert pending.endswith("/policies/2")
    assert sagemaker.describe_model_package(ModelPackageName=pending)["ModelApprovalStatus"] == (
        "PendingManualApproval"
    )
    rejected = register("Rejected", "token-3")
    # A burst of versions, created within the same millisecond or not: newest first all the same.
    burst = [register("Approved", f"burst-{n}") for n in range(5)]
    assert [arn.rsplit("/", 1)[-1] for arn in burst] == ["4", "5", "6", "7", "8"]

    def newest_approved(group: str, **extra: Any) -> dict[str, Any]:
        listing: dict[str, Any] = sagemaker.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
            **extra,
        )
        return listing

    by_name = newest_approved("policies")
    assert [p["ModelPackageArn"] for p in by_name["ModelPackageSummaryList"]] == [burst[-1]]
    summary = by_name["ModelPackageSummaryList"][0]
    assert summary["ModelPackageVersion"] == 8 and summary["ModelApprovalStatus"] == "Approved"
    assert by_name["NextToken"]
    by_arn = newest_approved(group_arn("policies"))
    assert by_arn["ModelPackageSummaryList"] == by_name["ModelPackageSummaryList"]
    every = sagemaker.list_model_packages(
        ModelPackageGroupName="policies",
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
    )["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in every] == [8, 7, 6, 5, 4, 1]
    second_page = newest_approved("policies", NextToken=by_name["NextToken"])
    assert [p["ModelPackageVersion"] for p in second_page["ModelPackageSummaryList"]] == [7]

    # Manual approval keeps what the call does not change.
    sagemaker.update_model_package(
        ModelPackageArn=pending,
        ModelApprovalStatus="Approved",
        ApprovalDescription="approved by the on-call reviewer",
    )
    approved = sagemaker.describe_model_package(ModelPackageName=pending)
    assert approved["ModelApprovalStatus"] == "Approved"
    assert approved["ApprovalDescription"] == "approved by the on-call reviewer"
    assert approved["CustomerMetadataProperties"] == {
        "GateVerdict": "passed",
        "GateValue": "500.0",
    }
    assert approved["LastModifiedTime"] >= approved["CreationTime"]
    sagemaker.update_model_package(
        ModelPackageArn=rejected, CustomerMetadataProperties={"Reviewer": "ops"}
    )
    still = sagemaker.describe_model_package(ModelPackageName=rejected)
    assert still["ModelApprovalStatus"] == "Rejected"
    assert still["CustomerMetadataProperties"]["Reviewer"] == "ops"
    assert still["CustomerMetadataProperties"]["GateVerdict"] == "passed"
    # Version 2 is approved now, but it is older than the burst: the newest stays version 8.
    assert newest_approved("policies")["ModelPackageSummaryList"][0]["ModelPackageVersion"] == 8


def test_groups_keep_a_policy_and_go_only_when_empty(local_emulator: EmulatorProcess) -> None:
    sagemaker = local_emulator.client("sagemaker")
    arn = sagemaker.create_model_package_group(ModelPackageGroupName="short-lived")[
        "ModelPackageGroupArn"
    ]
    assert arn == group_arn("short-lived")
    no_policy = error_of(
        lambda: sagemaker.get_model_package_group_policy(ModelPackageGroupName="short-lived")
    )
    assert no_policy["Code"] == "ValidationException"
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    put = sagemaker.put_model_package_group_policy(
        ModelPackageGroupName="short-lived", ResourcePolicy=policy
    )
    assert put["ModelPackageGroupArn"] == arn
    got = sagemaker.get_model_package_group_policy(ModelPackageGroupName="short-lived")
    assert got["ResourcePolicy"] == policy
    sagemaker.delete_model_package_group_policy(ModelPackageGroupName="short-lived")
    assert error_of(
        lambda: sagemaker.get_model_package_group_policy(ModelPackageGroupName="short-lived")
    )["Code"] == ("ValidationException")

    version = sagemaker.create_model_package(
        ModelPackageGroupName=arn,  # by ARN
        InferenceSpecification=inference_specification(),
        ModelApprovalStatus="Rejected",
    )["ModelPackageArn"]
    # Versions have tags; AddTags overwrites a key's value.
    sagemaker.add_tags(ResourceArn=version, Tags=[{"Key": "stage", "Value": "candidate"}])
    sagemaker.add_tags(ResourceArn=version, Tags=[{"Key": "stage", "Value": "rejected"}])
    assert tags_of(local_emulator, version) == {"stage": "rejected"}

    busy = error_of(lambda: sagemaker.delete_model_package_group(ModelPackageGroupName=arn))
    assert busy["Code"] == "ConflictException"
    sagemaker.delete_model_package(ModelPackageName=version)
    sagemaker.delete_model_package_group(ModelPackageGroupName="short-lived")
    gone = error_of(
        lambda: sagemaker.describe_model_package_group(ModelPackageGroupName="short-lived")
    )
    assert gone == {
        "Code": "ValidationException",
        "Message": f"ModelPackageGroup {arn} does not exist.",
    }
    # A new group of the same name starts again at version 1.
    sagemaker.create_model_package_group(ModelPackageGroupName="short-lived")
    again = sagemaker.create_model_package(
        ModelPackageGroupName="short-lived", InferenceSpecification=inference_specification()
    )["ModelPackageArn"]
    assert again.endswith("/short-lived/1")


def test_list_tags_of_a_resource_that_does_not_exist_is_a_validation_error(
    local_emulator: EmulatorProcess,
) -> None:
    sagemaker = local_emulator.client("sagemaker")

    def list_tags_error(arn: str) -> dict[str, str]:
        return error_of(lambda: sagemaker.list_tags(ResourceArn=arn))

    for arn in (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/never-deployed",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/policies/999",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/nothing",
    ):
        assert list_tags_error(arn) == {
            "Code": "ValidationException",
            "Message": "Resource does not exist.",
        }


# --- AWS::SageMaker::ModelPackageGroup ----------------------------------------------------------


def group_template(
    name: str | None,
    *,
    description: str = "Policies that passed or failed the reward gate",
    policy: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    deletion_policy: str | None = None,
    fail_after: bool = False,
) -> str:
    properties: dict[str, Any] = {"ModelPackageGroupDescription": description}
    if name is not None:
        properties["ModelPackageGroupName"] = name
    if policy is not None:
        properties["ModelPackageGroupPolicy"] = policy
    if tags:
        properties["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    group: dict[str, Any] = {"Type": GROUP_TYPE, "Properties": properties}
    parameter: dict[str, Any] = {
        "Type": "AWS::SSM::Parameter",
        "Properties": {"Name": f"/registry/{name}", "Type": "String", "Value": {"Ref": "Group"}},
    }
    if deletion_policy:
        group["DeletionPolicy"] = parameter["DeletionPolicy"] = deletion_policy
    resources = {"Group": group, "GroupArn": parameter}
    if fail_after:
        # Times out 1 s after the group's update: the stack rolls back an updated group.
        resources["Handle"] = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
        resources["Wait"] = {
            "Type": "AWS::CloudFormation::WaitCondition",
            "DependsOn": "Group",
            "Properties": {"Handle": {"Ref": "Handle"}, "Timeout": "1", "Count": 1},
        }
    template = {
        "Resources": resources,
        "Outputs": {
            "Ref": {"Value": {"Ref": "Group"}},
            "Arn": {"Value": {"Fn::GetAtt": ["Group", "ModelPackageGroupArn"]}},
            "Status": {"Value": {"Fn::GetAtt": ["Group", "ModelPackageGroupStatus"]}},
            "Created": {"Value": {"Fn::GetAtt": ["Group", "CreationTime"]}},
        },
    }
    return json.dumps(template)


def reader_policy(principal: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{principal}:root"},
                "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
                "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/registry/*",
            }
        ],
    }


def test_a_template_group_is_updated_in_place_and_retained(
    local_emulator: EmulatorProcess,
) -> None:
    cfn = local_emulator.client("cloudformation")
    sagemaker = local_emulator.client("sagemaker")
    arn = group_arn("registry")
    template = group_template(
        "registry",
        policy=reader_policy("111122223333"),
        tags={"team": "rl", "stage": "dev"},
        deletion_policy="Retain",
    )
    cfn.create_stack(StackName="registry", TemplateBody=template)
    stack = settled_stack(local_emulator, "registry")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    created = outputs(stack)
    # Ref is the primary identifier of the schema: the ARN.
    assert created["Ref"] == created["Arn"] == arn
    assert created["Status"] == "Completed"
    assert created["Created"].endswith("Z")
    resources = cfn.describe_stack_resources(StackName="registry")["StackResources"]
    assert {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}["Group"] == arn
    described = sagemaker.describe_model_package_group(ModelPackageGroupName="registry")
    assert described["ModelPackageGroupDescription"] == (
        "Policies that passed or failed the reward gate"
    )
    policy = sagemaker.get_model_package_group_policy(ModelPackageGroupName="registry")
    assert json.loads(policy["ResourcePolicy"]) == reader_policy("111122223333")
    tags = tags_of(local_emulator, arn)
    assert {k: v for k, v in tags.items() if not k.startswith("aws:")} == {
        "team": "rl",
        "stage": "dev",
    }
    assert tags["aws:cloudformation:stack-name"] == "registry"
    assert tags["aws:cloudformation:logical-id"] == "Group"
    assert tags["aws:cloudformation:stack-id"] == stack["StackId"]

    # Policy and tags change in place: same group, same versions.
    version = sagemaker.create_model_package(
        ModelPackageGroupName=arn,
        InferenceSpecification=inference_specification(),
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "added-by", "Value": "someone else"}])
    cfn.update_stack(
        StackName="registry",
        TemplateBody=group_template(
            "registry",
            policy=reader_policy("444455556666"),
            tags={"team": "rl-platform"},
            deletion_policy="Retain",
        ),
    )
    updated = settled_stack(local_emulator, "registry")
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(updated)["Created"] == created["Created"]  # not replaced
    policy = sagemaker.get_model_package_group_policy(ModelPackageGroupName="registry")
    assert json.loads(policy["ResourcePolicy"]) == reader_policy("444455556666")
    tags = tags_of(local_emulator, arn)
    assert tags["team"] == "rl-platform" and "stage" not in tags
    assert tags["added-by"] == "someone else"  # not the template's: left alone
    assert sagemaker.describe_model_package(ModelPackageName=version)["ModelPackageVersion"] == 1

    # The description is create-only: with a fixed name, CloudFormation cannot replace the group.
    cfn.update_stack(
        StackName="registry",
        TemplateBody=group_template(
            "registry",
            description="another description",
            policy=reader_policy("444455556666"),
            tags={"team": "rl-platform"},
            deletion_policy="Retain",
        ),
    )
    assert settled_stack(local_emulator, "registry")["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    failures = [e for e in resource_events(local_emulator, "registry") if e[1] == "UPDATE_FAILED"]
    assert failures == [
        (
            "Group",
            "UPDATE_FAILED",
            "CloudFormation cannot update a stack when a custom-named resource requires "
            "replacing. Rename registry and update the stack again.",
        )
    ]

    # DeletionPolicy Retain: the stack goes, the group (and its versions) and the parameter stay.
    cfn.delete_stack(StackName="registry")
    deleted = settled_stack(local_emulator, stack["StackId"])
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    statuses = [e[:2] for e in resource_events(local_emulator, stack["StackId"])]
    assert ("Group", "DELETE_SKIPPED") in statuses and ("GroupArn", "DELETE_SKIPPED") in statuses
    assert sagemaker.describe_model_package_group(ModelPackageGroupName="registry")[
        "ModelPackageGroupArn"
    ] == (arn)
    assert sagemaker.describe_model_package(ModelPackageName=version)["ModelApprovalStatus"] == (
        "Approved"
    )
    parameter = local_emulator.client("ssm").get_parameter(Name="/registry/registry")
    assert parameter["Parameter"]["Value"] == arn


def test_a_template_group_without_retain_is_deleted_once_empty_and_needs_a_name(
    local_emulator: EmulatorProcess,
) -> None:
    cfn = local_emulator.client("cloudformation")
    sagemaker = local_emulator.client("sagemaker")
    cfn.create_stack(StackName="scratch-registry", TemplateBody=group_template("scratch"))
    stack = settled_stack(local_emulator, "scratch-registry")
    assert stack["StackStatus"] == "CREATE_COMPLETE"

    # A new name replaces the group: the new one is created, the old one deleted at clean-up.
    cfn.update_stack(StackName="scratch-registry", TemplateBody=group_template("scratch-2"))
    replaced = settled_stack(local_emulator, "scratch-registry")
    assert replaced["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(replaced)["Ref"] == group_arn("scratch-2")
    assert error_of(
        lambda: sagemaker.describe_model_package_group(ModelPackageGroupName="scratch")
    )["Code"] == ("ValidationException")

    # A replacement rolled back: the old group is back in the stack, the new one is deleted.
    cfn.update_stack(
        StackName="scratch-registry", TemplateBody=group_template("scratch-3", fail_after=True)
    )
    rolled_back = settled_stack(local_emulator, "scratch-registry")
    assert rolled_back["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert outputs(rolled_back)["Ref"] == group_arn("scratch-2")
    assert error_of(
        lambda: sagemaker.describe_model_package_group(ModelPackageGroupName="scratch-3")
    )["Code"] == ("ValidationException")

    # A group with versions cannot be deleted: the stack's delete fails, as on AWS.
    version = sagemaker.create_model_package(
        ModelPackageGroupName="scratch-2", InferenceSpecification=inference_specification()
    )["ModelPackageArn"]
    cfn.delete_stack(StackName="scratch-registry")
    failed = settled_stack(local_emulator, stack["StackId"])
    assert failed["StackStatus"] == "DELETE_FAILED"
    events = resource_events(local_emulator, stack["StackId"])
    reasons = [e[2] for e in events if e[:2] == ("Group", "DELETE_FAILED")]
    assert len(reasons) == 1
    assert "cannot be deleted because it has model package versions" in reasons[0]
    assert failed["StackStatusReason"].strip() == (
        "The following resource(s) failed to delete: [Group]."
    )
    sagemaker.delete_model_package(ModelPackageName=version)
    cfn.delete_stack(StackName=stack["StackId"])
    assert settled_stack(local_emulator, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"
    assert error_of(
        lambda: sagemaker.describe_model_package_group(ModelPackageGroupName="scratch-2")
    )["Code"] == ("ValidationException")

    # The schema requires ModelPackageGroupName: CloudFormation does not make one up.
    cfn.create_stack(StackName="nameless-registry", TemplateBody=group_template(None))
    assert settled_stack(local_emulator, "nameless-registry")["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [
        e[2]
        for e in resource_events(local_emulator, "nameless-registry")
        if e[1] == "CREATE_FAILED"
    ]
    assert reasons == [
        "Properties validation failed for resource Group with message:\n"
        "[#: required key [ModelPackageGroupName] not found]"
    ]


# --- endpoint tags through CloudFormation -------------------------------------------------------


def endpoint_template(model: str, job: str, *, wait_after: bool = False) -> str:
    resources: dict[str, Any] = {
        "Model": {
            "Type": "AWS::SageMaker::Model",
            "Properties": {
                "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/registry-test-role",
                "PrimaryContainer": {
                    "Image": "serving",
                    "ModelDataUrl": f"s3://registry-models/{model}/model.tar.gz",
                },
            },
        },
        "Config": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                    }
                ]
            },
        },
        "Endpoint": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointName": "gated-policy",
                "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                "Tags": [{"Key": TRAINING_JOB_TAG, "Value": job}, {"Key": "app", "Value": "rl"}],
            },
        },
    }
    if wait_after:
        # Fails 1 s after the endpoint's update: the stack rolls back an updated endpoint.
        resources["Handle"] = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
        resources["Wait"] = {
            "Type": "AWS::CloudFormation::WaitCondition",
            "DependsOn": "Endpoint",
            "Properties": {"Handle": {"Ref": "Handle"}, "Timeout": "1", "Count": 1},
        }
    return json.dumps({"Resources": resources, "Outputs": {"Arn": {"Value": {"Ref": "Endpoint"}}}})


@pytest.fixture(scope="module")
def gated_endpoint(local_emulator: EmulatorProcess) -> str:
    """The ARN of ``gated-policy``, a CloudFormation endpoint serving model ``v1``."""
    s3 = local_emulator.client("s3")
    s3.create_bucket(Bucket="registry-models")
    for version in ("v1", "v2", "v3"):
        archive = tar_gz(
            {"model.json": json.dumps({"version": version}), "code/inference.py": INFERENCE}
        )
        s3.put_object(Bucket="registry-models", Key=f"{version}/model.tar.gz", Body=archive)
    role_arn(local_emulator)
    local_emulator.client("cloudformation").create_stack(
        StackName="gated-serving", TemplateBody=endpoint_template("v1", "job-1")
    )
    stack = settled_stack(local_emulator, "gated-serving")
    assert stack["StackStatus"] == "CREATE_COMPLETE", resource_events(
        local_emulator, "gated-serving"
    )
    return str(outputs(stack)["Arn"])


def serving(emulator: EmulatorProcess) -> tuple[str, str]:
    """(the endpoint's config, the model version that answers)."""
    config = emulator.client("sagemaker").describe_endpoint(EndpointName="gated-policy")
    answer = emulator.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="gated-policy", Body=b"[0]", ContentType="application/json"
    )
    return str(config["EndpointConfigName"]), json.loads(answer["Body"].read())["version"]


def test_endpoint_tags_follow_stack_updates_and_rollbacks(
    local_emulator: EmulatorProcess, gated_endpoint: str
) -> None:
    cfn = local_emulator.client("cloudformation")
    sagemaker = local_emulator.client("sagemaker")
    assert gated_endpoint.endswith(":endpoint/gated-policy")
    assert tags_of(local_emulator, gated_endpoint) == {TRAINING_JOB_TAG: "job-1", "app": "rl"}
    assert "TemplateTagKeys" not in sagemaker.describe_endpoint(EndpointName="gated-policy")
    sagemaker.add_tags(ResourceArn=gated_endpoint, Tags=[{"Key": "owner", "Value": "ops"}])

    # A retrain: new config and new tag value, the endpoint updated in place.
    cfn.update_stack(StackName="gated-serving", TemplateBody=endpoint_template("v2", "job-2"))
    assert settled_stack(local_emulator, "gated-serving")["StackStatus"] == "UPDATE_COMPLETE"
    config_2, answer = serving(local_emulator)
    assert answer == "v2"
    assert tags_of(local_emulator, gated_endpoint) == {
        TRAINING_JOB_TAG: "job-2",
        "app": "rl",
        "owner": "ops",
    }
    endpoint_events = [
        e[1] for e in resource_events(local_emulator, "gated-serving") if e[0] == "Endpoint"
    ]
    assert "DELETE_IN_PROGRESS" not in endpoint_events  # never replaced

    # An update whose later resource fails: the endpoint went to v3 and job-3, and comes back.
    cfn.update_stack(
        StackName="gated-serving", TemplateBody=endpoint_template("v3", "job-3", wait_after=True)
    )
    assert wait_until(
        lambda: tags_of(local_emulator, gated_endpoint)[TRAINING_JOB_TAG] == "job-3", 30
    )
    rolled_back = settled_stack(local_emulator, "gated-serving")
    assert rolled_back["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert ("Wait", "CREATE_FAILED") in [
        e[:2] for e in resource_events(local_emulator, "gated-serving")
    ]
    assert serving(local_emulator) == (config_2, "v2")
    assert tags_of(local_emulator, gated_endpoint) == {
        TRAINING_JOB_TAG: "job-2",
        "app": "rl",
        "owner": "ops",
    }

    # A tag-only change is an in-place update too.
    cfn.update_stack(StackName="gated-serving", TemplateBody=endpoint_template("v2", "job-2b"))
    assert settled_stack(local_emulator, "gated-serving")["StackStatus"] == "UPDATE_COMPLETE"
    assert tags_of(local_emulator, gated_endpoint)[TRAINING_JOB_TAG] == "job-2b"
    assert serving(local_emulator) == (config_2, "v2")


# --- the gate's states in Step Functions --------------------------------------------------------


def gate_definition(function_arn: str, endpoint_arn: str) -> dict[str, Any]:
    return {
        "StartAt": "Gate",
        "States": {
            "Gate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": function_arn,
                    "Payload": {"Score.$": "$.score", "Threshold": 100, "Job.$": "$.job"},
                },
                "ResultSelector": {
                    "Verdict.$": "$.Payload.Verdict",
                    "Message.$": "$.Payload.Message",
                },
                "ResultPath": "$.Gate",
                "Next": "Settle",
            },
            "Settle": {"Type": "Wait", "Seconds": 1, "Next": "Passed?"},
            "Passed?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.Gate.Verdict", "StringEquals": "passed", "Next": "Promote"}
                ],
                "Default": "Rejected",
            },
            "Rejected": {
                "Type": "Fail",
                "Error": "RewardGateFailed",
                "CausePath": "$.Gate.Message",
            },
            "Promote": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:addTags",
                "Parameters": {
                    "ResourceArn": endpoint_arn,
                    "Tags": [{"Key": TRAINING_JOB_TAG, "Value.$": "$.job"}],
                },
                "ResultPath": "$.Tagged",
                "End": True,
            },
        },
    }


def test_the_gate_workflow_invokes_waits_chooses_fails_and_tags(
    local_emulator: EmulatorProcess, gated_endpoint: str
) -> None:
    function = local_emulator.client("lambda").create_function(
        FunctionName="reward-gate",
        Runtime="python3.12",
        Role=role_arn(local_emulator),
        Handler="index.handler",
        Code={"ZipFile": zip_files({"index.py": GATE})},
        Timeout=30,
    )["FunctionArn"]
    sfn = local_emulator.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="gate-and-promote",
        definition=json.dumps(gate_definition(function, gated_endpoint)),
        roleArn=role_arn(local_emulator),
    )["stateMachineArn"]

    def run(name: str, score: float, job: str) -> dict[str, Any]:
        execution = sfn.start_execution(
            stateMachineArn=machine, name=name, input=json.dumps({"score": score, "job": job})
        )["executionArn"]
        done: dict[str, Any] = wait_until(
            lambda: (
                (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d
            ),
            30,
        )
        return done

    failed = run("gate-fails", 42.5, "job-bad")
    assert failed["status"] == "FAILED"
    assert (failed["error"], failed["cause"]) == ("RewardGateFailed", "score 42.5: failed")
    assert (failed["stopDate"] - failed["startDate"]).total_seconds() >= 1.0  # Wait honoured
    assert tags_of(local_emulator, gated_endpoint)[TRAINING_JOB_TAG] != "job-bad"

    passed = run("gate-passes", 512, "job-good")
    assert passed["status"] == "SUCCEEDED", passed
    output = json.loads(passed["output"])
    assert output["Gate"] == {"Verdict": "passed", "Message": "score 512: passed"}
    assert {"Key": TRAINING_JOB_TAG, "Value": "job-good"} in output["Tagged"]["Tags"]
    assert tags_of(local_emulator, gated_endpoint)[TRAINING_JOB_TAG] == "job-good"
