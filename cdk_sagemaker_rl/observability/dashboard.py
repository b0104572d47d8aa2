"""The widgets of an estimator's dashboard: training first, the endpoint below once deployed.

An operator opens the dashboard to answer two questions, so it is laid out in that order: is the
policy learning (the reward of the latest runs, and whether runs fail), and is the endpoint that
serves it healthy (requests, latency, errors, instances, and the alarms' state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn

from .endpoint_metrics import MonitoredEndpoint, errors, instance_utilization, instances

#: The time range a dashboard opens with: the trainings of the last day, minute by minute.
DEFAULT_INTERVAL = Duration.days(1)
#: Endpoint graphs: invocation metrics are published per minute, summed over five.
ENDPOINT_PERIOD = Duration.minutes(5)
_FULL = 24
_THIRD = 8
_HALF = 12


def _text(markdown: str) -> cloudwatch.TextWidget:
    return cloudwatch.TextWidget(markdown=markdown, width=_FULL, height=2)


def training_widgets(
    name_base: str,
    metrics: Mapping[str, cloudwatch.IMetric],
    state_machine: sfn.IStateMachine,
) -> list[cloudwatch.IWidget]:
    """A header, one graph per training metric (one line per run), and the runs' outcomes."""
    widgets: list[cloudwatch.IWidget] = [
        _text(
            f"## Training `{name_base}`\n"
            f"Metric definitions of the jobs `{name_base}-<timestamp>` (instance algo-1), one "
            "line per run; runs of the last two weeks are found."
        )
    ]
    if not metrics:
        widgets.append(
            _text(
                "No metric definitions: give the estimator `metric_definitions` "
                "(`[{'Name': ..., 'Regex': ...}]`) to chart the reward here."
            )
        )
    for name, metric in metrics.items():
        widgets.append(
            cloudwatch.GraphWidget(
                title=f"Training: {name}",
                left=[metric],
                width=_HALF,
                legend_position=cloudwatch.LegendPosition.RIGHT,
            )
        )
    outcome_period = Duration.minutes(5)
    widgets.append(
        cloudwatch.GraphWidget(
            title="Training runs",
            left=[
                state_machine.metric_started(
                    period=outcome_period, statistic="Sum", label="Started"
                ),
                state_machine.metric_succeeded(
                    period=outcome_period, statistic="Sum", label="Succeeded"
                ),
                state_machine.metric_failed(period=outcome_period, statistic="Sum", label="Failed"),
                state_machine.metric_timed_out(
                    period=outcome_period, statistic="Sum", label="Timed out"
                ),
                state_machine.metric_aborted(
                    period=outcome_period, statistic="Sum", label="Aborted"
                ),
            ],
            view=cloudwatch.GraphWidgetView.BAR,
            width=_HALF,
        )
    )
    return widgets


def endpoint_widgets(endpoint: MonitoredEndpoint) -> list[cloudwatch.IWidget]:
    """Requests, latency, errors, instances and instance utilization of the endpoint variant."""
    period = ENDPOINT_PERIOD

    def summed(metric: cloudwatch.Metric, label: str) -> cloudwatch.Metric:
        return metric.with_(statistic="Sum", period=period, label=label)

    latency = endpoint.metric_model_latency()
    return [
        _text(
            f"## Endpoint `{endpoint.endpoint_name}`, variant `{endpoint.variant_name}`\n"
            "Requests and errors are summed per 5 minutes; model latency is in microseconds."
        ),
        cloudwatch.GraphWidget(
            title="Invocations",
            left=[summed(endpoint.metric_invocations(), "Invocations")],
            width=_THIRD,
        ),
        cloudwatch.GraphWidget(
            title="Model latency (microseconds)",
            left=[
                latency.with_(statistic="Average", period=period, label="Average"),
                latency.with_(statistic="p99", period=period, label="p99"),
            ],
            width=_THIRD,
        ),
        cloudwatch.GraphWidget(
            title="Errors",
            left=[
                summed(endpoint.metric_invocation4xx_errors(), "4xx"),
                summed(endpoint.metric_invocation5xx_errors(), "5xx"),
                summed(endpoint.metric_invocation_model_errors(), "Model errors"),
                errors(endpoint, period),
            ],
            width=_THIRD,
        ),
        cloudwatch.GraphWidget(
            title="Instances",
            left=[instances(endpoint, Duration.minutes(1))],
            width=_THIRD,
        ),
        cloudwatch.GraphWidget(
            title="Instance utilization (%)",
            left=[
                instance_utilization(endpoint, "CPUUtilization", period),
                instance_utilization(endpoint, "MemoryUtilization", period),
                instance_utilization(endpoint, "DiskUtilization", period),
            ],
            width=_THIRD,
        ),
    ]


def alarm_widget(title: str, alarms: Sequence[cloudwatch.IAlarm]) -> cloudwatch.AlarmStatusWidget:
    """The alarms' current state, in one line of the dashboard."""
    return cloudwatch.AlarmStatusWidget(alarms=list(alarms), title=title, width=_THIRD)
