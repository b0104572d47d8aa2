"""``AWS::CloudWatch::Alarm`` in templates: created in moto's CloudWatch, with its ``Arn``.

moto has no CloudFormation model for alarms, so a template with alarms deployed without them and
failed as soon as something referenced one (the estimator's dashboard shows its alarms, the
endpoint's ``DeploymentConfig`` names its rollback alarms). Here each alarm is put into moto's
CloudWatch backend (DescribeAlarms lists it) under the name CloudFormation would give it. Alarms
are stored, not evaluated: nothing publishes metrics locally (see docs/local-mode.md).
"""

from __future__ import annotations

from typing import Any

from .local_model import LocalModel

__all__ = ["LocalAlarm"]


def _backend(account_id: str, region_name: str) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account_id][region_name]


class LocalAlarm(LocalModel):
    """An alarm; ``Ref`` is its name, ``Arn`` its ARN."""

    CFN_TYPE = "AWS::CloudWatch::Alarm"

    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.physical_resource_id = name
        self.arn = f"arn:aws:cloudwatch:{region_name}:{account_id}:alarm:{name}"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Arn":
            return self.arn
        raise KeyError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalAlarm:
        props = cloudformation_json.get("Properties", {})
        name = str(props.get("AlarmName") or resource_name)
        _backend(account_id, region_name).put_metric_alarm(
            name=name,
            namespace=props.get("Namespace", ""),
            metric_name=props.get("MetricName", ""),
            comparison_operator=props.get("ComparisonOperator", ""),
            evaluation_periods=int(props.get("EvaluationPeriods", 1)),
            period=int(props.get("Period", 60)),
            threshold=float(props.get("Threshold", 0)),
            statistic=props.get("Statistic", ""),
            description=props.get("AlarmDescription", ""),
            dimensions=list(props.get("Dimensions", [])),
            alarm_actions=list(props.get("AlarmActions", [])),
            treat_missing_data=props.get("TreatMissingData"),
        )
        return cls(name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: LocalAlarm,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LocalAlarm:
        """PutMetricAlarm replaces an alarm of the same name, as an update does."""
        return cls.create_from_cloudformation_json(
            original_resource.name, cloudformation_json, account_id, region_name
        )

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_alarms([self.name])
