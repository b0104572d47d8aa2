"""ARN builders: every policy names what one estimator owns, built the same way everywhere.

SageMaker lowercases names in ARNs, so every builder lowercases the name (or base) it is given.
The same ARN is asked for several times per estimator (a statement, then its cdk-nag
acknowledgement); each stack answers once per distinct ARN (``Stack.format_arn`` is a round trip
to the jsii node process, and its answer depends only on the stack and the parts).
"""

from __future__ import annotations

import weakref
from typing import Any

from aws_cdk import ArnFormat, Stack

#: Where SageMaker writes training job logs; streams are ``<job name>/algo-<n>-<epoch>``.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_COLON = ArnFormat.COLON_RESOURCE_NAME
#: Per stack (held weakly: apps built one after another in a process each get their own):
#: format_arn keyword arguments -> the ARN.
_FORMATTED: weakref.WeakKeyDictionary[Stack, dict[tuple[tuple[str, Any], ...], str]] = (
    weakref.WeakKeyDictionary()
)


def _format_arn(stack: Stack, **parts: Any) -> str:
    known = _FORMATTED.get(stack)
    if known is None:
        known = _FORMATTED[stack] = {}
    key = tuple(sorted(parts.items()))
    arn = known.get(key)
    if arn is None:
        arn = known[key] = stack.format_arn(**parts)
    return arn


def sagemaker_arn(stack: Stack, resource: str, name: str) -> str:
    return _format_arn(stack, service="sagemaker", resource=resource, resource_name=name.lower())


def named_after(stack: Stack, resource: str, base: str) -> str:
    """Every ``resource`` (training-job, model, endpoint-config) named ``<base>-...``."""
    return sagemaker_arn(stack, resource, f"{base}-*")


def training_log_group(stack: Stack) -> str:
    """The log group itself (``logs:CreateLogGroup``)."""
    return _format_arn(
        stack,
        service="logs",
        resource="log-group",
        resource_name=TRAINING_LOG_GROUP,
        arn_format=_COLON,
    )


def training_log_group_streams(stack: Stack) -> str:
    """The log group as IAM names it for group-level actions (``DescribeLogStreams``)."""
    return _format_arn(
        stack,
        service="logs",
        resource="log-group",
        resource_name=f"{TRAINING_LOG_GROUP}:*",
        arn_format=_COLON,
    )


def training_log_streams(stack: Stack, base: str) -> str:
    """The log streams of one estimator's jobs: ``<job name>/...`` with job = ``<base>-...``."""
    return _format_arn(
        stack,
        service="logs",
        resource="log-group",
        resource_name=f"{TRAINING_LOG_GROUP}:log-stream:{base}-*",
        arn_format=_COLON,
    )


def executions(stack: Stack, state_machine_name: str) -> str:
    """Every execution of one state machine."""
    return _format_arn(
        stack,
        service="states",
        resource="execution",
        resource_name=f"{state_machine_name}:*",
        arn_format=_COLON,
    )
