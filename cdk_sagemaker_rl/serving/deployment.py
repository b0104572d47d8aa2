"""How a retrained policy reaches traffic: SageMaker's deployment guardrails, as typed objects.

A retrained RL policy is a risky change: it "succeeded" as a training job and may still act
worse. SageMaker can update an endpoint blue/green (a new fleet next to the old one, traffic
shifted all at once, as a canary or linearly, a baking period in which alarms are watched, and an
automatic rollback when one fires) or rolling (for large fleets, batch by batch). These classes
say which, with SageMaker's limits checked at synth time; :meth:`EndpointUpdate.request` renders
the ``DeploymentConfig`` that both serving modes send (CloudFormation's ``AWS::SageMaker::Endpoint``
property has the same shape as the UpdateEndpoint request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, Token

from ..errors import ValidationError, invalid
from ._checks import bounded_int, duration_seconds, serving_range

if TYPE_CHECKING:  # most apps never import CloudWatch: keep synth lean
    from aws_cdk import aws_cloudwatch as cloudwatch

_SEE = "README.md#safe-updates"


@dataclass(frozen=True)
class Capacity:
    """A share of the fleet: a percentage of its capacity, or a number of instances."""

    kind: str
    value: int

    @staticmethod
    def percent(value: int) -> Capacity:
        """``value`` percent of the variant's instances (``CAPACITY_PERCENT``)."""
        return Capacity("CAPACITY_PERCENT", bounded_int(value, "Capacity.percent", 1, 100, _SEE))

    @staticmethod
    def instances(value: int) -> Capacity:
        """``value`` instances (``INSTANCE_COUNT``)."""
        return Capacity("INSTANCE_COUNT", bounded_int(value, "Capacity.instances", 1, 10_000, _SEE))

    def checked(self, argument: str, key: str) -> Capacity:
        """This share, refused when it is a percentage outside SageMaker's range for ``key``."""
        if not isinstance(self, Capacity):
            raise invalid(argument, self, "Capacity.percent(n) or Capacity.instances(n)", see=_SEE)
        low, high = serving_range(key)
        if self.kind == "CAPACITY_PERCENT" and not low <= self.value <= high:
            raise invalid(
                argument,
                f"Capacity.percent({self.value})",
                f"a percentage from {low} to {high} of the fleet (SageMaker), or "
                "Capacity.instances(n)",
                see=_SEE,
            )
        return self

    def request(self) -> dict[str, Any]:
        return {"Type": self.kind, "Value": self.value}


@dataclass(frozen=True)
class TrafficShifting:
    """How traffic moves from the old fleet to the new one in a blue/green update."""

    kind: str
    wait_seconds: int = 0
    size: Capacity | None = None

    @staticmethod
    def all_at_once() -> TrafficShifting:
        """All traffic moves at once; the baking period follows."""
        return TrafficShifting("ALL_AT_ONCE")

    @staticmethod
    def canary(size: Capacity, *, wait: Duration) -> TrafficShifting:
        """``size`` of the traffic first (≤ 50 %), the rest after ``wait`` if no alarm fired."""
        return TrafficShifting(
            "CANARY",
            _seconds(wait, "TrafficShifting.canary wait", "traffic_wait_seconds"),
            Capacity.checked(size, "TrafficShifting.canary size", "canary_percent"),
        )

    @staticmethod
    def linear(step: Capacity, *, wait: Duration) -> TrafficShifting:
        """``step`` of the traffic (10-50 %) every ``wait`` while no alarm fires."""
        return TrafficShifting(
            "LINEAR",
            _seconds(wait, "TrafficShifting.linear wait", "traffic_wait_seconds"),
            Capacity.checked(step, "TrafficShifting.linear step", "linear_percent"),
        )

    def request(self) -> dict[str, Any]:
        routing: dict[str, Any] = {"Type": self.kind, "WaitIntervalInSeconds": self.wait_seconds}
        if self.kind == "CANARY" and self.size is not None:
            routing["CanarySize"] = self.size.request()
        if self.kind == "LINEAR" and self.size is not None:
            routing["LinearStepSize"] = self.size.request()
        return routing


def _alarms(alarms: Sequence[cloudwatch.IAlarm], argument: str) -> tuple[cloudwatch.IAlarm, ...]:
    if isinstance(alarms, (str, bytes)) or not isinstance(alarms, Sequence):
        raise invalid(argument, alarms, "a list of aws_cloudwatch.IAlarm", see=_SEE)
    for alarm in alarms:
        if not (hasattr(alarm, "alarm_name") and hasattr(alarm, "alarm_arn")):
            raise invalid(
                argument,
                alarm,
                "aws_cloudwatch.IAlarm objects (Alarm, Alarm.from_alarm_arn(...), "
                "CompositeAlarm); SageMaker rolls back when one of them fires",
                see=_SEE,
            )
    return tuple(alarms)


@dataclass(frozen=True)
class RollbackThresholds:
    """When the endpoint's own alarms fire: ``failed_requests_per_minute`` or more failed
    requests in a minute (default 1: a broken policy fails every request), or an average model
    latency above ``max_model_latency`` for two minutes in a row (default 1 second)."""

    failed_requests_per_minute: int = 1
    max_model_latency: Duration = field(default_factory=lambda: Duration.seconds(1))

    def __post_init__(self) -> None:
        count = self.failed_requests_per_minute
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise invalid(
                "RollbackThresholds failed_requests_per_minute", count, "an integer >= 1", see=_SEE
            )
        latency = self.max_model_latency
        if (
            not isinstance(latency, Duration)
            or Token.is_unresolved(latency.to_milliseconds())
            or latency.to_milliseconds() <= 0
        ):
            raise invalid(
                "RollbackThresholds max_model_latency",
                latency.to_human_string() if isinstance(latency, Duration) else latency,
                "a literal aws_cdk.Duration > 0",
                see=_SEE,
            )


@dataclass(frozen=True)
class EndpointUpdate:
    """How ``cdk deploy`` (or the serving workflow) moves an endpoint to a new policy.

    ``default_alarms`` adds the two alarms the endpoint creates for itself (failed requests, model
    latency; ``rollback_thresholds`` says when they fire, see :mod:`.rollback_alarms`) to
    ``alarms``; SageMaker rolls
    the update back when any of them fires during a baking period.
    """

    strategy: str
    traffic: TrafficShifting | None = None
    baking_period_seconds: int = 0
    batch: Capacity | None = None
    rollback_batch: Capacity | None = None
    wait_seconds: int = 0
    max_execution_seconds: int | None = None
    alarms: tuple[cloudwatch.IAlarm, ...] = field(default_factory=tuple)
    default_alarms: bool = True
    rollback_thresholds: RollbackThresholds = field(default_factory=RollbackThresholds)

    @staticmethod
    def blue_green(
        *,
        traffic: TrafficShifting | None = None,
        baking_period: Duration | None = None,
        max_execution_time: Duration | None = None,
        alarms: Sequence[cloudwatch.IAlarm] = (),
        default_alarms: bool = True,
        rollback_thresholds: RollbackThresholds | None = None,
    ) -> EndpointUpdate:
        """A new fleet next to the old one; traffic moves as ``traffic`` says (default: all at
        once), then the old fleet is kept for ``baking_period`` (default 5 minutes) while the
        alarms are watched."""
        if traffic is not None and not isinstance(traffic, TrafficShifting):
            raise invalid(
                "EndpointUpdate.blue_green traffic",
                traffic,
                "TrafficShifting.all_at_once(), .canary(...) or .linear(...)",
                see=_SEE,
            )
        return EndpointUpdate(
            "BLUE_GREEN",
            traffic=traffic or TrafficShifting.all_at_once(),
            baking_period_seconds=_seconds(
                baking_period if baking_period is not None else Duration.minutes(5),
                "EndpointUpdate.blue_green baking_period",
                "baking_period_seconds",
            ),
            max_execution_seconds=_max_execution(max_execution_time),
            alarms=_alarms(alarms, "EndpointUpdate alarms"),
            default_alarms=_flag(default_alarms),
            rollback_thresholds=_thresholds(rollback_thresholds),
        )

    @staticmethod
    def rolling(
        *,
        batch: Capacity,
        wait: Duration,
        rollback_batch: Capacity | None = None,
        max_execution_time: Duration | None = None,
        alarms: Sequence[cloudwatch.IAlarm] = (),
        default_alarms: bool = True,
        rollback_thresholds: RollbackThresholds | None = None,
    ) -> EndpointUpdate:
        """Replace the fleet ``batch`` by ``batch`` (5-50 %), ``wait`` between batches: no
        second full fleet, for large endpoints. Not for serverless endpoints (SageMaker)."""
        return EndpointUpdate(
            "ROLLING",
            batch=Capacity.checked(batch, "EndpointUpdate.rolling batch", "rolling_percent"),
            rollback_batch=(
                None
                if rollback_batch is None
                else Capacity.checked(
                    rollback_batch, "EndpointUpdate.rolling rollback_batch", "rolling_percent"
                )
            ),
            wait_seconds=_seconds(wait, "EndpointUpdate.rolling wait", "traffic_wait_seconds"),
            max_execution_seconds=_max_execution(max_execution_time),
            alarms=_alarms(alarms, "EndpointUpdate alarms"),
            default_alarms=_flag(default_alarms),
            rollback_thresholds=_thresholds(rollback_thresholds),
        )

    def watched_alarms(self, own: Sequence[cloudwatch.IAlarm]) -> tuple[cloudwatch.IAlarm, ...]:
        """The alarms SageMaker watches: the user's, then the endpoint's own ones."""
        watched = self.alarms + (tuple(own) if self.default_alarms else ())
        low, high = serving_range("rollback_alarms")
        if len(watched) > high:
            raise ValidationError(
                f"EndpointUpdate watches {len(watched)} alarms ({len(self.alarms)} given, "
                f"{len(watched) - len(self.alarms)} created by the endpoint); SageMaker allows "
                f"{low} to {high}. Pass fewer alarms, or default_alarms=False. See {_SEE}."
            )
        return watched

    def request(self, alarm_names: Sequence[str]) -> dict[str, Any]:
        """The ``DeploymentConfig`` of UpdateEndpoint and of ``AWS::SageMaker::Endpoint``."""
        config: dict[str, Any] = {}
        if self.strategy == "BLUE_GREEN":
            assert self.traffic is not None
            policy: dict[str, Any] = {
                "TrafficRoutingConfiguration": self.traffic.request(),
                "TerminationWaitInSeconds": self.baking_period_seconds,
            }
            if self.max_execution_seconds is not None:
                policy["MaximumExecutionTimeoutInSeconds"] = self.max_execution_seconds
            config["BlueGreenUpdatePolicy"] = policy
        else:
            assert self.batch is not None
            rolling: dict[str, Any] = {
                "MaximumBatchSize": self.batch.request(),
                "WaitIntervalInSeconds": self.wait_seconds,
            }
            if self.max_execution_seconds is not None:
                rolling["MaximumExecutionTimeoutInSeconds"] = self.max_execution_seconds
            if self.rollback_batch is not None:
                rolling["RollbackMaximumBatchSize"] = self.rollback_batch.request()
            config["RollingUpdatePolicy"] = rolling
        if alarm_names:
            config["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": name} for name in alarm_names]
            }
        return config


def _seconds(value: object, argument: str, key: str) -> int:
    return duration_seconds(value, argument, key, _SEE)


def _thresholds(value: object) -> RollbackThresholds:
    if value is None:
        return RollbackThresholds()
    if not isinstance(value, RollbackThresholds):
        raise invalid(
            "EndpointUpdate rollback_thresholds", value, "RollbackThresholds(...) or None", see=_SEE
        )
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid("EndpointUpdate default_alarms", value, "True or False", see=_SEE)
    return value


def _max_execution(value: Duration | None) -> int | None:
    if value is None:
        return None
    return _seconds(value, "EndpointUpdate max_execution_time", "max_execution_seconds")


def check_update(update: object) -> EndpointUpdate:
    """``deploy(update=...)`` as given: an :class:`EndpointUpdate`, or the default."""
    if update is None:
        return EndpointUpdate.blue_green()
    if not isinstance(update, EndpointUpdate):
        raise invalid(
            "update",
            update,
            "EndpointUpdate.blue_green(...) or EndpointUpdate.rolling(...)",
            see=_SEE,
        )
    return update
