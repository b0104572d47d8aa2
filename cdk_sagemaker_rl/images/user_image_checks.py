"""Checks of the images users bring (a URI, an ECR repository, a Dockerfile directory).

Each turns a mistake that would otherwise surface when SageMaker pulls the image, an hour into a
deploy, into a synth-time ValidationError naming the value and what is allowed.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Token
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from .._tokens import is_token_string
from ..errors import invalid
from .ecr_uri import DIGEST_RE, TAG_RE
from .toolkits import ARM_FAMILY_RE, IMAGES_REFERENCE, instance_family


def check_image_uri(uri: object) -> str:
    """The SDK's ``image_uri``: a registry path, checked where it can be (not a token)."""
    if not isinstance(uri, str) or not uri.strip():
        raise invalid("image_uri", uri, "a non-empty image URI", see=IMAGES_REFERENCE)
    if not Token.is_unresolved(uri):
        if uri != uri.strip() or any(c.isspace() for c in uri):
            raise invalid("image_uri", uri, "an image URI without whitespace", see=IMAGES_REFERENCE)
        if "://" in uri:
            raise invalid(
                "image_uri",
                uri,
                "a registry path such as 123456789012.dkr.ecr.us-west-2.amazonaws.com/repo:tag "
                "(an image reference has no URL scheme)",
                see=IMAGES_REFERENCE,
            )
    return uri


def check_repository_and_tag(repository: object, tag: object) -> None:
    """An ``ecr.IRepository`` and a tag or ``sha256:`` digest."""
    if not all(hasattr(repository, a) for a in ("repository_uri_for_tag", "repository_arn")):
        raise invalid(
            "repository",
            repository,
            "an aws_ecr.IRepository (ecr.Repository or Repository.from_repository_name(...))",
            see=IMAGES_REFERENCE,
        )
    if not isinstance(tag, str) or not (
        Token.is_unresolved(tag) or TAG_RE.match(tag) or DIGEST_RE.match(tag)
    ):
        raise invalid(
            "tag",
            tag,
            "an image tag of up to 128 letters, digits and _.- (not starting with . or -) "
            "or a digest sha256:<64 hex digits>",
            see=IMAGES_REFERENCE,
        )


def _asset_option_names() -> frozenset[str]:
    parameters = inspect.signature(ecr_assets.DockerImageAsset.__init__).parameters
    return frozenset(parameters) - {"self", "scope", "id", "directory"}


def check_asset(directory: str | os.PathLike[str], options: Mapping[str, Any]) -> str:
    """A Dockerfile directory and ``DockerImageAsset`` options; returns the absolute path."""
    unknown = sorted(set(options) - _asset_option_names())
    if unknown:
        raise invalid(
            "from_asset option",
            unknown[0],
            sorted(_asset_option_names()),
            see="https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.aws_ecr_assets/DockerImageAsset.html",
        )
    path = Path(directory)
    if not path.is_dir():
        raise invalid(
            "directory",
            str(directory),
            "an existing directory with a Dockerfile",
            see=IMAGES_REFERENCE,
        )
    dockerfile = options.get("file") or "Dockerfile"
    if not (path / dockerfile).is_file():
        raise invalid(
            "directory",
            str(directory),
            f"a directory containing {dockerfile} (not found at {path / dockerfile})",
            see=IMAGES_REFERENCE,
        )
    return str(path.resolve())


def repository_image_uri(repository: ecr.IRepository, tag: str) -> str:
    """The URI of a tag or (``sha256:``) digest of an ECR repository, after checking both."""
    check_repository_and_tag(repository, tag)
    if not is_token_string(tag) and tag.startswith("sha256:"):
        return repository.repository_uri_for_digest(tag)
    return repository.repository_uri_for_tag(tag)


def docker_asset(
    scope: Construct, directory: str, options: Mapping[str, Any]
) -> ecr_assets.DockerImageAsset:
    """A new image asset in ``scope``, under the first free id ``ImageAsset``, ``ImageAsset2``..."""
    construct_id, n = "ImageAsset", 1
    while scope.node.try_find_child(construct_id) is not None:
        n += 1
        construct_id = f"ImageAsset{n}"
    return ecr_assets.DockerImageAsset(scope, construct_id, directory=directory, **options)


def asset_platform(
    options: Mapping[str, Any], instance_type: str, groups: Mapping[str, str] | None = None
) -> ecr_assets.Platform:
    """The user's platform, else the one the instances run: Graviton families are arm64.

    One image runs on every instance group, so groups of both architectures are refused: one
    build would fail on the others with "exec format error" once the job starts.
    """
    explicit: ecr_assets.Platform | None = options.get("platform")
    if explicit is not None:
        return explicit

    def is_arm(instance_type: object) -> bool:
        family = instance_family(instance_type) if isinstance(instance_type, str) else ""
        return bool(ARM_FAMILY_RE.search(family))

    if groups is None:
        arm = is_arm(instance_type)
    else:
        kinds = {name: is_arm(t) for name, t in groups.items()}
        arm = any(kinds.values())
        if arm and not all(kinds.values()):
            x86 = next(name for name, k in kinds.items() if not k)
            raise invalid(
                f"instance_groups[{x86!r}]",
                groups[x86],
                "an Arm (Graviton) instance type like the other groups: one image runs on every "
                "group, and from_asset builds it for one platform (or pass platform= and build "
                "a multi-architecture image yourself)",
                see=IMAGES_REFERENCE,
            )
    return ecr_assets.Platform.LINUX_ARM64 if arm else ecr_assets.Platform.LINUX_AMD64
