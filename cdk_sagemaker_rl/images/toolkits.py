"""What an RL image is made of: toolkit, framework and the processor variant an instance needs.

Users port code from the SDK, where these were different classes, and from config files, where
they are strings; the enums accept both so that no import dance is needed.
"""

from __future__ import annotations

import re
from enum import Enum, StrEnum
from typing import Self

from .._tokens import is_token_string
from ..errors import invalid

IMAGES_REFERENCE = "README.md#container-images"
"""Where the user-facing documentation of image selection lives (used in error messages)."""


class _ParsableEnum(StrEnum):
    """A string enum that also accepts its values as plain, case-insensitive strings.

    Users port code from the SDK, where ``RLToolkit.COACH`` was a different class, and from config
    files, where the value is a string; both should work without an import dance. Members are
    ``str`` instances equal to their values, so they drop into templates and f-strings as is.
    """

    @classmethod
    def parse(cls, value: object, argument_name: str) -> Self:
        """Return the member for ``value`` or raise a ValidationError naming the allowed values.

        Accepts a member of this enum, any other enum whose value is one of ours (the SDK's
        ``sagemaker.rl.RLToolkit.COACH`` for example), or a string matching a value or a member
        name in any case.
        """
        if isinstance(value, cls):
            return value
        raw: object = value.value if isinstance(value, Enum) else value
        if isinstance(raw, str):
            wanted = raw.strip().lower()
            for member in cls:
                if wanted in (member.value, member.name.lower()):
                    return member
        raise invalid(argument_name, value, [m.value for m in cls], see=IMAGES_REFERENCE)


class RLToolkit(_ParsableEnum):
    """The RL toolkits SageMaker published training images for."""

    COACH = "coach"
    RAY = "ray"
    VW = "vw"


class RLFramework(_ParsableEnum):
    """The deep-learning framework an RL image carries (Vowpal Wabbit images carry none)."""

    TENSORFLOW = "tensorflow"
    MXNET = "mxnet"
    PYTORCH = "pytorch"


_INSTANCE_TYPE_RE = re.compile(r"^ml\.(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9-]+)$")
# Arm hosts: Graviton families (c6g, c6gn, m7g, r8g; not g4dn) and Grace GPUs (p6e-gb200).
ARM_FAMILY_RE = re.compile(r"^[a-z]+\d+g[a-z]*$|-gb\d+$")


class Processor(_ParsableEnum):
    """Which image variant an instance type needs; SageMaker images are built per processor."""

    CPU = "cpu"
    GPU = "gpu"

    @classmethod
    def for_instance_type(
        cls, instance_type: str, argument_name: str = "instance_type"
    ) -> Processor:
        """GPU for instance families starting with ``g`` or ``p`` (``ml.p3.2xlarge``), else CPU.

        This is the SDK's rule, including its local-mode names (``local`` is CPU, ``local_gpu``
        GPU), so that an image chosen here is the one the SDK would have chosen.
        """
        if not isinstance(instance_type, str) or is_token_string(instance_type):
            raise invalid(
                argument_name,
                instance_type,
                "a concrete SageMaker instance type such as ml.c5.xlarge (the processor variant "
                "of a SageMaker-provided image is chosen at synth time, so it cannot be a token; "
                "use ContainerImage.from_uri for a deploy-time image)",
                see=IMAGES_REFERENCE,
            )
        if instance_type == "local":
            return cls.CPU
        if instance_type == "local_gpu":
            return cls.GPU
        match = _INSTANCE_TYPE_RE.match(instance_type)
        if match is None:
            raise invalid(
                argument_name,
                instance_type,
                "an instance type of the form ml.<family>.<size>, e.g. ml.c5.xlarge or "
                "ml.p3.2xlarge (or local / local_gpu)",
                see="https://aws.amazon.com/sagemaker/pricing/",
            )
        return cls.GPU if match["family"][0] in ("g", "p") else cls.CPU


def instance_family(instance_type: str) -> str:
    match = _INSTANCE_TYPE_RE.match(instance_type)
    return match["family"] if match else ""


def processor_for(
    label: str,
    processors: tuple[Processor, ...],
    instance_type: str,
    *,
    argument: str = "instance_type",
) -> Processor:
    """The processor variant of a SageMaker-provided image that ``instance_type`` runs; an
    instance it cannot run on (Neuron, Arm, a missing variant) is refused at synth, the error
    naming ``argument`` (an instance group's, when the job has several)."""
    processor = Processor.for_instance_type(instance_type, argument)
    family = instance_family(instance_type)
    if family.startswith(("inf", "trn")):
        raise invalid(
            argument,
            instance_type,
            f"a CPU or GPU instance type: {label} has no AWS Neuron (Inferentia/"
            "Trainium) variant; use ContainerImage.from_uri with a Neuron image instead",
            see=IMAGES_REFERENCE,
        )
    if ARM_FAMILY_RE.search(family):
        raise invalid(
            argument,
            instance_type,
            f"an x86 instance type: {label} is built for x86 only and this "
            "instance type is an Arm (Graviton/Grace) host; use ContainerImage.from_uri with "
            "an arm64 image, or from_asset, which builds for the instance's platform",
            see=IMAGES_REFERENCE,
        )
    if processor not in processors:
        kinds = " or ".join(p.value.upper() for p in processors)
        raise invalid(
            argument,
            instance_type,
            f"a {kinds} instance type: {label} is published for "
            f"{', '.join(p.value for p in processors)} only "
            "(GPU instance families start with g or p)",
            see=IMAGES_REFERENCE,
        )
    return processor
