"""Step Functions that can run the training state machine and TrainAndServe.

These gaps of moto's interpreter (``{"stepfunctions": {"execute_state_machine": true}}``) stand
between it and the library's state machines:

- CloudFormation creates state machines in the non-executing backend, so StartExecution on them
  says StateMachineDoesNotExist: the ``AWS::StepFunctions::StateMachine`` model is pointed at the
  executing backend (the one the API uses when executions are enabled);
- ``sagemaker`` is an unsupported integration and ``.sync`` is refused: a SageMaker task service
  is registered whose ``createTrainingJob.sync`` creates the job, then polls DescribeTrainingJob
  until Completed (the task's output is the description, timestamps as epoch milliseconds like
  Step Functions renders them) or Failed/Stopped (the task fails with ``States.TaskFailed`` and
  the description, FailureReason included, as the cause, which is how Step Functions reports a
  failed ``.sync`` job); a SageMaker API error (a duplicate job name, say) is
  ``SageMaker.AmazonSageMakerException`` as in Step Functions; stopping the execution stops the
  training job, as the ``.sync`` integration does;
- DescribeExecution serialises the output with ``json.dumps``, which fails (500) on timestamps
  left in an output (an ``aws-sdk`` task returning a description): it is serialised with
  datetimes as ISO strings instead;
- ``states:startExecution`` (TrainAndServe's ``Train``: the training machine as a nested
  ``.sync:2`` execution) failed with ``States.Runtime`` on every request: see
  :mod:`.stepfunctions_nested`;
- a ``Fail`` state reporting a ``States.*`` error from a path crashed the execution,
  ``aws-sdk`` error names were lower case and their timestamps broke ``States.JsonToString``:
  see :mod:`.stepfunctions_asl`.

The optimized SageMaker integrations without ``.sync`` (``createModel``, ``createEndpointConfig``,
``createEndpoint``, ``updateEndpoint``) are plain calls to this emulator's SageMaker, so an endpoint
a workflow creates or updates is served as one CloudFormation creates.
"""

from __future__ import annotations

import datetime
import importlib
from collections.abc import Callable
from typing import Any

from . import stepfunctions_asl, stepfunctions_nested
from .runtime import LOG
from .sync_tasks import StopsWhatItAwaits

__all__ = ["install", "json_safe"]

#: SageMaker API actions whose ``.sync`` variant the emulator runs (Step Functions supports
#: createTrainingJob, createTransformJob, createProcessingJob and createHyperParameterTuningJob).
_SYNC_ACTIONS = {"createtrainingjob"}

_TERMINAL = {"Completed", "Failed", "Stopped"}


def json_safe(value: Any) -> Any:
    """``value`` with datetimes as epoch milliseconds, the way Step Functions renders a
    service's timestamps in task output."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: json_safe(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [json_safe(inner) for inner in value]
    return value


def _moto(module: str, name: str) -> Any:
    """An attribute of a moto module, untyped: the plugins use moto's internals as they are."""
    return getattr(importlib.import_module(module), name)


def _sagemaker_service_class() -> type[Any]:
    """Build the task service class (moto's interpreter modules are imported lazily)."""
    from botocore.exceptions import ClientError

    asl = "moto.stepfunctions.parser.asl"
    error_names = f"{asl}.component.common.error_name"
    service = f"{asl}.component.state.exec.state_task.service"
    history_event_type = _moto("moto.stepfunctions.parser.api", "HistoryEventType")
    task_failed_details = _moto("moto.stepfunctions.parser.api", "TaskFailedEventDetails")
    custom_error_name = _moto(f"{error_names}.custom_error_name", "CustomErrorName")
    failure_event = _moto(f"{error_names}.failure_event", "FailureEvent")
    failure_event_exception = _moto(f"{error_names}.failure_event", "FailureEventException")
    states_error_name = _moto(f"{error_names}.states_error_name", "StatesErrorName")
    states_error_type = _moto(f"{error_names}.states_error_name_type", "StatesErrorNameType")
    condition = _moto(f"{service}.resource", "ResourceCondition")
    callback_base = _moto(f"{service}.state_task_service_callback", "StateTaskServiceCallback")
    event_details = _moto(f"{asl}.eval.event.event_detail", "EventDetails")
    boto_client_for = _moto(f"{asl}.utils.boto_client", "boto_client_for")
    to_json_str = _moto(f"{asl}.utils.encoding", "to_json_str")

    class SageMakerTaskService(StopsWhatItAwaits, callback_base):  # type: ignore[misc,valid-type]
        """``arn:aws:states:::sagemaker:<action>[.sync|.waitForTaskToken]``."""

        def __init__(self) -> None:
            super().__init__(
                supported_integration_patterns={
                    condition.WaitForTaskToken,
                    condition.Sync,
                }
            )
            self._sync_job: tuple[Any, str] | None = None

        def _validate_service_integration_is_supported(self) -> None:
            action = str(self.resource.api_action).lower()
            if self.resource.condition == condition.Sync and action not in _SYNC_ACTIONS:
                raise ValueError(
                    f"{self.resource.resource_arn}: the local emulator runs .sync for "
                    "sagemaker:createTrainingJob only"
                )
            if self.resource.condition == condition.Sync2:
                raise ValueError(
                    f"{self.resource.resource_arn}: .sync:2 is not a SageMaker pattern"
                )

        def _client(self, region: str, credentials: Any) -> Any:
            return boto_client_for(
                region=region, service="sagemaker", state_credentials=credentials
            )

        def _eval_service_task(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> None:
            client = self._client(resource_runtime_part.region, state_credentials)
            action = self._get_boto_service_action()
            response = getattr(client, action)(**normalised_parameters)
            response.pop("ResponseMetadata", None)
            env.stack.append(json_safe(response))

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if isinstance(ex, ClientError):
                error = ex.response.get("Error", {})
                metadata = ex.response.get("ResponseMetadata", {})
                cause = (
                    f"{error.get('Message', '')} (Service: AmazonSageMaker; Status Code: "
                    f"{metadata.get('HTTPStatusCode', 400)}; Error Code: {error.get('Code', '')}; "
                    f"Request ID: {metadata.get('RequestId', '')}; Proxy: null)"
                )
                name = "SageMaker.AmazonSageMakerException"
                return failure_event(
                    env=env,
                    error_name=custom_error_name(name),
                    event_type=history_event_type.TaskFailed,
                    event_details=event_details(
                        taskFailedEventDetails=task_failed_details(
                            error=name,
                            cause=cause,
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            return super()._from_error(env=env, ex=ex)

        def _build_sync_resolver(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> Callable[[], Any] | None:
            env.stack.pop()  # CreateTrainingJob's answer: the description replaces it
            client = self._client(resource_runtime_part.region, state_credentials)
            job_name = str(normalised_parameters["TrainingJobName"])
            self._sync_job = (client, job_name)

            def resolve() -> Any:
                description = client.describe_training_job(TrainingJobName=job_name)
                description.pop("ResponseMetadata", None)
                status = description.get("TrainingJobStatus")
                if status not in _TERMINAL:
                    return None
                output = json_safe(description)
                if status == "Completed":
                    return output
                raise failure_event_exception(
                    failure_event(
                        env=env,
                        error_name=states_error_name(typ=states_error_type.StatesTaskFailed),
                        event_type=history_event_type.TaskFailed,
                        event_details=event_details(
                            taskFailedEventDetails=task_failed_details(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=states_error_type.StatesTaskFailed.to_name(),
                                cause=to_json_str(output),
                            )
                        ),
                    )
                )

            return resolve

        def _awaited(self) -> bool:
            return self._sync_job is not None

        def _stop_awaited(self) -> None:
            """The execution stopped (or timed out) while waiting: stop the job, as Step
            Functions' ``.sync`` integration does."""
            assert self._sync_job is not None
            client, job_name = self._sync_job
            try:
                status = client.describe_training_job(TrainingJobName=job_name)["TrainingJobStatus"]
                if status == "InProgress":
                    LOG.info("execution stopped: stopping training job %s", job_name)
                    client.stop_training_job(TrainingJobName=job_name)
            except Exception:
                LOG.exception("could not stop training job %s", job_name)

    return SageMakerTaskService


def _describe_execution(self: Any) -> Any:
    """DescribeExecution whose output survives timestamps (moto uses plain ``json.dumps``)."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    arn = self._get_param("executionArn")
    execution = self.stepfunction_backend.describe_execution(arn)
    response: dict[str, Any] = {
        "executionArn": arn,
        "input": execution.execution_input,
        "name": execution.name,
        "startDate": execution.start_date,
        "stateMachineArn": execution.state_machine_arn,
        "status": execution.status,
    }
    finished = {ExecutionStatus.SUCCEEDED, ExecutionStatus.ABORTED, ExecutionStatus.FAILED}
    if execution.status in finished or execution.status == "TIMED_OUT":
        response["stopDate"] = execution.stop_date
    if execution.status == ExecutionStatus.SUCCEEDED:
        output = execution.output
        if isinstance(output, str):
            response["output"] = output
        elif output is not None:
            response["output"] = to_json_str(output, separators=(",", ":"))
        response["outputDetails"] = execution.output_details
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    return ActionResult(response)


_installed = False


def install() -> None:
    """Patch moto's Step Functions (once per process) and enable execution."""
    global _installed
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    if _installed:
        return
    from moto.stepfunctions import models as sfn_models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends
    from moto.stepfunctions.responses import StepFunctionResponse

    # The CloudFormation model looks the backend up in this module global at call time.
    setattr(sfn_models, "stepfunctions_backends", stepfunctions_parser_backends)  # noqa: B010

    service_class = _sagemaker_service_class()
    factory = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_factory"
    )
    original_factory = factory.state_task_service_for

    states_class = stepfunctions_nested.states_service_class()

    def state_task_service_for(service_name: str) -> Any:
        if service_name == "sagemaker":
            return service_class()
        if service_name == "states":
            return states_class()
        return original_factory(service_name)

    # The state task factory calls this name from its own module globals.
    setattr(factory, "state_task_service_for", state_task_service_for)  # noqa: B010
    StepFunctionResponse.describe_execution = _describe_execution  # type: ignore[method-assign]
    stepfunctions_asl.install()
    _installed = True
