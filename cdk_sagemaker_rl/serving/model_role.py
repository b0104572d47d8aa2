"""The SageMaker model role: what a hosted model may touch, and nothing else.

SageMaker assumes this role to run the serving container, so it is what a compromised container
could do: read exactly the trained ``model.tar.gz``, pull exactly its image, write its own logs and
metrics, and decrypt the artifact's key when it has one.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from .._iam import acknowledge_wildcard, acknowledge_wildcards
from .._tokens import ACCOUNT_ID, PARTITION, REGION
from ..images import BoundImage


def model_role(
    scope: Construct,
    *,
    model_data_object_arn: str,
    endpoint_name: str,
    image: BoundImage | None,
    model_kms_key: kms.IKey | None,
) -> iam.Role:
    """The role (``Role`` in ``scope``) of a model serving ``model_data_object_arn``.

    ``image`` is the bound serving image; None means an image only known at deploy time (an
    attached job's training image), which may then be pulled from any repository of the region.
    """
    # The endpoint's own log group only: its name is fixed at synth time, so a model role
    # cannot write another endpoint's logs.
    endpoint_log_group = (
        f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/"
        f"{endpoint_name}"
    )
    endpoint_logs = f"{endpoint_log_group}:*"
    attached_repositories = f"arn:{PARTITION}:ecr:{REGION}:*:repository/*"
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="SageMaker model role: reads exactly one model artifact, pulls one image",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadModelArtifact",
            actions=["s3:GetObject"],
            resources=[model_data_object_arn],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="EndpointLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[endpoint_log_group, endpoint_logs],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="EndpointMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
    )
    if image is not None:
        image.grant_pull(role)
    else:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullTrainingImage",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[attached_repositories],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
    if model_kms_key is not None:
        model_kms_key.grant_decrypt(role)
    wildcards = [
        (endpoint_logs, "SageMaker names the streams in the endpoint's log group at run time."),
        (
            "*",
            "cloudwatch:PutMetricData (limited by a namespace condition) and "
            "ecr:GetAuthorizationToken have no resource type.",
        ),
    ]
    if image is None:
        wildcards.append(
            (
                attached_repositories,
                "The image is only known at deploy time (an attached job's training image, an "
                "approved model package version's image); pass deploy(image=...) to pin one.",
            )
        )
    acknowledge_wildcards(role, wildcards)
    return role


def acknowledge_per_run_artifacts(role: iam.IRole, model_data_object_arn: str) -> None:
    """With the serving workflow the artifact is ``<base>-*/output/model.tar.gz``: say why."""
    acknowledge_wildcard(
        role,
        model_data_object_arn,
        "The workflow serves the model of the job it trained; the job's name "
        "(<base>-<timestamp>) is chosen per run.",
    )
