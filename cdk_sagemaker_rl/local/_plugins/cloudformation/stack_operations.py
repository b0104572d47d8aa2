"""The work of a stack operation, in its background thread: create, update, delete, roll back.

A failed create rolls back (deleting what was created, custom resources included) to
``ROLLBACK_COMPLETE``; a failed update rolls back to ``UPDATE_ROLLBACK_COMPLETE`` (custom
resources get an Update with the old properties, resources added by the update are deleted);
``DisableRollback`` leaves ``CREATE_FAILED``/``UPDATE_FAILED``. A successful update deletes what it
removed, and the old physical ids that custom resources replaced, in its clean-up phase.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..runtime import LOG, context
from .errors import reason_of
from .operation import StackOperation, set_status
from .ordering import dependency_order
from .outputs import finish_outputs
from .resource_map import current_items, delete_resources, inputs_changed, update_resource

__all__ = ["run_create", "run_delete", "run_update"]


def _failure_summary(op: StackOperation, exc: BaseException, verb: str) -> str:
    """The stack's status reason after a failure, in CloudFormation's words."""
    if op.failed:
        names = ", ".join(dict.fromkeys(op.failed))
        return f"The following resource(s) failed to {verb}: [{names}]. "
    return f"{reason_of(exc)} "


def run_create(op: StackOperation) -> None:
    """CreateStack's work: every resource in order, then outputs; roll back on failure."""
    stack = op.stack
    try:
        stack.resource_map.create(stack.template_dict)
        stack.description = stack.template_dict.get("Description")
        finish_outputs(op)
    except Exception as exc:
        _fail_create(op, exc)
        return
    set_status(op, "CREATE_COMPLETE")


def _fail_create(op: StackOperation, exc: BaseException) -> None:
    if op.delete_requested:
        return  # the DeleteStack that cancelled us deletes what was created
    if context().shutdown.is_set():
        return  # the emulator forgets every resource anyway: no Lambda calls for a rollback
    summary = _failure_summary(op, exc, "create")
    LOG.warning("stack %s: create failed: %s", op.stack.name, reason_of(exc))
    if op.disable_rollback:
        set_status(op, "CREATE_FAILED", summary.strip())
        return
    set_status(op, "ROLLBACK_IN_PROGRESS", f"{summary}Rollback requested by user.")
    op.rolling_back = True
    rmap = op.stack.resource_map
    failed = delete_resources(op, rmap, current_items(rmap), retain=("Retain",))
    for resource in op.failed_custom:
        resource.delete_physical_id(op, resource.physical_resource_id, resource.properties)
    if failed:
        set_status(
            op,
            "ROLLBACK_FAILED",
            f"The following resource(s) failed to delete: [{', '.join(failed)}]. ",
        )
    else:
        set_status(op, "ROLLBACK_COMPLETE", f"{summary}Rollback requested by user.".strip())


@dataclass
class _Snapshot:
    """The stack as it was before an update: what its rollback restores."""

    template: Any
    template_dict: dict[str, Any]
    input_parameters: dict[str, Any]
    parameters: dict[str, Any]


def run_update(
    op: StackOperation,
    template: str,
    role_arn: str | None,
    parameters: dict[str, Any],
    tags: dict[str, str] | None,
) -> None:
    """UpdateStack's work: add and modify in order, then clean up what was removed or replaced;
    roll back to the snapshot taken here on failure."""
    stack = op.stack
    rmap = stack.resource_map
    snapshot = _Snapshot(
        template=stack.template,
        template_dict=copy.deepcopy(stack.template_dict),
        input_parameters=dict(rmap.input_parameters or {}),
        parameters=dict(stack.parameters or {}),
    )
    try:
        stack.template = template
        stack._parse_template()
        rmap.update(stack.template_dict, parameters)
        stack.output_map = stack._create_output_map()
        finish_outputs(op)
    except Exception as exc:
        _fail_update(op, exc, snapshot)
        return
    stack.role_arn = role_arn
    if parameters:
        stack.parameters = parameters
    if tags is not None:
        stack.tags = tags
    set_status(op, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    delete_resources(op, rmap, op.removals)
    for replaced in op.replacements:
        replaced.resource.delete_physical_id(op, replaced.old_physical_id, replaced.old_properties)
    set_status(op, "UPDATE_COMPLETE")


def _fail_update(op: StackOperation, exc: BaseException, snapshot: _Snapshot) -> None:
    stack = op.stack
    rmap = stack.resource_map
    new_resources = rmap._resource_json_map
    if op.delete_requested:
        # Let the DeleteStack see every resource that exists, old and new.
        rmap._resource_json_map = {**snapshot.template_dict.get("Resources", {}), **new_resources}
        return
    if context().shutdown.is_set():
        return
    added = [name for name in op.created if name not in snapshot.template_dict.get("Resources", {})]
    summary = _failure_summary(op, exc, "create" if set(op.failed) <= set(added) else "update")
    LOG.warning("stack %s: update failed: %s", stack.name, reason_of(exc))
    if op.disable_rollback:
        set_status(op, "UPDATE_FAILED", summary.strip())
        return
    set_status(op, "UPDATE_ROLLBACK_IN_PROGRESS", summary.strip())
    op.rolling_back = True
    try:
        rmap._template = snapshot.template_dict
        rmap.input_parameters = snapshot.input_parameters
        rmap.load_mapping()
        rmap.load_parameters()
        rmap.load_conditions()
        rmap._resource_json_map = snapshot.template_dict["Resources"]
        to_restore = set(op.modified) | (set(op.failed) - set(added))
        for name in dependency_order(rmap._resource_json_map):
            if name not in rmap._parsed_resources:
                continue
            if name in to_restore or inputs_changed(rmap, name):
                update_resource(op, rmap, name, rmap._resource_json_map[name])
        stack.template = snapshot.template
        stack._parse_template()
        stack.parameters = snapshot.parameters
        stack.output_map = stack._create_output_map()
        finish_outputs(op)
    except Exception as rollback_exc:
        LOG.warning("stack %s: update rollback failed: %s", stack.name, reason_of(rollback_exc))
        set_status(op, "UPDATE_ROLLBACK_FAILED", reason_of(rollback_exc))
        return
    set_status(op, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    items = [
        (name, rmap._parsed_resources.get(name), new_resources[name])
        for name in reversed(dependency_order(new_resources))
        if name in added
    ]
    delete_resources(op, rmap, items, retain=("Retain",))
    for replaced in op.replacements:
        current = rmap._parsed_resources.get(replaced.resource.logical_id)
        if getattr(current, "physical_resource_id", None) != replaced.new_physical_id:
            replaced.resource.delete_physical_id(
                op, replaced.new_physical_id, replaced.resource.properties
            )
    set_status(op, "UPDATE_ROLLBACK_COMPLETE")


def run_delete(op: StackOperation) -> None:
    """DeleteStack's work, after the operation it cancelled has ended."""
    stack, backend = op.stack, op.backend
    previous = op.previous
    if previous is not None and previous.thread is not None:
        previous.thread.join()
    rmap = stack.resource_map
    failed = delete_resources(op, rmap, current_items(rmap))
    if failed:
        set_status(
            op,
            "DELETE_FAILED",
            f"The following resource(s) failed to delete: [{', '.join(failed)}]. ",
        )
        return
    set_status(op, "DELETE_COMPLETE")
    backend.stacks.pop(stack.stack_id, None)
    backend.deleted_stacks[stack.stack_id] = stack
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            backend.exports.pop(name, None)
