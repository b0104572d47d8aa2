"""``Custom::RLServingCleanup``: on stack deletion, delete what the serving workflow created.

CloudFormation does not know the endpoint, models and endpoint configs that the TrainAndServe
workflow creates after the deploy, so without this they would outlive the stack (and keep billing
for the endpoint's instances). The function deletes only models and configs that carry the
endpoint's tag, so a name prefix shared with another stack cannot make it delete theirs.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from .._functions import bundled_function
from .._iam import acknowledge_wildcards
from .tags import SERVING_TAG_KEY


def serving_cleanup(
    scope: Construct,
    *,
    endpoint_name: str,
    endpoint_arn: str,
    model_arns: str,
    endpoint_config_arns: str,
    name_base: str,
) -> CustomResource:
    """The cleanup function (``CleanupFunction``) and its custom resource (``Cleanup``) in
    ``scope``; ``model_arns`` / ``endpoint_config_arns`` are the ``<base>-*`` ARNs."""
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
    acknowledge_wildcards(
        function.role,  # type: ignore[arg-type]
        [
            (model_arns, deletes),
            (endpoint_config_arns, deletes),
            (
                "*",
                "sagemaker:ListModels and ListEndpointConfigs have no resource type; X-Ray "
                "tracing has none either.",
            ),
        ],
        stack=function.stack,
    )
    return CustomResource(
        scope,
        "Cleanup",
        service_token=function.function_arn,
        resource_type="Custom::RLServingCleanup",
        properties={
            "EndpointName": endpoint_name,
            "NamePrefix": f"{name_base}-",
            "TagKey": SERVING_TAG_KEY,
        },
    )
