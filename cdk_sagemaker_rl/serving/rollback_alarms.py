"""The alarms an endpoint creates for itself, watched by SageMaker during an update.

With no alarm a blue/green update "succeeds" as soon as the new fleet answers ``/ping``, even when
the new policy's inference script fails on every request. These two alarms make a broken policy
roll back by itself: errors (the model's own errors and 5xx answers) and model latency above a
threshold. Both watch the variant's metrics, which during a blue/green update include the new
fleet's requests; missing data (no traffic) is not a breach, so an idle endpoint can be updated.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from .deployment import RollbackThresholds
from .metrics import failed_requests, variant_metric


def rollback_alarms(
    scope: Construct,
    endpoint_name: str,
    variant_name: str,
    thresholds: RollbackThresholds | None = None,
) -> list[cloudwatch.Alarm]:
    """``Errors`` and ``Latency`` alarms in ``scope`` (construct ``RollbackAlarms``)."""
    thresholds = thresholds or RollbackThresholds()
    holder = Construct(scope, "RollbackAlarms")
    minute = Duration.minutes(1)

    def metric(name: str, statistic: str) -> cloudwatch.Metric:
        return variant_metric(
            endpoint_name, variant_name, name, {"period": minute}, statistic=statistic
        )

    errors = failed_requests(
        metric("Invocation5XXErrors", "Sum"), metric("InvocationModelErrors", "Sum"), minute
    )
    errors_alarm = cloudwatch.Alarm(
        holder,
        "Errors",
        metric=errors,
        threshold=thresholds.failed_requests_per_minute,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=f"Endpoint {endpoint_name}: the policy answers with errors "
        "(SageMaker rolls an update back when this fires)",
    )
    latency_alarm = cloudwatch.Alarm(
        holder,
        "Latency",
        # ModelLatency is in microseconds.
        metric=metric("ModelLatency", "Average"),
        threshold=thresholds.max_model_latency.to_milliseconds() * 1000,
        evaluation_periods=2,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=f"Endpoint {endpoint_name}: model latency above "
        f"{thresholds.max_model_latency.to_human_string()} (SageMaker rolls an update back when "
        "this fires)",
    )
    return [errors_alarm, latency_alarm]
