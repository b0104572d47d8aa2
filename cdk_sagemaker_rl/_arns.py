"""ARN builders: every policy names what one estimator owns, built the same way everywhere.

SageMaker lowercases names in ARNs, so every builder lowercases the name (or base) it is given.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack

#: Where SageMaker writes training job logs; streams are ``<job name>/algo-<n>-<epoch>``.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_COLON = ArnFormat.COLON_RESOURCE_NAME


def sagemaker_arn(stack: Stack, resource: str, name: str) -> str:
    return stack.format_arn(service="sagemaker", resource=resource, resource_name=name.lower())


def named_after(stack: Stack, resource: str, base: str) -> str:
    """Every ``resource`` (training-job, model, endpoint-config) named ``<base>-...``."""
    return sagemaker_arn(stack, resource, f"{base}-*")


def training_log_group(stack: Stack) -> str:
    """The log group itself (``logs:CreateLogGroup``)."""
    return stack.format_arn(
        service="logs", resource="log-group", resource_name=TRAINING_LOG_GROUP, arn_format=_COLON
    )


def training_log_group_streams(stack: Stack) -> str:
    """The log group as IAM names it for group-level actions (``DescribeLogStreams``)."""
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{TRAINING_LOG_GROUP}:*",
        arn_format=_COLON,
    )


def training_log_streams(stack: Stack, base: str) -> str:
    """The log streams of one estimator's jobs: ``<job name>/...`` with job = ``<base>-...``."""
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{TRAINING_LOG_GROUP}:log-stream:{base}-*",
        arn_format=_COLON,
    )


def executions(stack: Stack, state_machine_name: str) -> str:
    """Every execution of one state machine."""
    return stack.format_arn(
        service="states",
        resource="execution",
        resource_name=f"{state_machine_name}:*",
        arn_format=_COLON,
    )
