"""Nested executions: ``arn:aws:states:::states:startExecution[.sync|.sync:2|.waitForTaskToken]``.

moto ships LocalStack's Step Functions task service for this integration but without its request
and response normalisation, so every ``states:startExecution`` task fails with ``States.Runtime``
(botocore is handed ``StateMachineArn`` where its shape says ``stateMachineArn``, and the
``.sync`` resolvers look for ``ExecutionArn`` in an answer keyed ``executionArn``). This service
does what Step Functions does:

- the request is the ASL one (``StateMachineArn``, ``Name``, ``Input``, an object or a string) sent
  as StartExecution to this emulator; the child runs in the emulator's own executing backend;
- answers use Step Functions' casing (``ExecutionArn``, ``StartDate``, ``Output``, ...) with
  timestamps as epoch milliseconds, as Step Functions renders them in task output; with ``.sync:2``
  the child's ``Input`` and ``Output`` are JSON, with ``.sync`` strings;
- a child that fails, times out or is aborted fails the task with ``States.TaskFailed`` whose cause
  is the child's description as JSON (its ``Status``, ``Error`` and ``Cause`` included), which is
  how Step Functions reports a failed nested execution; a StartExecution error (no such state
  machine, a name used before with another input) is ``StepFunctions.<Code>Exception``;
- stopping the parent execution (or the task timing out) stops the child, as the ``.sync``
  integration does.
"""

from __future__ import annotations

import datetime
import functools
import importlib
from collections.abc import Callable
from typing import Any

from .runtime import LOG
from .sync_tasks import StopsWhatItAwaits

__all__ = ["states_service_class"]


def _epoch_millis_in_place(value: Any) -> Any:
    """Timestamps in ``value`` (a dict or list, changed in place) as epoch milliseconds."""
    if isinstance(value, dict):
        for key, inner in value.items():
            value[key] = _epoch_millis_in_place(inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            value[index] = _epoch_millis_in_place(inner)
    elif isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


@functools.cache
def _operation_model(operation: str) -> Any:
    import botocore.session

    return (
        botocore.session.get_session().get_service_model("stepfunctions").operation_model(operation)
    )


def _operation_name(action: str) -> str:
    """``startExecution`` / ``start_execution`` -> ``StartExecution``."""
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    return "".join(part.capitalize() for part in camel_to_snake_case(action).split("_"))


@functools.cache
def states_service_class() -> type[Any]:
    """The task service class (built once: moto's interpreter modules are imported lazily)."""
    service = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"
    base = importlib.import_module(f"{service}.state_task_service_sfn").StateTaskServiceSfn
    boto_client_for = importlib.import_module(
        "moto.stepfunctions.parser.asl.utils.boto_client"
    ).boto_client_for

    class StatesTaskService(StopsWhatItAwaits, base):  # type: ignore[misc,valid-type]
        """moto's ``states`` service with Step Functions' request and answer shapes."""

        def __init__(self) -> None:
            super().__init__()
            self._child: tuple[Any, str] | None = None

        def _normalise_parameters(
            self,
            parameters: dict[str, Any],
            boto_service_name: str | None = None,
            service_action_name: str | None = None,
        ) -> None:
            # moto's own step: Input, an object in ASL, is sent as JSON text.
            super()._normalise_parameters(parameters, boto_service_name, service_action_name)
            action = _operation_name(service_action_name or self.resource.api_action)
            self._to_boto_request(parameters, _operation_model(action).input_shape)

        def _normalise_response(
            self,
            response: Any,
            boto_service_name: str | None = None,
            service_action_name: str | None = None,
        ) -> None:
            action = _operation_name(service_action_name or self.resource.api_action)
            self._from_boto_response(response, _operation_model(action).output_shape)
            _epoch_millis_in_place(response)

        def _remember_child(
            self, env: Any, resource_runtime_part: Any, state_credentials: Any
        ) -> None:
            client = boto_client_for(
                region=resource_runtime_part.region,
                service="stepfunctions",
                state_credentials=state_credentials,
            )
            self._child = (client, str(env.stack[-1]["ExecutionArn"]))

        def _build_sync_resolver(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> Callable[[], Any] | None:
            self._remember_child(env, resource_runtime_part, state_credentials)
            resolver: Callable[[], Any] | None = super()._build_sync_resolver(
                env, resource_runtime_part, normalised_parameters, state_credentials
            )
            return resolver

        def _build_sync2_resolver(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> Callable[[], Any] | None:
            self._remember_child(env, resource_runtime_part, state_credentials)
            resolver: Callable[[], Any] | None = super()._build_sync2_resolver(
                env, resource_runtime_part, normalised_parameters, state_credentials
            )
            return resolver

        def _awaited(self) -> bool:
            return self._child is not None

        def _stop_awaited(self) -> None:
            """The parent stopped (or the task timed out) while waiting: stop the child, as
            Step Functions' ``.sync`` integration does."""
            assert self._child is not None
            client, execution_arn = self._child
            try:
                status = client.describe_execution(executionArn=execution_arn)["status"]
                if status == "RUNNING":
                    LOG.info("parent execution stopped: stopping %s", execution_arn)
                    client.stop_execution(executionArn=execution_arn)
            except Exception:
                LOG.exception("could not stop the nested execution %s", execution_arn)

    return StatesTaskService
