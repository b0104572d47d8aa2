"""An image resolved for one stack and one instance type, and the pull grant it implies."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam

from .toolkits import Processor, RLFramework, RLToolkit

_ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
)


@dataclass(frozen=True)
class BoundImage:
    """An image resolved for one stack and one instance type.

    ``image_uri`` and the entries of ``repository_arns`` may be CDK tokens (an
    environment-agnostic stack, an asset, an imported repository).
    """

    image_uri: str
    repository_arns: tuple[str, ...]
    is_custom: bool
    """True for images the user brought; the SDK gives those no default metric definitions."""
    toolkit: RLToolkit | None = None
    toolkit_version: str | None = None
    framework: RLFramework | None = None
    framework_version: str | None = None
    processor: Processor | None = None
    """None when unknown (a custom image that does not declare ``processors=``). With instance
    groups, the one variant that every group runs (see ``groups.processor_for_groups``)."""
    ray_version: str | None = None
    """The Ray release of a maintained catalogue entry, which the image itself does not contain:
    the training code must install ``ray_requirement`` and start Ray on every host."""
    ray_requirement: str | None = None
    """The pip requirement for ``ray_version`` (``ray[rllib]==2.60.0``); None otherwise."""

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant | None:
        """Allow ``grantee`` (the SageMaker execution role) to pull this image.

        Pull actions are scoped to the image's repositories; ``ecr:GetAuthorizationToken`` has no
        resource-level permissions, so AWS requires ``*`` for it. Returns None when the image is
        not in ECR (nothing to grant).
        """
        if not self.repository_arns:
            return None
        pull = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(_ECR_PULL_ACTIONS),
            resource_arns=list(self.repository_arns),
        )
        token = iam.Grant.add_to_principal(
            grantee=grantee, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"]
        )
        return pull.combine(token)
