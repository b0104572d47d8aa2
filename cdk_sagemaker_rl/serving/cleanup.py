"""``Custom::RLServingCleanup``: on stack deletion, delete what the serving workflow created.

CloudFormation does not know the endpoint, models and endpoint configs that the TrainAndServe
workflow creates after the deploy, so without this they would outlive the stack (and keep billing
for the endpoint's instances). The function deletes only models and configs that carry the
endpoint's tag, so a name prefix shared with another stack cannot make it delete theirs.

Nor does it know the workflow's Application Auto Scaling registration of the variant: left
behind, it would scale a later endpoint of the same name. With autoscaling the function
deregisters it first (see :class:`ScalableTargetCleanup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .._functions import bundled_function
from .._iam import acknowledge_wildcards
from .tags import SERVING_TAG_KEY


@dataclass(frozen=True)
class ScalableTargetCleanup:
    """What deregistering the workflow's scalable target takes: the target, and the resources
    Application Auto Scaling checks the caller's permissions on when it deregisters it."""

    #: ``ServiceNamespace``, ``ResourceId`` and ``ScalableDimension`` of the registered target.
    target: Mapping[str, str]
    #: ``arn:...:scalable-target/*``: a target's ARN ends with an id Application Auto Scaling
    #: generates, so no narrower ARN can be known at synth time.
    scalable_targets_arn: str
    #: ``arn:...:alarm:TargetTracking-endpoint/<endpoint>/variant/<variant>-*``: target tracking's
    #: alarms, which deregistration deletes with the caller's CloudWatch permissions.
    alarms_arn: str

    def properties(self) -> dict[str, str]:
        """The custom resource properties the handler reads (see workflow_cleanup.py)."""
        return {
            "ScalableTargetNamespace": self.target["ServiceNamespace"],
            "ScalableTargetResourceId": self.target["ResourceId"],
            "ScalableTargetDimension": self.target["ScalableDimension"],
        }


def serving_cleanup(
    scope: Construct,
    *,
    endpoint_name: str,
    endpoint_arn: str,
    model_arns: str,
    endpoint_config_arns: str,
    name_base: str,
    scalable_target: ScalableTargetCleanup | None = None,
) -> CustomResource:
    """The cleanup function (``CleanupFunction``) and its custom resource (``Cleanup``) in
    ``scope``; ``model_arns`` / ``endpoint_config_arns`` are the ``<base>-*`` ARNs;
    ``scalable_target`` only when the workflow registers the variant for autoscaling."""
    function = bundled_function(
        scope,
        "CleanupFunction",
        folder="custom_resources",
        handler="workflow_cleanup.on_event",
        description="Deletes the endpoint, endpoint configs and models an RL serving "
        "workflow created, when its stack is deleted",
        # Waiting for an endpoint that is still being created can take minutes.
        timeout=Duration.minutes(15),
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="DeleteEndpoint",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint"],
            resources=[endpoint_arn],
        )
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="DeleteTaggedModels",
            actions=["sagemaker:ListTags", "sagemaker:DeleteModel"],
            resources=[model_arns],
        )
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="DeleteTaggedEndpointConfigs",
            actions=["sagemaker:ListTags", "sagemaker:DeleteEndpointConfig"],
            resources=[endpoint_config_arns],
        )
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="FindCandidates",
            actions=["sagemaker:ListModels", "sagemaker:ListEndpointConfigs"],
            resources=["*"],
        )
    )
    deletes = (
        "Deletes the models/endpoint configs the workflow created (<base>-<timestamp>, "
        "tagged with the endpoint name); the tag is checked before each deletion."
    )
    wildcards = [
        (model_arns, deletes),
        (endpoint_config_arns, deletes),
        (
            "*",
            "sagemaker:ListModels and ListEndpointConfigs have no resource type; X-Ray "
            "tracing has none either.",
        ),
    ]
    properties = {
        "EndpointName": endpoint_name,
        "NamePrefix": f"{name_base}-",
        "TagKey": SERVING_TAG_KEY,
    }
    if scalable_target is not None:
        _grant_deregistration(function, scalable_target)
        wildcards += [
            (
                scalable_target.scalable_targets_arn,
                "Application Auto Scaling names a scalable target by a generated id; the "
                "request names this endpoint's variant as the resource id.",
            ),
            (
                scalable_target.alarms_arn,
                "Target tracking names its alarms after the variant with a generated suffix; "
                "deregistering the target deletes them with the caller's permissions.",
            ),
        ]
        properties.update(scalable_target.properties())
    acknowledge_wildcards(
        function.role,  # type: ignore[arg-type]
        wildcards,
        stack=function.stack,
    )
    return CustomResource(
        scope,
        "Cleanup",
        service_token=function.function_arn,
        resource_type="Custom::RLServingCleanup",
        properties=properties,
    )


def _grant_deregistration(
    function: lambda_.Function, scalable_target: ScalableTargetCleanup
) -> None:
    """DeregisterScalableTarget, and what Application Auto Scaling requires of its caller to
    delete the target-tracking alarms with it (it validates the caller's CloudWatch
    permissions on the alarms it manages)."""
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="DeregisterScalableTarget",
            actions=["application-autoscaling:DeregisterScalableTarget"],
            resources=[scalable_target.scalable_targets_arn],
        )
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid="DeleteTargetTrackingAlarms",
            actions=["cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            resources=[scalable_target.alarms_arn],
        )
    )
