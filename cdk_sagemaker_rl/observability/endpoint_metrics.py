"""What monitoring needs from an endpoint, and the endpoint metrics SageMaker does not name.

:class:`MonitoredEndpoint` is structural so that this package needs no ``RLEndpoint`` (it only
shares ``serving.metrics``' option type, and ``serving`` never imports it): ``RLEndpoint``
satisfies it as it is, and so does any object with the same names, e.g. in a test. The metrics
themselves, failed requests and instance utilization included, are the endpoint's own.

SageMaker publishes no instance-count metric for an endpoint variant: ``AWS/SageMaker`` has the
invocation metrics, ``/aws/sagemaker/Endpoints`` the per-instance utilization, and Application
Auto Scaling publishes nothing. The count is derived instead: ``InvocationsPerInstance`` adds
``1/<instances>`` per request, so ``Invocations / InvocationsPerInstance`` is the number of
instances serving, in every period with requests (and no value in a period without).
"""

from __future__ import annotations

from typing import Protocol, Unpack

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from ..serving.metrics import MetricOptions


class MonitoredEndpoint(Protocol):
    """An endpoint variant and its ``AWS/SageMaker`` metrics (``RLEndpoint`` is one)."""

    @property
    def endpoint_name(self) -> str: ...

    @property
    def variant_name(self) -> str: ...

    def metric(self, metric_name: str) -> cloudwatch.Metric: ...

    def metric_invocations(self) -> cloudwatch.Metric: ...

    def metric_model_latency(self) -> cloudwatch.Metric: ...

    def metric_invocation4xx_errors(self) -> cloudwatch.Metric: ...

    def metric_invocation5xx_errors(self) -> cloudwatch.Metric: ...

    def metric_invocation_model_errors(self) -> cloudwatch.Metric: ...

    def metric_instance(
        self, metric_name: str, **props: Unpack[MetricOptions]
    ) -> cloudwatch.Metric: ...

    def metric_failed_requests(self, period: Duration | None = None) -> cloudwatch.IMetric: ...


#: What an endpoint must have (checked at ``add_endpoint``: a Protocol is not checked at run time).
REQUIRED = (
    "endpoint_name",
    "variant_name",
    "metric",
    "metric_invocations",
    "metric_model_latency",
    "metric_invocation4xx_errors",
    "metric_invocation5xx_errors",
    "metric_invocation_model_errors",
    "metric_instance",
    "metric_failed_requests",
)


def missing_members(endpoint: object) -> list[str]:
    return [name for name in REQUIRED if not hasattr(endpoint, name)]


def instances(endpoint: MonitoredEndpoint, period: Duration) -> cloudwatch.IMetric:
    """Instances serving the variant, derived from two invocation metrics (see module doc)."""
    return cloudwatch.MathExpression(
        expression="invocations / perInstance",
        using_metrics={
            "invocations": endpoint.metric_invocations().with_(statistic="Sum", period=period),
            "perInstance": endpoint.metric("InvocationsPerInstance").with_(
                statistic="Sum", period=period
            ),
        },
        label="Instances serving (while requests arrive)",
        period=period,
    )


def instance_utilization(
    endpoint: MonitoredEndpoint, metric_name: str, period: Duration
) -> cloudwatch.IMetric:
    """``CPUUtilization``/``MemoryUtilization``/... of the variant's instances (Average)."""
    return endpoint.metric_instance(
        metric_name, statistic="Average", period=period, label=metric_name
    )


def errors(endpoint: MonitoredEndpoint, period: Duration) -> cloudwatch.IMetric:
    """Failed requests per period, by the endpoint's own rule (5xx or model errors)."""
    return endpoint.metric_failed_requests(period)
