"""CloudWatch metrics of one endpoint variant, for alarms and dashboards.

SageMaker publishes its invocation metrics per endpoint *and* variant (``AWS/SageMaker``,
dimensions ``EndpointName`` + ``VariantName``); a metric with only one of the two dimensions
matches nothing, which is an alarm that never fires. These helpers always set both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from aws_cdk import Duration

from ..errors import invalid

if TYPE_CHECKING:  # imported where a metric is built: most apps never build one
    from aws_cdk import aws_cloudwatch as cloudwatch

#: Where SageMaker publishes endpoint invocation metrics.
NAMESPACE = "AWS/SageMaker"
#: Where SageMaker publishes the per-instance CPU, memory and disk utilization of a variant.
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
_SEE = "https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html"


class MetricOptions(TypedDict, total=False):
    """``aws_cloudwatch.MetricOptions`` as keyword arguments."""

    account: str
    color: str
    dimensions_map: dict[str, str]
    id: str
    label: str
    period: Duration
    region: str
    stack_account: str
    stack_region: str
    statistic: str
    unit: cloudwatch.Unit
    visible: bool


def variant_metric(
    endpoint_name: str,
    variant_name: str,
    metric_name: str,
    options: MetricOptions,
    *,
    statistic: str | None = None,
    namespace: str = NAMESPACE,
) -> cloudwatch.Metric:
    """``metric_name`` of one variant; ``statistic`` is the default when options give none.

    Unknown options are refused with the list of known ones (a typo would otherwise surface as a
    TypeError from jsii); ``dimensions_map`` adds dimensions to, or overrides, ours.
    """
    unknown = sorted(set(options) - set(MetricOptions.__annotations__))
    if unknown:
        raise invalid("metric option", unknown[0], sorted(MetricOptions.__annotations__), see=_SEE)
    given = dict(options)
    dimensions = {
        "EndpointName": endpoint_name,
        "VariantName": variant_name,
        **(given.pop("dimensions_map", None) or {}),  # type: ignore[dict-item]
    }
    if statistic is not None:
        given.setdefault("statistic", statistic)
    from aws_cdk import aws_cloudwatch as cloudwatch

    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=metric_name,
        dimensions_map=dimensions,
        **given,  # type: ignore[arg-type]
    )


def failed_requests(
    errors5xx: cloudwatch.Metric, model_errors: cloudwatch.Metric, period: Duration
) -> cloudwatch.MathExpression:
    """Requests that failed per ``period``: the larger of the 5xx and the model-error counts.

    The larger, not the sum: SageMaker counts a model's 5xx answer in both metrics (model errors
    are every non-2xx answer, timeouts included), so a sum would count it twice. Missing data
    (no traffic) is 0. One rule for the rollback alarms and the monitoring alike.
    """
    from aws_cdk import aws_cloudwatch as cloudwatch

    return cloudwatch.MathExpression(
        expression="MAX([FILL(errors5xx, 0), FILL(modelErrors, 0)])",
        using_metrics={
            "errors5xx": errors5xx.with_(statistic="Sum", period=period),
            "modelErrors": model_errors.with_(statistic="Sum", period=period),
        },
        label="Failed requests (5xx / model errors)",
        period=period,
    )
