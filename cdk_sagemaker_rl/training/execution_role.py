"""The role a training job runs as: what SageMaker needs for one estimator's jobs, and no more.

A role the user passes (name, ARN or ``IRole``) is used as it is; one we create may read exactly
the source archive, write under the output prefix, write the logs of its own jobs and pull its
image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from .._arns import training_log_group, training_log_group_streams, training_log_streams
from .._iam import acknowledge_wildcards
from .._s3 import S3Location, parse_s3_uri
from .._tokens import is_token_string
from ..errors import invalid
from ..images import BoundImage
from ..source import TrainingSource
from .network import TrainingNetwork


def imported_role(scope: Construct, construct_id: str, role: object) -> iam.IRole | None:
    """The user's role (used as is: we attach no policy to it), or None to create one."""
    if role is None:
        return None
    if isinstance(role, str):
        if is_token_string(role) or role.startswith("arn:"):
            return iam.Role.from_role_arn(scope, construct_id, role, mutable=False)
        if not re.match(r"^[\w+=,.@-]{1,64}$", role):
            raise invalid("role", role, "an IAM role name, a role ARN or an iam.IRole")
        return iam.Role.from_role_name(scope, construct_id, role)
    if hasattr(role, "role_arn") and hasattr(role, "grant_principal"):
        return role  # type: ignore[return-value]
    raise invalid("role", role, "an IAM role name, a role ARN or an iam.IRole")


def create_execution_role(scope: Construct, construct_id: str) -> iam.Role:
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="SageMaker execution role for RL training jobs (least privilege)",
    )


def grant_training(
    role: iam.Role,
    *,
    job_name_base: str,
    source: TrainingSource,
    output: S3Location,
    image: BoundImage,
    keys: Sequence[kms.IKey | None] = (),
    key_arns: Sequence[str] = (),
    checkpoint: S3Location | None = None,
    network: TrainingNetwork | None = None,
) -> None:
    stack = role.stack
    statements = [
        iam.PolicyStatement(
            sid="ReadSourceCode", actions=["s3:GetObject"], resources=[source.object_arn]
        ),
        iam.PolicyStatement(
            sid="WriteArtifacts",
            actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            resources=[output.objects_arn()],
        ),
        iam.PolicyStatement(
            sid="ListArtifacts", actions=["s3:ListBucket"], resources=[output.bucket_arn]
        ),
        iam.PolicyStatement(
            sid="TrainingLogStreams",
            actions=["logs:CreateLogStream", "logs:DescribeLogStreams"],
            resources=[training_log_group_streams(stack)],
        ),
        iam.PolicyStatement(
            # Only the streams of this estimator's jobs (<job name>/algo-...).
            sid="TrainingLogs",
            actions=["logs:PutLogEvents"],
            resources=[training_log_streams(stack, job_name_base)],
        ),
        iam.PolicyStatement(
            sid="TrainingLogGroup",
            actions=["logs:CreateLogGroup"],
            resources=[training_log_group(stack)],
        ),
        iam.PolicyStatement(
            sid="TrainingMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        ),
    ]
    if checkpoint is not None:
        statements.append(
            iam.PolicyStatement(
                sid="Checkpoints",
                actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                resources=[checkpoint.objects_arn()],
            )
        )
        statements.append(
            iam.PolicyStatement(
                sid="ListCheckpoints", actions=["s3:ListBucket"], resources=[checkpoint.bucket_arn]
            )
        )
    for statement in statements:
        role.add_to_policy(statement)
    if network is not None:
        network.grant(role)
    # Named actions only (grant_encrypt_decrypt would add kms:ReEncrypt* / GenerateDataKey*).
    seen: list[kms.IKey] = []
    for key in [*keys, output.encryption_key, checkpoint.encryption_key if checkpoint else None]:
        if key is not None and not any(key is other for other in seen):
            seen.append(key)
            key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
    for arn in key_arns:
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[arn])
        )
    image.grant_pull(role)
    wildcards = [
        (
            output.objects_arn(),
            "SageMaker writes <output path>/<job name>/output/... with a job name chosen per run.",
        ),
        (
            training_log_group_streams(stack),
            "SageMaker creates and lists its job's log streams in /aws/sagemaker/TrainingJobs; "
            "writing is limited to this estimator's streams.",
        ),
        (
            training_log_streams(stack, job_name_base),
            "SageMaker names the job's log streams <job name>/algo-<n>-<epoch> at run time.",
        ),
        (
            "*",
            "cloudwatch:PutMetricData (limited by a namespace condition) and "
            "ecr:GetAuthorizationToken have no resource type.",
        ),
    ]
    if checkpoint is not None:
        wildcards.append(
            (
                checkpoint.objects_arn(),
                "SageMaker syncs checkpoint files it names under the checkpoint prefix.",
            )
        )
    acknowledge_wildcards(role, wildcards, stack=stack)


def grant_inputs(role: iam.IRole, channels: Mapping[str, str]) -> None:
    """Read access to the ``fit()`` channels, on a role we created (a user's role is theirs)."""
    if not isinstance(role, iam.Role):
        return
    for name, uri in channels.items():
        location = parse_s3_uri(uri, f"inputs[{name!r}]")
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[location.objects_arn()])
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[location.bucket_arn])
        )
