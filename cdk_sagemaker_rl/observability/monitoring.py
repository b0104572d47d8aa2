"""``EstimatorMonitoring``: one estimator's dashboard, alarms and alarm topic.

The estimator creates it when it trains (it knows the training state machine and the metric
definitions then) and hands it the endpoint when it deploys, so a stack that only trains still
gets its training dashboard and alarm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ..errors import ValidationError, invalid
from .alarms import alarm_topic, endpoint_errors_alarm, notify, training_failed_alarm
from .dashboard import DEFAULT_INTERVAL, alarm_widget, endpoint_widgets, training_widgets
from .endpoint_metrics import MonitoredEndpoint, missing_members
from .options import SEE, Monitoring
from .training_metrics import (
    app_training_metric,
    check_name_base,
    ordered_metric_names,
    register_base,
)


def _definitions(value: object) -> list[Mapping[str, str]]:
    allowed = "a list of {'Name': ..., 'Regex': ...} dicts (the estimator's metric_definitions)"
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise invalid("metric_definitions", value, allowed, see=SEE)
    for definition in value:
        if not isinstance(definition, Mapping) or not isinstance(definition.get("Name"), str):
            raise invalid("metric_definitions", definition, allowed, see=SEE)
    return list(value)


def _state_machine(value: object) -> sfn.IStateMachine:
    if not (
        callable(getattr(value, "metric_failed", None))
        and callable(getattr(value, "grant_start_execution", None))
    ):
        raise invalid("state_machine", value, "an aws_stepfunctions.IStateMachine", see=SEE)
    return value  # type: ignore[return-value]


class EstimatorMonitoring(Construct):
    """A dashboard of the training (reward per run) and endpoint, alarms, and their SNS topic.

    Construct ids (stable: they are logical ids): ``Dashboard``, ``AlarmTopic`` (only when no
    topic is given), ``TrainingFailedAlarm``, ``EndpointErrorsAlarm`` (only when the endpoint
    brings no alarms of its own).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_base: str,
        metric_definitions: Sequence[Mapping[str, str]],
        state_machine: sfn.IStateMachine,
        options: Monitoring | None = None,
    ) -> None:
        if options is None:
            options = Monitoring()
        elif not isinstance(options, Monitoring):
            raise invalid("monitoring", options, "a Monitoring(...) or None", see=SEE)
        base = check_name_base(name_base)
        definitions = _definitions(metric_definitions)
        machine = _state_machine(state_machine)
        names = ordered_metric_names(definitions, options.training_metric_names)
        super().__init__(scope, construct_id)
        self.options = options
        self.name_base = base
        self.state_machine = machine
        self._endpoint: MonitoredEndpoint | None = None
        #: Alarms that notify the topic: the training's, then the endpoint's.
        self.alarms: list[cloudwatch.IAlarm] = []
        self.training_failed_alarm: cloudwatch.Alarm | None = None
        self.endpoint_alarms: list[cloudwatch.IAlarm] = []

        excluding = register_base(self, base)
        #: Metric definition name -> its runs as a search expression (for graphs, not alarms).
        self.training_metrics: dict[str, cloudwatch.IMetric] = {
            name: app_training_metric(base, name, excluding) for name in names
        }

        self.alarm_topic: sns.ITopic | None = None
        if options.alarms:
            self.alarm_topic = options.alarm_topic or alarm_topic(self)
            self.training_failed_alarm = training_failed_alarm(self, machine, base, options)
            self.alarms.append(self.training_failed_alarm)
            notify([self.training_failed_alarm], self.alarm_topic)

        self.dashboard: cloudwatch.Dashboard | None = None
        if options.dashboard:
            self.dashboard = cloudwatch.Dashboard(
                self,
                "Dashboard",
                dashboard_name=options.dashboard_name,
                default_interval=DEFAULT_INTERVAL,
            )
            widgets = training_widgets(base, self.training_metrics, machine)
            if self.training_failed_alarm is not None:
                widgets.append(alarm_widget("Training alarm", [self.training_failed_alarm]))
            self.dashboard.add_widgets(*widgets)

    def add_endpoint(
        self,
        endpoint: MonitoredEndpoint,
        *,
        alarms: Sequence[cloudwatch.IAlarm] | None = None,
    ) -> None:
        """Chart ``endpoint`` and alarm on its errors.

        ``alarms`` are alarms the endpoint already has (e.g. ``RLEndpoint.alarms``, its rollback
        alarms): they notify the topic and show on the dashboard, and no ``EndpointErrorsAlarm``
        is created. Without any, that alarm watches 5xx and model errors.
        """
        missing = missing_members(endpoint)
        if missing:
            raise invalid(
                "endpoint",
                endpoint,
                "an endpoint with " + ", ".join(missing) + " (an RLEndpoint)",
                see=SEE,
            )
        given = list(alarms or [])
        for alarm in given:
            if not hasattr(alarm, "alarm_arn"):
                raise invalid("alarms", alarm, "aws_cloudwatch.IAlarm objects", see=SEE)
        if self._endpoint is not None:
            raise ValidationError(
                f"add_endpoint() was already called on {self.node.path}: an estimator serves "
                f"one endpoint ({self._endpoint.endpoint_name}). See {SEE}."
            )
        self._endpoint = endpoint
        endpoint_alarms = given
        if self.options.alarms and not given:
            endpoint_alarms = [endpoint_errors_alarm(self, endpoint, self.options)]
        if self.options.alarms and self.alarm_topic is not None:
            notify(endpoint_alarms, self.alarm_topic)
            self.alarms.extend(endpoint_alarms)
        self.endpoint_alarms = endpoint_alarms
        if self.dashboard is not None:
            widgets = endpoint_widgets(endpoint)
            if endpoint_alarms:
                widgets.append(alarm_widget("Endpoint alarms", endpoint_alarms))
            self.dashboard.add_widgets(*widgets)
