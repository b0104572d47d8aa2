"""Stack outputs and the resource list, evaluated only from what exists.

moto evaluates both lazily and would otherwise create missing resources inside a DescribeStacks
call made while an operation is still running. Outputs (and exports) are evaluated once, at the end
of the operation, so that their errors fail it as they would in CloudFormation.
"""

from __future__ import annotations

from typing import Any

from .errors import ResourceFailedError
from .operation import StackOperation, current_operation

__all__ = ["finish_outputs", "install"]

#: Statuses in which a stack has outputs to show (outside its own operation).
_OUTPUT_STATUSES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "IMPORT_COMPLETE",
    }
)

#: moto's ``Stack.outputs`` property, kept by :func:`install` for the patched one to call.
_ORIGINAL_OUTPUTS: Any = None


def finish_outputs(op: StackOperation) -> None:
    """Evaluate outputs and exports now, in the operation, so that their errors fail it."""
    stack, backend = op.stack, op.backend
    _ORIGINAL_OUTPUTS.fget(stack)
    exports = stack.output_map.exports
    own = {
        name
        for name, export in backend.exports.items()
        if export.exporting_stack_id == stack.stack_id
    }
    for export in exports:
        if export.name in backend.exports and export.name not in own:
            raise ResourceFailedError(
                f"Export with name {export.name} is already exported by another stack"
            )
    for name in own:
        backend.exports.pop(name, None)
    for export in exports:
        backend.exports[export.name] = export


def _outputs(self: Any) -> Any:
    op = current_operation()
    if (op is not None and op.stack is self) or self.status in _OUTPUT_STATUSES:
        return _ORIGINAL_OUTPUTS.fget(self)
    return None


def _stack_resources(self: Any) -> list[Any]:
    rmap = self.resource_map
    return [
        resource
        for name, resource in list(rmap._parsed_resources.items())
        if name in rmap._resource_json_map and resource is not None
    ]


def install() -> None:
    """Patch moto's ``Stack`` outputs and resource list (called once, by the package)."""
    global _ORIGINAL_OUTPUTS
    from moto.cloudformation.models import Stack

    _ORIGINAL_OUTPUTS = Stack.outputs
    Stack.outputs = property(_outputs)  # type: ignore[assignment,method-assign]
    Stack.stack_resources = property(_stack_resources)  # type: ignore[assignment,method-assign]
