"""Synth-time warnings about the state of a chosen image.

The SageMaker RL images still resolve (SDK parity depends on it), but nobody patches them any
more; a user porting SDK code should learn that from ``cdk synth``, where the choice is made,
rather than from a security scan or a failed pull.
"""

from __future__ import annotations

from aws_cdk import Annotations
from constructs import IConstruct

from .catalogue import RLImageSpec, catalogue, version_key
from .toolkits import IMAGES_REFERENCE

UNMAINTAINED_IMAGE = "cdk-sagemaker-rl:unmaintained-image"


def maintained_alternatives() -> str:
    """The maintained entries, as ``toolkit=... toolkit_version=... framework=...``."""
    specs = sorted(
        (s for s in catalogue().rl_images if s.maintained),
        key=lambda s: (s.toolkit.value, version_key(s.toolkit_version)),
    )
    return "; ".join(
        f'toolkit="{s.toolkit.value}", toolkit_version="{s.toolkit_version}", '
        f'framework="{s.framework.value if s.framework else None}" ({s.repository} '
        f"{s.framework_version} + {s.requirement})"
        for s in specs
    )


def unmaintained_message(spec: RLImageSpec, image: str) -> str:
    message = (
        f"{image} is a SageMaker RL image ({spec.toolkit.value} {spec.toolkit_version}), and those "
        "are unmaintained: frozen since the SageMaker Python SDK v3 dropped RLEstimator and "
        "aws/sagemaker-rl-container stopped taking changes (April 2024); they carry Python "
        "3.7 or older and old frameworks and get no security patches. Maintained Ray 2 versions "
        f"run on an AWS Deep Learning Container instead: {maintained_alternatives()}."
    )
    if spec.known_issue:
        message += (
            f" This image is {spec.known_issue}: a training job may fail to pull it, so prefer "
            "your own image (ContainerImage.from_asset with the toolkit installed)."
        )
    return f"{message} See {IMAGES_REFERENCE}."


def warn_if_unmaintained(scope: IConstruct, spec: RLImageSpec, image: str) -> None:
    """One warning per scope and image (CDK drops a repeated identical message)."""
    if not spec.maintained:
        Annotations.of(scope).add_warning_v2(UNMAINTAINED_IMAGE, unmaintained_message(spec, image))
