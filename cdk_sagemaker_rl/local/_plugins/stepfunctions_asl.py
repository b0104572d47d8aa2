"""What moto's interpreter does differently from Step Functions in the states the library uses.

- A ``Fail`` state may report any error name, ``States.*`` ones included, when it takes it from
  a path (``ErrorPath: $.Error.Error`` after a ``Catch`` of ``States.TaskFailed``, say). moto's
  interpreter builds every ``Fail`` error as a custom error name, which refuses the prefix, so the
  execution crashed (``States.Runtime``, the cause a ``ValueError``) instead of failing with the
  error it reports. Here a ``States.*`` name is the interpreter's own error (``States.TaskFailed``
  then matches a parent's ``ErrorEquals`` as it does on AWS) or, if unknown to it, the name as it
  is.
- ``aws-sdk`` tasks name a service's errors ``<Service>.<Exception>`` with the SDK's service name
  (``SageMaker.SageMakerException`` for an unmodelled ``ValidationException``,
  ``ApplicationAutoScaling.ValidationException``...); moto knows only DynamoDB's and Step
  Functions' names and fell back to the lower-case service id (``sagemaker.sagemakerException``).
- ``aws-sdk`` task output holds the SDK's timestamps as datetimes, which the interpreter cannot
  serialise (``States.JsonToString($)`` of a DescribeEndpoint answer failed the task with
  ``States.Runtime``): they are ISO 8601 text in UTC (``2024-05-01T12:00:00.123Z``), as the
  ``aws-sdk`` integrations render them.
"""

from __future__ import annotations

import datetime
import importlib
from typing import Any

__all__ = ["install"]

#: aws-sdk service ids -> the service name in their error names.
_SERVICE_ERROR_NAMES = {
    "sagemaker": "SageMaker",
    "applicationautoscaling": "ApplicationAutoScaling",
    "lambda": "Lambda",
    "s3": "S3",
}


def _error_name(value: str) -> Any:
    """The interpreter's error name object for a name a Fail state reports."""
    names = "moto.stepfunctions.parser.asl.component.common.error_name"
    custom = importlib.import_module(f"{names}.custom_error_name")
    if not value.startswith(custom.ILLEGAL_CUSTOM_ERROR_PREFIX):
        return custom.CustomErrorName(value)
    states = importlib.import_module(f"{names}.states_error_name")
    try:
        return states.StatesErrorName.from_name(value)
    except ValueError:
        error_name_class = importlib.import_module(f"{names}.error_name").ErrorName
        return error_name_class(error_name=value)


def _fail_eval_state(self: Any, env: Any) -> None:
    """moto's ``StateFail._eval_state`` with :func:`_error_name` for the error."""
    api = importlib.import_module("moto.stepfunctions.parser.api")
    failure = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.common.error_name.failure_event"
    )
    event_details = importlib.import_module(
        "moto.stepfunctions.parser.asl.eval.event.event_detail"
    ).EventDetails

    details: dict[str, Any] = {}
    error_value = None
    if self.error:
        self.error.eval(env=env)
        error_value = env.stack.pop()
        details["error"] = error_value
    if self.cause:
        self.cause.eval(env=env)
        details["cause"] = env.stack.pop()
    raise failure.FailureEventException(
        failure_event=failure.FailureEvent(
            env=env,
            error_name=_error_name(str(error_value)) if error_value else None,
            event_type=api.HistoryEventType.TaskFailed,
            event_details=event_details(taskFailedEventDetails=details),
        )
    )


def _iso_timestamps_in_place(value: Any) -> Any:
    """Datetimes in ``value`` (a dict or list, changed in place) as ISO 8601 text in UTC."""
    if isinstance(value, dict):
        for key, inner in value.items():
            value[key] = _iso_timestamps_in_place(inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            value[index] = _iso_timestamps_in_place(inner)
    elif isinstance(value, datetime.datetime):
        utc = value.astimezone(datetime.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return value


def _aws_sdk_normalise_response(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    _iso_timestamps_in_place(response)


def install() -> None:
    """Patch moto's Fail state and aws-sdk tasks (idempotent)."""
    from moto.stepfunctions.parser.asl.component.state.fail.state_fail import StateFail

    aws_sdk = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
        "state_task_service_aws_sdk"
    )
    StateFail._eval_state = _fail_eval_state  # type: ignore[method-assign]
    aws_sdk._SERVICE_ERROR_NAMES.update(_SERVICE_ERROR_NAMES)
    aws_sdk.StateTaskServiceAwsSdk._normalise_response = _aws_sdk_normalise_response
