"""The stack operation in progress: its state, its thread, its status and resource events.

Every CreateStack/UpdateStack/DeleteStack runs in a background thread as one
:class:`StackOperation`; the code that creates resources finds it with :func:`current_operation`
(moto calls the resource models without passing it). The operation records what it created,
modified and failed, which rollback and clean-up then undo.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..runtime import LOG

__all__ = [
    "CustomResource",
    "Replacement",
    "StackOperation",
    "current_operation",
    "forget_operations",
    "resource_event",
    "running_operation",
    "set_status",
    "start_operation",
    "stop_all",
]


class CustomResource(Protocol):
    """A custom resource as rollback and clean-up see it: something to send a Delete for.

    The class is :class:`.custom_resources.LocalCustomResource`, which needs this module to find
    its operation; naming only what the operation calls keeps the dependency one way.
    """

    @property
    def logical_id(self) -> str: ...

    @property
    def physical_resource_id(self) -> str: ...

    @property
    def properties(self) -> dict[str, Any]: ...

    def delete_physical_id(
        self, op: StackOperation, physical_id: str, properties: dict[str, Any]
    ) -> None: ...


@dataclass
class Replacement:
    """A custom resource whose Update answered a new physical id: the old one gets a Delete."""

    resource: CustomResource
    old_physical_id: str
    old_properties: dict[str, Any]
    new_physical_id: str


@dataclass
class StackOperation:
    """One CreateStack/UpdateStack/DeleteStack being carried out in the background."""

    stack: Any
    backend: Any
    action: str
    disable_rollback: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    delete_requested: bool = False
    thread: threading.Thread | None = None
    previous: StackOperation | None = None
    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    removals: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)
    replacements: list[Replacement] = field(default_factory=list)
    failed_custom: list[CustomResource] = field(default_factory=list)
    attempted_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    rolling_back: bool = False


_local = threading.local()
_operations: dict[str, StackOperation] = {}
_operations_lock = threading.Lock()


def current_operation() -> StackOperation | None:
    """The operation this thread carries out, if any."""
    op: StackOperation | None = getattr(_local, "op", None)
    return op


def start_operation(op: StackOperation, work: Any) -> None:
    """Run ``work(op)`` in a thread of its own, registered as the stack's running operation."""

    def run() -> None:
        _local.op = op
        try:
            work(op)
        except Exception:
            LOG.exception("stack operation %s on %s crashed", op.action, op.stack.name)
        finally:
            _local.op = None
            with _operations_lock:
                if _operations.get(op.stack.stack_id) is op:
                    del _operations[op.stack.stack_id]

    thread = threading.Thread(
        target=run, name=f"cfn-{op.action.lower()}-{op.stack.name}", daemon=True
    )
    op.thread = thread
    with _operations_lock:
        _operations[op.stack.stack_id] = op
    thread.start()


def stop_all(timeout: float = 10.0) -> None:
    """Cancel every running operation and wait a little for their threads (emulator stop)."""
    with _operations_lock:
        ops = list(_operations.values())
    for op in ops:
        op.cancelled.set()
    for op in ops:
        if op.thread is not None:
            op.thread.join(timeout)


def forget_operations() -> None:
    """Drop the registry of running operations (emulator stop)."""
    with _operations_lock:
        _operations.clear()


def running_operation(stack_id: str) -> StackOperation | None:
    """The operation running on the stack ``stack_id``, if any (DeleteStack cancels it)."""
    with _operations_lock:
        return _operations.get(stack_id)


def set_status(op: StackOperation, status: str, reason: str | None = None) -> None:
    """Set the stack's status and add the stack event, unless a DeleteStack took the stack over."""
    if op.delete_requested and op.action != "DELETE":
        return
    op.stack.status = status
    op.stack.status_reason = reason
    op.stack._add_stack_event(status, resource_status_reason=reason)


def resource_event(
    op: StackOperation | None,
    logical_id: str,
    resource_type: str,
    status: str,
    reason: str | None = None,
    physical_id: str | None = "",
) -> None:
    """Add a resource event to the operation's stack (DescribeStackEvents; the CLI prints it)."""
    if op is None:
        return
    from moto.cloudformation.models import Event

    stack = op.stack
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id or "",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )
