"""Synth-time checks of SageMaker instance types.

A misspelt instance type is otherwise reported by SageMaker when the training job or endpoint is
created, long after ``cdk deploy`` started. The lists come from botocore's SageMaker API model,
copied into ``_data/instance_types.json`` by ``scripts/refresh_instance_types.py`` so the library
does not need botocore at synth time; a test compares the copy with the installed botocore.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ._tokens import is_token_string
from .errors import invalid

INSTANCE_TYPES_REFERENCE = "https://aws.amazon.com/sagemaker/pricing/"


@dataclass(frozen=True)
class _InstanceTypes:
    botocore_version: str
    training: frozenset[str]
    serving: frozenset[str]


@cache
def _data() -> _InstanceTypes:
    raw = json.loads(
        resources.files("cdk_sagemaker_rl").joinpath("_data/instance_types.json").read_text("utf-8")
    )
    return _InstanceTypes(
        botocore_version=raw["botocore_version"],
        training=frozenset(raw["training"]),
        serving=frozenset(raw["serving"]),
    )


def training_instance_types() -> frozenset[str]:
    """Instance types CreateTrainingJob accepts (botocore ``TrainingInstanceType``)."""
    return _data().training


def serving_instance_types() -> frozenset[str]:
    """Instance types an endpoint variant accepts (botocore ``ProductionVariantInstanceType``)."""
    return _data().serving


def _validate(value: object, argument: str, known: frozenset[str], purpose: str) -> str:
    if isinstance(value, str) and (is_token_string(value) or value in known):
        return value
    example = "ml.c5.xlarge" if "ml.c5.xlarge" in known else min(known)
    allowed = (
        f"a SageMaker {purpose} instance type such as {example} "
        f"({len(known)} known, from botocore {_data().botocore_version})"
    )
    if isinstance(value, str):
        # Compare in lower case and with the ml. prefix so "P3.2XLARGE" still finds its match.
        probe = value.strip().lower()
        if not probe.startswith("ml."):
            probe = "ml." + probe
        close = difflib.get_close_matches(probe, sorted(known), n=3, cutoff=0.75)
        if close:
            allowed += "; closest matches: " + ", ".join(close)
        is_training = known is _data().training
        if value in (_data().serving if is_training else _data().training):
            allowed += f" ({value} exists for {'endpoints' if is_training else 'training'} only)"
    raise invalid(argument, value, allowed, see=INSTANCE_TYPES_REFERENCE)


def validate_training_instance_type(value: str, argument: str = "instance_type") -> str:
    """Return ``value`` if SageMaker training accepts it (tokens pass: they resolve at deploy)."""
    return _validate(value, argument, _data().training, "training")


def validate_serving_instance_type(value: str, argument: str = "instance_type") -> str:
    """Return ``value`` if a SageMaker endpoint accepts it (tokens pass: they resolve at deploy)."""
    return _validate(value, argument, _data().serving, "serving (endpoint)")


__all__ = [
    "serving_instance_types",
    "training_instance_types",
    "validate_serving_instance_type",
    "validate_training_instance_type",
]
