"""What monitoring needs from an endpoint, and the endpoint metrics SageMaker does not name.

:class:`MonitoredEndpoint` is structural so that this package never imports ``serving`` (and
``serving`` never imports it): ``RLEndpoint`` satisfies it as it is, and so does any object with
the same names, e.g. in a test.

SageMaker publishes no instance-count metric for an endpoint variant: ``AWS/SageMaker`` has the
invocation metrics, ``/aws/sagemaker/Endpoints`` the per-instance utilization, and Application
Auto Scaling publishes nothing. The count is derived instead: ``InvocationsPerInstance`` adds
``1/<instances>`` per request, so ``Invocations / InvocationsPerInstance`` is the number of
instances serving, in every period with requests (and no value in a period without).
"""

from __future__ import annotations

from typing import Protocol

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

#: Where SageMaker publishes an endpoint's per-instance CPU, memory and disk utilization.
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"


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
) -> cloudwatch.Metric:
    """``CPUUtilization``/``MemoryUtilization``/... of the variant's instances (Average)."""
    return cloudwatch.Metric(
        namespace=INSTANCE_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={
            "EndpointName": endpoint.endpoint_name,
            "VariantName": endpoint.variant_name,
        },
        statistic="Average",
        period=period,
        label=metric_name,
    )


def errors(endpoint: MonitoredEndpoint, period: Duration) -> cloudwatch.MathExpression:
    """Failed requests per period: the larger of the 5xx and the model-error counts.

    The larger, not the sum: SageMaker counts a model's 5xx answer in both metrics (model errors
    are every non-2xx answer, timeouts included), and a sum would count it twice.
    """
    return cloudwatch.MathExpression(
        expression="MAX([FILL(errors5xx, 0), FILL(modelErrors, 0)])",
        using_metrics={
            "errors5xx": endpoint.metric_invocation5xx_errors().with_(
                statistic="Sum", period=period
            ),
            "modelErrors": endpoint.metric_invocation_model_errors().with_(
                statistic="Sum", period=period
            ),
        },
        label="Failed requests (5xx / model errors)",
        period=period,
    )
