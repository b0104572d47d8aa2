"""Range checks for ``deploy()``'s serving options, against SageMaker's limits in ``_data``.

Each message names the argument, the value, the range and the README section to read, so that
a value SageMaker would refuse an hour into a deploy stops ``cdk synth`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aws_cdk import Duration, Token

from .._limits import limit
from ..errors import invalid


def serving_range(key: str) -> tuple[int, int]:
    """SageMaker's ``(min, max)`` for ``key`` of the ``serving`` limits."""
    bounds = limit("serving", key)
    return int(bounds["min"]), int(bounds["max"])


def bounded_int(value: object, argument: str, low: int, high: int, see: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(argument, value, f"an integer from {low} to {high} (SageMaker)", see=see)
    return value


def limited_int(value: object, argument: str, key: str, see: str) -> int:
    low, high = serving_range(key)
    return bounded_int(value, argument, low, high, see)


def duration_seconds(value: object, argument: str, key: str, see: str) -> int:
    """A literal ``Duration`` within SageMaker's range for ``key``, in whole seconds."""
    low, high = serving_range(key)
    allowed = f"an aws_cdk.Duration from {low} to {high} seconds (SageMaker)"
    if not isinstance(value, Duration) or Token.is_unresolved(value.to_seconds()):
        raise invalid(argument, value, allowed, see=see)
    amount = value.to_seconds()
    if int(amount) != amount or not low <= amount <= high:
        # A Duration's repr names no amount: show it as a person wrote it.
        raise invalid(argument, _Shown(value.to_human_string()), allowed, see=see)
    return int(amount)


class _Shown(str):
    """A value shown as it is written (no quotes) in an error message."""

    def __repr__(self) -> str:
        return str(self)


def container_environment(value: object, see: str) -> dict[str, str]:
    """``deploy(environment=...)``: the model container's variables, within CreateModel's limits
    (``ContainerDefinition.Environment``, not the training job's)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid("environment", value, "a dict of variable name -> string value", see=see)
    rules = limit("serving", "container_environment")
    if len(value) > rules["max_entries"]:
        raise invalid(
            "environment", f"<{len(value)} entries>", f"at most {rules['max_entries']}", see=see
        )
    pattern = re.compile(rules["key_pattern"])
    for key, item in value.items():
        if not isinstance(key, str) or not pattern.match(key) or len(key) > rules["max_key_length"]:
            raise invalid(
                "environment key",
                key,
                f"a variable name ([a-zA-Z_][a-zA-Z0-9_]*, at most {rules['max_key_length']})",
                see=see,
            )
        if not isinstance(item, str):
            raise invalid(
                f"environment[{key!r}]", item, "a string (convert numbers with str())", see=see
            )
        if len(item) > rules["max_value_length"]:
            raise invalid(
                f"environment[{key!r}]",
                f"<{len(item)} characters>",
                f"at most {rules['max_value_length']} characters",
                see=see,
            )
    return dict(value)
