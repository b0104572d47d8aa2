"""Everything one training job needs, built from the shapes users hold (the layered helper).

:func:`training_job_parts` turns a config, an unbound image, the code, an output location (URI or
bucket + prefix) and optional role, keys, checkpoints and network into :class:`TrainingJobParts`:
it binds the image, checks the locations and keys and, when no role is given, creates the
least-privilege execution role for exactly these pieces. The estimator builds its job with it, so
a user's own :class:`~cdk_sagemaker_rl.training.step.RLTrainingStep` gets the same permissions.
"""

from __future__ import annotations

from collections.abc import Sequence
from inspect import signature
from typing import Any, cast

from aws_cdk import Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .._kms import kms_key
from .._limits import limits
from .._naming import job_name_base as claim_job_name_base
from .._s3 import s3_location
from ..distributed.ray_cluster import LAUNCHER_NAME, RayCluster, launcher_files, ray_cluster
from ..errors import invalid
from ..images import BoundImage, ContainerImage
from ..source import TrainingSource
from .config import TrainingConfig
from .execution_role import create_execution_role, grant_training, imported_role
from .network import training_network
from .request import TrainingJobParts


def training_job_parts(
    scope: Construct,
    *,
    config: TrainingConfig,
    image: ContainerImage,
    source: TrainingSource,
    output_path: str | s3.IBucket,
    output_prefix: str | None = None,
    job_name_base: str | None = None,
    role: str | iam.IRole | None = None,
    output_kms_key: str | kms.IKey | None = None,
    checkpoint_s3_uri: str | s3.IBucket | None = None,
    checkpoint_prefix: str | None = None,
    vpc: ec2.IVpc | None = None,
    vpc_subnets: ec2.SubnetSelection | None = None,
    security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    subnets: Sequence[str] | None = None,
    security_group_ids: Sequence[str] | None = None,
    job_name_argument: str = "job_name_base",
    distribution: RayCluster | None = None,
) -> TrainingJobParts:
    """The parts of one job; constructs (role ``ExecutionRole``, ``SecurityGroup``) go in ``scope``.

    ``job_name_base`` defaults to one unique to ``scope`` (see README.md#isolation); the created
    role may write the logs of jobs named ``<base>-*`` only. With a Ray 2 image or
    ``distribution``, the job starts through the Ray launcher, which ``source`` must carry
    (:func:`job_source`; README.md#distributed-rl).
    """
    if not isinstance(image, ContainerImage):
        raise invalid(
            "image", image, "a ContainerImage (ContainerImage.rl(...), from_uri(...), ...)"
        )
    if not isinstance(source, TrainingSource):
        raise invalid("source", source, "a TrainingSource")
    base = claim_job_name_base(scope, job_name_base, job_name_argument)
    cluster = ray_cluster(
        image,
        distribution,
        instance_groups=[group.instance_group_name for group in config.instance_groups],
        environment=config.environment,
        network_isolation=config.enable_network_isolation,
    )
    if cluster is not None and LAUNCHER_NAME not in source.members:
        raise invalid(
            "source",
            source.node.path,
            f"a TrainingSource that carries the Ray launcher ({LAUNCHER_NAME}): build it with "
            "job_source(...) or extra_files=launcher_files(image)",
            see="README.md#distributed-rl",
        )
    bound = bind_image(scope, image, config)
    output = s3_location(output_path, output_prefix, "output_path")
    if output is None:
        raise invalid("output_path", None, "an s3://bucket[/prefix] URI or an s3.IBucket")
    output_key = kms_key(scope, output_kms_key, "output_kms_key")
    checkpoint = s3_location(checkpoint_s3_uri, checkpoint_prefix, "checkpoint_s3_uri")
    if config.checkpoint_local_path is not None and checkpoint is None:
        raise invalid(
            "checkpoint_local_path",
            config.checkpoint_local_path,
            "None unless checkpoint_s3_uri is given",
        )
    network = training_network(
        scope,
        vpc=vpc,
        vpc_subnets=vpc_subnets,
        security_groups=security_groups,
        subnets=subnets,
        security_group_ids=security_group_ids,
        instance_count=config.instance_count,
    )
    execution_role = imported_role(scope, "ExecutionRole", role)
    if execution_role is None:
        created = create_execution_role(scope, "ExecutionRole")
        grant_training(
            created,
            job_name_base=base,
            source=source,
            output=output,
            image=bound,
            keys=[output_key.key if output_key else None],
            key_arns=(
                [output_key.key_arn]
                if output_key and output_key.key is None and output_key.key_arn
                else []
            ),
            checkpoint=checkpoint,
            network=network,
        )
        execution_role = created
    region = Stack.of(scope).region
    # As the SDK: Debugger and the profiler are on by default where SageMaker offers them.
    # An environment-agnostic stack cannot know; it sends the default configuration.
    supported = (
        Token.is_unresolved(region) or region not in limits()["debugger_unsupported_regions"]
    )
    return TrainingJobParts(
        config=config,
        image=bound,
        role=execution_role,
        source=source,
        output=output,
        output_kms_key=output_key,
        checkpoint=checkpoint,
        network=network,
        debugger_supported=supported,
        job_name_base=base,
        ray_cluster=cluster,
    )


def job_source(
    scope: Construct,
    construct_id: str,
    *,
    image: ContainerImage,
    config: TrainingConfig,
    entry_point: str,
    source_dir: str | None = None,
    dependencies: Sequence[str] | None = None,
    distribution: RayCluster | None = None,
) -> TrainingSource:
    """The job's code: the user's files, plus the Ray launcher (and the image's Ray in the
    requirements) when the job starts through it. Checked again by :func:`training_job_parts`,
    with the bound job; here it decides what the bundle holds."""
    cluster = ray_cluster(
        image,
        distribution,
        instance_groups=[g.instance_group_name for g in config.instance_groups],
        environment=config.environment,
        network_isolation=config.enable_network_isolation,
    )
    return TrainingSource(
        scope,
        construct_id,
        entry_point=entry_point,
        source_dir=source_dir,
        dependencies=dependencies,
        extra_files=launcher_files(image) if cluster is not None else None,
    )


def bind_image(scope: Construct, image: ContainerImage, config: TrainingConfig) -> BoundImage:
    """The image for the job's instances: with groups, each group's type is passed on (the
    first stands for the job); ``instance_groups`` only when there are groups and the image takes
    them, so images written before groups existed bind as before."""
    if not config.instance_groups or "instance_groups" not in signature(image.bind).parameters:
        return image.bind(scope, instance_type=config.instance_type)
    groups = {g.instance_group_name: g.instance_type for g in config.instance_groups}
    bind: Any = image.bind
    return cast(BoundImage, bind(scope, instance_type=config.instance_type, instance_groups=groups))
