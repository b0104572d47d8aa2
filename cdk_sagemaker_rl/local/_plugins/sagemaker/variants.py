"""What an endpoint reports about its variants, what an update keeps of them, and what SageMaker
refuses in the requests that set them.

DescribeEndpoint shows each variant's weight and instance count (or serverless config) and the
endpoint's data capture state. These are the endpoint's, not the config's: Application Auto
Scaling changes the count through UpdateEndpointWeightsAndCapacities, and an UpdateEndpoint with
``RetainAllVariantProperties`` keeps what the endpoint has (minus the properties named in
``ExcludeRetainedVariantProperties``) instead of resetting it to the new config's initial values.
That is the rule that lets an autoscaled endpoint survive a retrain, so it is computed here once,
for the API and CloudFormation alike.

moto checks too little in some places (a ``DeploymentConfig`` is not looked at) and too much in
others (its instance type list is years old, so ``ml.g5.xlarge`` is refused): the checks below
are SageMaker's documented ones, so that a template that would fail on AWS fails here as well.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "VARIANT_PROPERTY_TYPES",
    "capture_summary",
    "check_deployment_config",
    "check_instance_type",
    "effective_capture_config",
    "excluded_properties",
    "flag",
    "retained_variants",
    "variant_summaries",
]

#: ``ExcludeRetainedVariantProperties`` names these (``VariantPropertyType``).
VARIANT_PROPERTY_TYPES = ("DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig")

_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")
_TRAFFIC_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
_CAPACITY_TYPES = ("INSTANCE_COUNT", "CAPACITY_PERCENT")


def _invalid(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def flag(value: Any) -> bool:
    """A boolean request field; CloudFormation templates may spell it ``"true"``."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def check_instance_type(instance_type: Any) -> None:
    """Any ``ml.<family>.<size>`` SageMaker names (moto's own list stops at ``ml.m5``)."""
    if not isinstance(instance_type, str) or not _INSTANCE_TYPE.fullmatch(instance_type):
        raise _invalid(
            f"Value '{instance_type}' at 'instanceType' failed to satisfy constraint: Member must "
            "be an ml.<family>.<size> instance type"
        )


def variant_summaries(config_variants: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """DescribeEndpoint's ``ProductionVariants`` for an endpoint just deployed with a config."""
    summaries = []
    for variant in config_variants:
        weight = float(variant.get("InitialVariantWeight", 1.0))
        summary: dict[str, Any] = {
            "VariantName": variant["VariantName"],
            "CurrentWeight": weight,
            "DesiredWeight": weight,
        }
        serverless = variant.get("ServerlessConfig")
        if serverless:
            summary["CurrentServerlessConfig"] = copy.deepcopy(dict(serverless))
            summary["DesiredServerlessConfig"] = copy.deepcopy(dict(serverless))
        else:
            count = int(variant.get("InitialInstanceCount", 1))
            summary["CurrentInstanceCount"] = count
            summary["DesiredInstanceCount"] = count
        summaries.append(summary)
    return summaries


def excluded_properties(value: Any) -> set[str]:
    """``ExcludeRetainedVariantProperties`` as a set of property types, checked."""
    if value in (None, ""):
        return set()
    if not isinstance(value, list):
        raise _invalid("ExcludeRetainedVariantProperties must be a list of VariantProperty")
    names = set()
    for item in value:
        name = item.get("VariantPropertyType") if isinstance(item, Mapping) else None
        if name not in VARIANT_PROPERTY_TYPES:
            raise _invalid(
                f"Value '{name}' at 'excludeRetainedVariantProperties.member.variantPropertyType' "
                f"failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(VARIANT_PROPERTY_TYPES)}]"
            )
        names.add(str(name))
    return names


def retained_variants(
    new: list[dict[str, Any]], current: Sequence[Mapping[str, Any]], excluded: set[str]
) -> list[dict[str, Any]]:
    """The new config's variant summaries with the current endpoint's count and weight kept.

    A variant is matched by name; one the endpoint does not have yet starts from the config.
    A serverless variant has no instance count to keep.
    """
    by_name = {str(v.get("VariantName")): v for v in current}
    kept = []
    for summary in new:
        old = by_name.get(summary["VariantName"])
        summary = dict(summary)
        if old is not None:
            if (
                "DesiredInstanceCount" not in excluded
                and "DesiredInstanceCount" in summary
                and old.get("DesiredInstanceCount") is not None
            ):
                summary["DesiredInstanceCount"] = old["DesiredInstanceCount"]
                summary["CurrentInstanceCount"] = old.get(
                    "CurrentInstanceCount", old["DesiredInstanceCount"]
                )
            if "DesiredWeight" not in excluded and old.get("DesiredWeight") is not None:
                summary["DesiredWeight"] = old["DesiredWeight"]
                summary["CurrentWeight"] = old.get("CurrentWeight", old["DesiredWeight"])
        kept.append(summary)
    return kept


def effective_capture_config(
    new: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
    retain: bool,
    excluded: set[str],
) -> dict[str, Any]:
    """The capture settings an update leaves the endpoint with (empty: no capture)."""
    if retain and "DataCaptureConfig" not in excluded:
        return copy.deepcopy(dict(current or {}))
    return copy.deepcopy(dict(new or {}))


def capture_summary(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """DescribeEndpoint's ``DataCaptureConfig`` for the capture settings in force."""
    if not config:
        return None
    enabled = flag(config.get("EnableCapture", False))
    summary: dict[str, Any] = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": int(config.get("InitialSamplingPercentage", 0)),
        "DestinationS3Uri": str(config.get("DestinationS3Uri", "")),
    }
    if config.get("KmsKeyId"):
        summary["KmsKeyId"] = str(config["KmsKeyId"])
    return summary


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"{name} must be an integer from {low} to {high}, got {value!r}") from None
    if not low <= number <= high:
        raise _invalid(f"{name} must be from {low} to {high}, got {number}")
    return number


def _check_capacity(value: Any, name: str) -> None:
    if not isinstance(value, Mapping) or value.get("Type") not in _CAPACITY_TYPES:
        raise _invalid(f"{name} needs Type {' or '.join(_CAPACITY_TYPES)} and a Value")
    _int_in(value.get("Value"), f"{name}.Value", 1, 10_000)


def _check_blue_green(policy: Any) -> None:
    if not isinstance(policy, Mapping):
        raise _invalid("BlueGreenUpdatePolicy must be an object")
    routing = policy.get("TrafficRoutingConfiguration")
    if not isinstance(routing, Mapping):
        raise _invalid("BlueGreenUpdatePolicy needs a TrafficRoutingConfiguration")
    kind = routing.get("Type")
    if kind not in _TRAFFIC_TYPES:
        raise _invalid(
            f"Value '{kind}' at 'trafficRoutingConfiguration.type' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(_TRAFFIC_TYPES)}]"
        )
    _int_in(routing.get("WaitIntervalInSeconds"), "WaitIntervalInSeconds", 0, 3600)
    if kind == "CANARY":
        _check_capacity(routing.get("CanarySize"), "CanarySize (required for CANARY)")
    if kind == "LINEAR":
        _check_capacity(routing.get("LinearStepSize"), "LinearStepSize (required for LINEAR)")
    if "TerminationWaitInSeconds" in policy:
        _int_in(policy["TerminationWaitInSeconds"], "TerminationWaitInSeconds", 0, 3600)
    if "MaximumExecutionTimeoutInSeconds" in policy:
        _int_in(
            policy["MaximumExecutionTimeoutInSeconds"],
            "MaximumExecutionTimeoutInSeconds",
            600,
            28800,
        )


def _check_rolling(policy: Any, variants: Sequence[Mapping[str, Any]]) -> None:
    if not isinstance(policy, Mapping):
        raise _invalid("RollingUpdatePolicy must be an object")
    _check_capacity(policy.get("MaximumBatchSize"), "RollingUpdatePolicy.MaximumBatchSize")
    _int_in(policy.get("WaitIntervalInSeconds"), "WaitIntervalInSeconds", 0, 3600)
    if "RollbackMaximumBatchSize" in policy:
        _check_capacity(policy["RollbackMaximumBatchSize"], "RollbackMaximumBatchSize")
    if len(variants) > 1 or any(v.get("ServerlessConfig") for v in variants):
        raise _invalid(
            "A rolling deployment is not supported for serverless or multi-variant endpoints"
        )


def check_deployment_config(
    config: Any,
    variants: Sequence[Mapping[str, Any]],
    current_variant_names: Sequence[str] | None = None,
) -> None:
    """SageMaker's rules for a ``DeploymentConfig`` (CreateEndpoint, UpdateEndpoint, CFN).

    ``variants`` are the target config's; ``current_variant_names`` the endpoint's when it is
    updated: a guarded update must keep the variant names.
    """
    if config in (None, {}):
        return
    if not isinstance(config, Mapping):
        raise _invalid("DeploymentConfig must be an object")
    blue_green = config.get("BlueGreenUpdatePolicy")
    rolling = config.get("RollingUpdatePolicy")
    if blue_green is not None and rolling is not None:
        raise _invalid("Specify either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both")
    if blue_green is not None:
        _check_blue_green(blue_green)
    if rolling is not None:
        _check_rolling(rolling, variants)
    rollback = config.get("AutoRollbackConfiguration")
    if rollback is not None:
        alarms = rollback.get("Alarms") if isinstance(rollback, Mapping) else None
        if not isinstance(alarms, list) or not 1 <= len(alarms) <= 10:
            raise _invalid("AutoRollbackConfiguration.Alarms must list 1 to 10 alarms")
        for alarm in alarms:
            if not isinstance(alarm, Mapping) or not alarm.get("AlarmName"):
                raise _invalid("each AutoRollbackConfiguration alarm needs an AlarmName")
    if current_variant_names is not None and (blue_green is not None or rolling is not None):
        names = sorted(str(v.get("VariantName")) for v in variants)
        if names != sorted(current_variant_names):
            raise _invalid(
                "When doing a blue/green or rolling deployment, the new endpoint configuration "
                f"must have the same variant names as the old one: {names} is not "
                f"{sorted(current_variant_names)}"
            )


def deployment_description(config: Mapping[str, Any] | None) -> str:
    """How the update would shift traffic on SageMaker, for the log line saying it is not."""
    if not config:
        return "no DeploymentConfig (blue/green, all at once)"
    if config.get("RollingUpdatePolicy"):
        return "a rolling update"
    routing = (config.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
    return f"blue/green {routing.get('Type', 'ALL_AT_ONCE')}"
