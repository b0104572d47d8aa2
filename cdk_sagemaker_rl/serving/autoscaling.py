"""Autoscaling of an endpoint variant's instances, kept across retraining.

Application Auto Scaling changes a variant's instance count as traffic changes; a retrain then
sends a new endpoint config whose ``InitialInstanceCount`` would shrink a scaled-out fleet back to
its initial size in the middle of the traffic that scaled it. So an autoscaled endpoint is always
updated with ``RetainAllVariantProperties`` (see :func:`retained_variant_properties`).

The same settings are rendered twice from one object: as CloudFormation resources when the
endpoint is a template resource (:func:`cloudformation_autoscaling`), and as Application Auto
Scaling requests the serving workflow sends once it created the endpoint
(:meth:`AutoScaling.requests`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from constructs import Construct, IDependable

from ..errors import ValidationError, invalid
from ._checks import bounded_int

_SEE = "README.md#autoscaling"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
#: Instances of one variant: SageMaker's default quota is far lower; this only catches typos.
_MAX_INSTANCES = 10_000


def _cooldown(value: object, argument: str) -> int:
    if not isinstance(value, Duration):
        raise invalid(argument, value, "an aws_cdk.Duration", see=_SEE)
    amount = value.to_seconds()
    if int(amount) != amount or amount < 0:
        raise invalid(argument, value.to_human_string(), "a whole number of seconds >= 0", see=_SEE)
    return int(amount)


@dataclass(frozen=True)
class ScheduledCapacity:
    """Capacity bounds from a schedule on (e.g. more instances during business hours)."""

    name: str
    schedule: appscaling.Schedule
    min_capacity: int | None = None
    max_capacity: int | None = None

    def request(self) -> dict[str, Any]:
        action: dict[str, Any] = {}
        if self.min_capacity is not None:
            action["MinCapacity"] = self.min_capacity
        if self.max_capacity is not None:
            action["MaxCapacity"] = self.max_capacity
        return {
            "ScheduledActionName": self.name,
            "Schedule": self.schedule.expression_string,
            "ScalableTargetAction": action,
        }


@dataclass(frozen=True)
class AutoScaling:
    """Target tracking on invocations per instance, between ``min_capacity`` and
    ``max_capacity`` instances; ``schedules`` change those bounds on a schedule."""

    max_capacity: int
    target_invocations_per_instance: float
    min_capacity: int = 1
    scale_in_cooldown: Duration = field(default_factory=lambda: Duration.minutes(5))
    scale_out_cooldown: Duration = field(default_factory=lambda: Duration.minutes(1))
    schedules: Sequence[ScheduledCapacity] = ()

    def __post_init__(self) -> None:
        low = bounded_int(self.min_capacity, "AutoScaling min_capacity", 1, _MAX_INSTANCES, _SEE)
        high = bounded_int(self.max_capacity, "AutoScaling max_capacity", 1, _MAX_INSTANCES, _SEE)
        if low > high:
            raise ValidationError(
                f"AutoScaling min_capacity={low} is greater than max_capacity={high}. Allowed: "
                f"min_capacity <= max_capacity. See {_SEE}."
            )
        target = self.target_invocations_per_instance
        if isinstance(target, bool) or not isinstance(target, (int, float)) or target <= 0:
            raise invalid(
                "AutoScaling target_invocations_per_instance",
                target,
                "a number > 0 (invocations per instance per minute)",
                see=_SEE,
            )
        _cooldown(self.scale_in_cooldown, "AutoScaling scale_in_cooldown")
        _cooldown(self.scale_out_cooldown, "AutoScaling scale_out_cooldown")
        names = set()
        for schedule in self.schedules:
            if not isinstance(schedule, ScheduledCapacity):
                raise invalid(
                    "AutoScaling schedules", schedule, "ScheduledCapacity(...) objects", see=_SEE
                )
            if schedule.name in names:
                raise invalid(
                    "ScheduledCapacity name", schedule.name, "a name unique per endpoint", see=_SEE
                )
            names.add(schedule.name)
            for bound in (schedule.min_capacity, schedule.max_capacity):
                if bound is not None:
                    bounded_int(bound, "ScheduledCapacity capacity", 1, _MAX_INSTANCES, _SEE)

    @staticmethod
    def resource_id(endpoint_name: str, variant_name: str) -> str:
        return f"endpoint/{endpoint_name}/variant/{variant_name}"

    def target_request(self, endpoint_name: str, variant_name: str) -> dict[str, Any]:
        """RegisterScalableTarget."""
        return {
            "ServiceNamespace": "sagemaker",
            "ResourceId": self.resource_id(endpoint_name, variant_name),
            "ScalableDimension": DIMENSION,
            "MinCapacity": self.min_capacity,
            "MaxCapacity": self.max_capacity,
        }

    def tracking_configuration(self) -> dict[str, Any]:
        return {
            "TargetValue": float(self.target_invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": _cooldown(self.scale_in_cooldown, "scale_in_cooldown"),
            "ScaleOutCooldown": _cooldown(self.scale_out_cooldown, "scale_out_cooldown"),
        }

    def policy_name(self, endpoint_name: str) -> str:
        return f"{endpoint_name}-invocations-per-instance"

    def requests(self, endpoint_name: str, variant_name: str) -> dict[str, Any]:
        """The Application Auto Scaling requests the serving workflow sends, in order."""
        target = self.target_request(endpoint_name, variant_name)
        where = {k: target[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
        return {
            "RegisterScalableTarget": target,
            "PutScalingPolicy": {
                **where,
                "PolicyName": self.policy_name(endpoint_name),
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": self.tracking_configuration(),
            },
            "PutScheduledAction": [{**where, **s.request()} for s in self.schedules],
        }


def check_autoscaling(value: object) -> AutoScaling | None:
    if value is None or isinstance(value, AutoScaling):
        return value
    raise invalid("autoscaling", value, "an AutoScaling(...) or None", see=_SEE)


def retained_variant_properties() -> dict[str, Any]:
    """UpdateEndpoint / ``AWS::SageMaker::Endpoint`` settings that keep the scaled size.

    Data capture settings are a variant property too; they come from the new config, so that a
    change to them in code is applied.
    """
    return {
        "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
    }


def cloudformation_autoscaling(
    scope: Construct,
    settings: AutoScaling,
    *,
    endpoint_name: str,
    variant_name: str,
    endpoint: IDependable,
) -> appscaling.CfnScalableTarget:
    """The scalable target and its policy as template resources (``Scaling`` in ``scope``).

    L1 resources without ``RoleARN``: Application Auto Scaling then uses its SageMaker
    service-linked role, where the L2 ``ScalableTarget`` would create a role of its own.
    """
    holder = Construct(scope, "Scaling")
    target_request = settings.target_request(endpoint_name, variant_name)
    target = appscaling.CfnScalableTarget(
        holder,
        "Target",
        service_namespace=target_request["ServiceNamespace"],
        resource_id=target_request["ResourceId"],
        scalable_dimension=DIMENSION,
        min_capacity=settings.min_capacity,
        max_capacity=settings.max_capacity,
    )
    if settings.schedules:
        target.add_property_override("ScheduledActions", [s.request() for s in settings.schedules])
    target.node.add_dependency(endpoint)
    policy = appscaling.CfnScalingPolicy(
        holder,
        "InvocationsPerInstance",
        policy_name=settings.policy_name(endpoint_name),
        policy_type="TargetTrackingScaling",
        scaling_target_id=target.ref,
    )
    policy.add_property_override(
        "TargetTrackingScalingPolicyConfiguration", settings.tracking_configuration()
    )
    return target
