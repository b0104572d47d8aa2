"""The training code as a CDK asset: one ``sourcedir.tar.gz`` that a training job downloads."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property

from aws_cdk import AssetHashType
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from .._tokens import PARTITION
from ..errors import invalid
from .archive import SourceBundle, build_source_bundle
from .extra_files import ExtraFile

StrPath = str | os.PathLike[str]


class TrainingSource(Construct):
    """``entry_point`` + ``source_dir`` + ``dependencies`` packed the SDK's way and published.

    The asset is keyed by the digest of the uncompressed tar, so its S3 key (and every template
    referring to it) is the same on machines whose zlib builds compress differently, and a
    redeploy from another checkout uploads nothing and retrains nothing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entry_point: StrPath | None = None,
        source_dir: StrPath | None = None,
        dependencies: Sequence[StrPath] | None = None,
        base_dir: StrPath | None = None,
        bundle: SourceBundle | None = None,
        extra_files: Sequence[ExtraFile] | None = None,
    ) -> None:
        """The SDK's ``entry_point``/``source_dir``/``dependencies``, or a built ``bundle``.

        ``extra_files`` are files the library adds at the archive root (the Ray launcher:
        :func:`cdk_sagemaker_rl.distributed.launcher_files`); the user's files stay as they are.
        """
        super().__init__(scope, construct_id)
        if bundle is not None and extra_files:
            raise invalid(
                "extra_files",
                extra_files,
                "None with a built bundle (pass them to build_source_bundle instead)",
            )
        if (entry_point is None) == (bundle is None):
            raise invalid(
                "entry_point/bundle",
                {"entry_point": entry_point, "bundle": bundle},
                "exactly one: the entry point to pack, or a SourceBundle already built",
            )
        self.bundle: SourceBundle = bundle or build_source_bundle(
            entry_point,  # type: ignore[arg-type]
            source_dir,
            () if dependencies is None else dependencies,
            base_dir=base_dir,
            extra_files=() if extra_files is None else extra_files,
        )
        # "Default": the asset is this construct's default child, and keeps the id of the
        # construct it replaces.
        self.asset = s3_assets.Asset(
            self,
            "Default",
            path=self.bundle.path,
            asset_hash=self.bundle.tar_sha256,
            asset_hash_type=AssetHashType.CUSTOM,
        )

    @property
    def members(self) -> tuple[str, ...]:
        """The archive's member names, in archive order (what the container finds in
        ``/opt/ml/code``)."""
        return self.bundle.members

    @property
    def entry_point(self) -> str:
        """The ``sagemaker_program`` value: the entry point relative to the archive root."""
        return self.bundle.entry_point

    # Cached: each read of an asset attribute is a round trip to the jsii process.
    @cached_property
    def s3_url(self) -> str:
        """``s3://bucket/key`` of the archive (``sagemaker_submit_directory``)."""
        return self.asset.s3_object_url

    @cached_property
    def object_arn(self) -> str:
        return f"arn:{PARTITION}:s3:::{self.asset.s3_bucket_name}/{self.asset.s3_object_key}"

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """``s3:GetObject`` on exactly this archive (what a SageMaker execution role needs)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:GetObject"], resource_arns=[self.object_arn]
        )
