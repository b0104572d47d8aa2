"""Checks of the training arguments: each turns one user value into what the request sends.

Every function raises :class:`~cdk_sagemaker_rl.errors.ValidationError` naming the argument, the
value and what is allowed, so that a request SageMaker would refuse fails at synth, not an hour
into a deploy. The limits come from ``_data/limits.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration, Size, Token

from .._limits import limit, limits
from ..errors import ValidationError, invalid

# fit()'s channels have their own module; the name stays importable from here, where it was.
from .inputs import channels as channels

#: Hyperparameters the SDK injects and this library injects likewise; users may not set them.
INJECTED_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
    "sagemaker_s3_output",
    "sagemaker_estimator",
)


def pick(
    seed_name: str, seed_value: Any, sdk_name: str, sdk_value: Any, default: Any = None
) -> Any:
    """Accept the seed's argument name and the SDK v2 alias, but never both at once."""
    if seed_value is not None and sdk_value is not None:
        raise ValidationError(
            f"{seed_name}={seed_value!r} and {sdk_name}={sdk_value!r} name the same argument; "
            f"give only one of them ({sdk_name} is the SageMaker SDK v2 alias of {seed_name}). "
            "See README.md#argument-reference."
        )
    if seed_value is not None:
        return seed_value
    return sdk_value if sdk_value is not None else default


def integer(value: object, argument: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        allowed = f"an integer from {low} to {high}" if high else f"an integer >= {low}"
        raise invalid(argument, value, allowed)
    if high is not None and value > high:
        raise invalid(argument, value, f"an integer from {low} to {high}")
    return value


def boolean(value: object, argument: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(argument, value, "True or False")
    return value


def seconds(value: int | float | Duration | None, argument: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, Duration):
        if Token.is_unresolved(value.to_seconds()):
            raise invalid(argument, value, "a literal duration")
        amount = value.to_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(argument, value, "seconds as an int, or an aws_cdk.Duration")
    else:
        amount = value
    if int(amount) != amount:
        raise invalid(argument, value, "a whole number of seconds")
    return int(amount)


def volume_gb(value: int | Size | None, default: int) -> int:
    if value is None:
        return default
    low, high = limit("volume_size_gb", "min"), limit("volume_size_gb", "max")
    if isinstance(value, Size):
        gb = value.to_gibibytes()
    elif isinstance(value, bool) or not isinstance(value, int):
        raise invalid("train_volume_size", value, "an int number of GB or an aws_cdk.Size")
    else:
        gb = value
    if int(gb) != gb or not low <= gb <= high:
        raise invalid(
            "train_volume_size", value, f"a whole number of GB from {low} to {high} (SageMaker)"
        )
    return int(gb)


def encode_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """JSON-encode every value as the SDK does: keys through ``str``, values through ``json.dumps``.

    The training toolkit inside the container JSON-decodes them again, so ``1`` arrives as an int
    and ``"x"`` as a string; sending raw strings would change what a training script receives.
    """
    return {str(key): json.dumps(value) for key, value in hyperparameters.items()}


def hyperparameters(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid("hyperparameters", value, "a dict of name -> JSON-serialisable value")
    most = limit("hyperparameters", "max_entries") - len(INJECTED_HYPERPARAMETERS)
    if len(value) > most:
        raise invalid(
            "hyperparameters",
            f"<{len(value)} entries>",
            f"at most {most} entries (SageMaker takes 100, the estimator injects "
            f"{len(INJECTED_HYPERPARAMETERS)})",
        )
    longest_key = limit("hyperparameters", "max_key_length")
    longest_value = limit("hyperparameters", "max_value_length")
    for key, item in value.items():
        name = f"hyperparameters[{key!r}]"
        if str(key) in INJECTED_HYPERPARAMETERS:
            raise invalid(
                name,
                item,
                "any key except the ones the estimator injects: "
                + ", ".join(INJECTED_HYPERPARAMETERS),
            )
        if len(str(key)) > longest_key:
            raise invalid("hyperparameters key", key, f"at most {longest_key} characters")
        try:
            encoded = json.dumps(item)
        except (TypeError, ValueError):
            raise invalid(
                name, item, "a JSON-serialisable value (str, int, float, bool, None, list, dict)"
            ) from None
        if len(encoded) > longest_value and not Token.is_unresolved(encoded):
            raise invalid(
                name,
                f"<{len(encoded)} characters>",
                f"a value of at most {longest_value} characters once JSON-encoded (SageMaker)",
            )
    return dict(value)


def environment(value: Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid("environment", value, "a dict of variable name -> string value")
    most = limit("environment", "max_entries")
    if len(value) > most:
        raise invalid("environment", f"<{len(value)} entries>", f"at most {most} variables")
    pattern = re.compile(limit("environment", "key_pattern"))
    longest = limit("environment", "max_value_length")
    for key, item in value.items():
        if not isinstance(key, str) or not pattern.match(key):
            raise invalid("environment key", key, "a variable name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if not isinstance(item, str):
            raise invalid(f"environment[{key!r}]", item, "a string (convert numbers with str())")
        if len(item) > longest and not Token.is_unresolved(item):
            raise invalid(f"environment[{key!r}]", item, f"at most {longest} characters")
    return dict(value)


def metric_definitions(value: Sequence[Mapping[str, str]] | None) -> list[dict[str, str]] | None:
    """None when not given (the toolkit's defaults apply), else the checked definitions."""
    if value is None:
        return None
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise invalid("metric_definitions", value, "a list of {'Name': ..., 'Regex': ...} dicts")
    most = limit("metric_definitions", "max_entries")
    if len(value) > most:
        raise invalid("metric_definitions", f"<{len(value)} entries>", f"at most {most}")
    result = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"Name", "Regex"}:
            raise invalid("metric_definitions", item, "a list of {'Name': ..., 'Regex': ...} dicts")
        name, regex = str(item["Name"]), str(item["Regex"])
        if not 1 <= len(name) <= limit("metric_definitions", "max_name_length"):
            raise invalid("metric_definitions Name", name, "1 to 255 characters")
        if not 1 <= len(regex) <= limit("metric_definitions", "max_regex_length"):
            raise invalid("metric_definitions Regex", regex, "1 to 500 characters")
        try:
            re.compile(regex)
        except re.error as error:
            raise invalid(
                f"metric_definitions[{name!r}] Regex",
                regex,
                f"a valid regular expression with a capture group ({error})",
            ) from None
        result.append({"Name": name, "Regex": regex})
    return result


def tags(value: Mapping[str, str] | Sequence[Mapping[str, str]] | None) -> list[dict[str, str]]:
    if value is None:
        return []
    allowed = "a dict of key -> value, or [{'Key': ..., 'Value': ...}]"
    if isinstance(value, Mapping):
        pairs = [(k, v) for k, v in value.items()]
    elif isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise invalid("tags", value, allowed)
    else:
        pairs = []
        for tag in value:
            if not isinstance(tag, Mapping) or set(tag) != {"Key", "Value"}:
                raise invalid("tags", tag, allowed)
            pairs.append((tag["Key"], tag["Value"]))
    most = limit("tags", "max_entries")
    if len(pairs) > most:
        raise invalid("tags", f"<{len(pairs)} tags>", f"at most {most} tags (SageMaker)")
    return [check_tag(str(k), str(v), "tags") for k, v in pairs]


def check_tag(key: str, value: str, argument: str) -> dict[str, str]:
    """One SageMaker tag: the key 1-128 characters and not ``aws:``-prefixed, the value <= 256."""
    rules = limits()["tags"]
    if Token.is_unresolved(key) or Token.is_unresolved(value):
        return {"Key": key, "Value": value}
    if not 1 <= len(key) <= rules["max_key_length"]:
        raise invalid(f"{argument} key", key, "1 to 128 characters")
    if key.lower().startswith(rules["reserved_key_prefix"]):
        raise invalid(f"{argument} key", key, "a key not starting with 'aws:' (reserved by AWS)")
    if len(value) > rules["max_value_length"]:
        raise invalid(f"{argument}[{key!r}]", value, "a value of at most 256 characters")
    return {"Key": key, "Value": value}
