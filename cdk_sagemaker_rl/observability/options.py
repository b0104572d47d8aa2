"""``Monitoring``: what an estimator's observability creates, checked before anything is built.

Every switch is here so that a stack can turn off what it pays for or does not want (a dashboard
costs money per month, an alarm topic needs subscribers to be useful) without losing the rest, and
so that a wrong value fails ``cdk synth`` with the value named rather than producing a dashboard
that charts nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration
from aws_cdk import aws_sns as sns

from .._tokens import is_token_string
from ..errors import invalid

SEE = "README.md#monitoring"
#: CloudWatch's rule for dashboard names (PutDashboard ``DashboardName``).
DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
#: The AWS managed SNS key: its policy cannot be changed, so CloudWatch can never use it.
AWS_MANAGED_SNS_KEY = "alias/aws/sns"
_DAY_SECONDS = 86_400


def is_topic(value: object) -> bool:
    """Duck-typed ``sns.ITopic``: jsii interfaces cannot be checked with ``isinstance``."""
    return callable(getattr(value, "grant_publish", None)) and callable(
        getattr(value, "add_subscription", None)
    )


def check_topic(value: object, argument: str) -> sns.ITopic:
    """An SNS topic CloudWatch alarms can publish to, as far as synth time can tell.

    A topic encrypted with the AWS managed key accepts the alarm actions and then drops every
    notification (the key's policy does not let ``cloudwatch.amazonaws.com`` use it), so that
    key is refused here instead of failing silently in production.
    """
    if not is_topic(value):
        raise invalid(
            argument, value, "an aws_sns.ITopic (sns.Topic or Topic.from_topic_arn)", see=SEE
        )
    key = getattr(value, "master_key", None)
    if key is not None:
        key_arn = str(getattr(key, "key_arn", ""))
        if key_arn == AWS_MANAGED_SNS_KEY or key_arn.endswith(f":{AWS_MANAGED_SNS_KEY}"):
            raise invalid(
                argument,
                value,
                "a topic without encryption or encrypted with a customer managed KMS key whose "
                f"policy lets cloudwatch.amazonaws.com use it ({AWS_MANAGED_SNS_KEY} cannot: "
                "CloudWatch alarms drop every notification to such a topic; see https://docs.aws."
                "amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services)",
                see=SEE,
            )
    return value  # type: ignore[return-value]


def _check_bool(value: object, argument: str) -> None:
    if not isinstance(value, bool):
        raise invalid(argument, value, "True or False", see=SEE)


def _check_period(value: object) -> None:
    if not isinstance(value, Duration):
        raise invalid("Monitoring alarm_period", value, "an aws_cdk.Duration", see=SEE)
    seconds = value.to_seconds()
    if seconds < 60 or seconds > _DAY_SECONDS or seconds % 60:
        raise invalid(
            "Monitoring alarm_period",
            value.to_human_string(),
            "a whole number of minutes from 1 minute to 1 day (CloudWatch alarm periods)",
            see=SEE,
        )


def _metric_names(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    allowed = "a list of metric definition names (strings), each once"
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise invalid("Monitoring training_metric_names", value, allowed, see=SEE)
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise invalid("Monitoring training_metric_names", name, allowed, see=SEE)
    if len(set(names)) != len(names):
        raise invalid("Monitoring training_metric_names", list(names), allowed, see=SEE)
    return names


@dataclass(frozen=True, kw_only=True)
class Monitoring:
    """What to create for one estimator: a dashboard, alarms and where the alarms notify.

    ``alarm_topic`` receives every alarm (training failed, endpoint errors); without one a topic
    is created. ``endpoint_error_threshold`` is the number of failed requests (the larger of the
    5xx and model-error counts) in one ``alarm_period`` that raises the endpoint alarm.
    ``training_metric_names`` picks and orders the metric definitions charted (default: all of
    them, reward metrics first); ``dashboard_name`` is left to CloudFormation by default.
    """

    dashboard: bool = True
    alarms: bool = True
    alarm_topic: sns.ITopic | None = None
    dashboard_name: str | None = None
    endpoint_error_threshold: int = 5
    alarm_period: Duration = field(default_factory=lambda: Duration.minutes(5))
    training_metric_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        _check_bool(self.dashboard, "Monitoring dashboard")
        _check_bool(self.alarms, "Monitoring alarms")
        if self.alarm_topic is not None:
            check_topic(self.alarm_topic, "Monitoring alarm_topic")
            if not self.alarms:
                raise invalid(
                    "Monitoring alarm_topic",
                    self.alarm_topic,
                    "no topic with alarms=False (there is nothing to notify about); drop one "
                    "of the two",
                    see=SEE,
                )
        name = self.dashboard_name
        if name is not None and not (
            isinstance(name, str) and (is_token_string(name) or DASHBOARD_NAME.match(name))
        ):
            raise invalid(
                "Monitoring dashboard_name",
                name,
                "1-255 letters, digits, '-' and '_' (CloudWatch dashboard names), or None for a "
                "name CloudFormation generates",
                see=SEE,
            )
        threshold = self.endpoint_error_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise invalid(
                "Monitoring endpoint_error_threshold",
                threshold,
                "a whole number of failed requests per alarm period, at least 1",
                see=SEE,
            )
        _check_period(self.alarm_period)
        object.__setattr__(self, "training_metric_names", _metric_names(self.training_metric_names))

    @classmethod
    def disabled(cls) -> Monitoring:
        """No dashboard, no alarms, no topic: the estimator is not monitored at all."""
        return cls(dashboard=False, alarms=False)

    @property
    def enabled(self) -> bool:
        """Whether anything is created (a caller can skip the construct altogether)."""
        return self.dashboard or self.alarms
