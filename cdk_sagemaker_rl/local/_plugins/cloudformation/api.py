"""CreateStack, UpdateStack and DeleteStack that return at once and work in the background.

moto does all the work inside the HTTP call and surfaces a failure as a 500; CloudFormation
validates, answers, and leaves the stack ``*_IN_PROGRESS`` while it works, which the CDK CLI polls
(a wait condition may wait hours). DeleteStack during an operation cancels it (its waits end with
"Resource creation cancelled") and then deletes.
"""

from __future__ import annotations

import threading
from typing import Any

from .operation import StackOperation, running_operation, set_status, start_operation
from .stack_operations import run_create, run_delete, run_update

__all__ = ["install"]

#: DisableRollback/OnFailure reach the response layer only; moto's backend methods take no such
#: argument, so the request's thread carries it from the one to the other.
_flags = threading.local()


def _disable_rollback_requested() -> bool:
    return bool(getattr(_flags, "disable_rollback", False))


def _with_rollback_flag(original: Any) -> Any:
    def action(self: Any) -> Any:
        on_failure = self._get_param("OnFailure")
        _flags.disable_rollback = bool(
            self._get_bool_param("DisableRollback", False) or on_failure == "DO_NOTHING"
        )
        try:
            return original(self)
        finally:
            _flags.disable_rollback = False

    return action


def _create_stack(
    self: Any,
    name: str,
    template: str,
    parameters: dict[str, Any],
    notification_arns: list[str] | None = None,
    tags: dict[str, str] | None = None,
    role_arn: str | None = None,
    enable_termination_protection: bool | None = False,
    timeout_in_mins: int | None = None,
    stack_policy_body: str | None = None,
) -> Any:
    """``CloudFormationBackend.create_stack`` that validates now and creates in the background."""
    from moto.cloudformation.exceptions import AlreadyExistsException
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import generate_stack_id

    if name in [stack.name for stack in self.stacks.values()]:
        raise AlreadyExistsException(f"Stack [{name}] already exists")
    stack_id = generate_stack_id(name, self.region_name, self.account_id)
    stack_class: Any = Stack  # moto's Stack is abstract for mypy only
    stack = stack_class(
        stack_id=stack_id,
        name=name,
        template=template,
        parameters=parameters,
        account_id=self.account_id,
        region_name=self.region_name,
        notification_arns=notification_arns,
        tags=tags,
        role_arn=role_arn,
        cross_stack_resources=self.exports,
        enable_termination_protection=enable_termination_protection,
        timeout_in_mins=timeout_in_mins,
        stack_policy_body=stack_policy_body,
    )
    self.stacks[stack_id] = stack
    op = StackOperation(stack, self, "CREATE", disable_rollback=_disable_rollback_requested())
    stack.disable_rollback = op.disable_rollback
    set_status(op, "CREATE_IN_PROGRESS", "User Initiated")
    start_operation(op, run_create)
    return stack


def _update_stack(
    self: Any,
    name: str,
    template: str,
    role_arn: str | None,
    parameters: list[dict[str, Any]],
    tags: dict[str, str] | None,
) -> Any:
    """``CloudFormationBackend.update_stack`` that updates in the background."""
    from moto.cloudformation.exceptions import ValidationError

    stack = self.get_stack(name)
    if stack.status.endswith("_IN_PROGRESS"):
        raise ValidationError(
            stack.stack_id,
            message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.",
        )
    resolved = self._resolve_update_parameters(instance=stack, incoming_params=parameters)
    op = StackOperation(stack, self, "UPDATE", disable_rollback=_disable_rollback_requested())
    set_status(op, "UPDATE_IN_PROGRESS", "User Initiated")
    start_operation(op, lambda running: run_update(running, template, role_arn, resolved, tags))
    return stack


def _delete_stack(self: Any, name_or_stack_id: str) -> None:
    """``CloudFormationBackend.delete_stack`` that cancels a running operation and deletes in the
    background; the stack is DELETE_IN_PROGRESS until then."""
    stack = self.stacks.get(name_or_stack_id)
    if stack is None:
        stack = next((s for s in self.stacks.values() if s.name == name_or_stack_id), None)
    if stack is None or stack.status == "DELETE_IN_PROGRESS":
        return
    previous = running_operation(stack.stack_id)
    if previous is not None:
        previous.delete_requested = True
        previous.cancelled.set()
    op = StackOperation(stack, self, "DELETE", previous=previous)
    set_status(op, "DELETE_IN_PROGRESS", "User Initiated")
    start_operation(op, run_delete)


def install() -> None:
    """Patch moto's CloudFormation backend and responses (called once, by the package)."""
    from moto.cloudformation.models import CloudFormationBackend, Stack
    from moto.cloudformation.responses import CloudFormationResponse

    Stack.status_reason = None  # type: ignore[attr-defined]
    CloudFormationBackend.create_stack = _create_stack  # type: ignore[method-assign]
    CloudFormationBackend.update_stack = _update_stack  # type: ignore[method-assign]
    CloudFormationBackend.delete_stack = _delete_stack  # type: ignore[method-assign]
    CloudFormationResponse.create_stack = _with_rollback_flag(  # type: ignore[method-assign]
        CloudFormationResponse.create_stack
    )
    CloudFormationResponse.update_stack = _with_rollback_flag(  # type: ignore[method-assign]
        CloudFormationResponse.update_stack
    )
