"""The alarms of one estimator and the SNS topic they notify.

The topic created by default is not encrypted, on purpose: CloudWatch alarms cannot publish to a
topic encrypted with the AWS managed key (``alias/aws/sns``; its policy cannot be changed to let
``cloudwatch.amazonaws.com`` use it), and a customer managed key costs a key per estimator and a
key policy for a service principal on ``*``. A notification holds the alarm's name, description,
state and metric values only, no training data and no request payloads; accounts that require
encrypted topics pass their own (``Monitoring(alarm_topic=...)``, a customer managed key whose
policy lets CloudWatch use it). The HIPAA and NIST 800-53 R5 finding is acknowledged with that
reason; publishing requires TLS (``enforce_ssl``, AwsSolutions-SNS3).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .._iam import acknowledge_compliance
from .endpoint_metrics import MonitoredEndpoint, errors
from .options import Monitoring

#: Why the created topic is not KMS-encrypted (HIPAA/NIST ``SNSEncryptedKMS``).
UNENCRYPTED_TOPIC_REASON = (
    "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key "
    "(alias/aws/sns), and alarm notifications carry alarm names, states and metric values only "
    "(no training data, no request payloads). Accounts that require encryption pass their own "
    "topic with a customer managed key that lets cloudwatch.amazonaws.com use it "
    "(Monitoring(alarm_topic=...))."
)


def alarm_topic(scope: Construct) -> sns.Topic:
    """``AlarmTopic``: TLS-only, and CloudWatch alarms of this account may publish to it.

    ``enforce_ssl`` gives the topic a resource policy, which replaces SNS's default one; without
    an explicit grant CloudWatch's alarm actions would then be refused ("... is not authorized to
    perform: SNS:Publish"), so the grant is written out, scoped to this account's alarms.
    """
    topic = sns.Topic(scope, "AlarmTopic", enforce_ssl=True)
    stack = Stack.of(scope)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                },
            },
        )
    )
    acknowledge_compliance(topic, "SNSEncryptedKMS", UNENCRYPTED_TOPIC_REASON)
    return topic


def notify(alarms: Sequence[cloudwatch.IAlarm], topic: sns.ITopic) -> None:
    """Send each alarm's ALARM state to ``topic`` (imported alarms cannot take actions: skipped)."""
    action = actions.SnsAction(topic)
    for alarm in alarms:
        add = getattr(alarm, "add_alarm_action", None)
        if callable(add):
            add(action)


def training_failed_alarm(
    scope: Construct, state_machine: sfn.IStateMachine, name_base: str, options: Monitoring
) -> cloudwatch.Alarm:
    """``TrainingFailedAlarm``: an execution of the training state machine failed or timed out.

    Aborted executions are left out: deleting or replacing the training (a new fingerprint, a
    stack deletion) stops the running execution on purpose.
    """
    period = options.alarm_period
    failures = cloudwatch.MathExpression(
        expression="FILL(failed, 0) + FILL(timedOut, 0)",
        using_metrics={
            "failed": state_machine.metric_failed(period=period, statistic="Sum"),
            "timedOut": state_machine.metric_timed_out(period=period, statistic="Sum"),
        },
        label="Failed or timed-out trainings",
        period=period,
    )
    return cloudwatch.Alarm(
        scope,
        "TrainingFailedAlarm",
        metric=failures,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=(
            f"A training of {name_base} failed or timed out. The execution's error (Step "
            f"Functions console) and the job's log streams ({name_base}-<timestamp>/algo-* in "
            "/aws/sagemaker/TrainingJobs) say why."
        ),
    )


def endpoint_errors_alarm(
    scope: Construct, endpoint: MonitoredEndpoint, options: Monitoring
) -> cloudwatch.Alarm:
    """``EndpointErrorsAlarm``: ``endpoint_error_threshold`` failed requests or more in a period."""
    threshold = options.endpoint_error_threshold
    return cloudwatch.Alarm(
        scope,
        "EndpointErrorsAlarm",
        metric=errors(endpoint, options.alarm_period),
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=(
            f"Endpoint {endpoint.endpoint_name} (variant {endpoint.variant_name}) answered "
            f"{threshold} or more requests with a 5xx or model error in "
            f"{options.alarm_period.to_human_string()}. The endpoint's log group "
            f"/aws/sagemaker/Endpoints/{endpoint.endpoint_name} says why."
        ),
    )
