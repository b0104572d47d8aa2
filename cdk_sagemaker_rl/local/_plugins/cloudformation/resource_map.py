"""moto's ``ResourceMap`` made to create, update and delete like CloudFormation does.

Resources are created, updated and deleted in dependency order (:mod:`.ordering`), each with its
resource events (``CREATE_IN_PROGRESS``, ``CREATE_FAILED`` with the reason, ...) that the CDK CLI
prints; a resource is updated when a value it references changed, not only its template text;
an update's removals wait for the operation's clean-up phase, and deletion honours
``DeletionPolicy``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ..runtime import LOG
from .errors import ResourceFailed, ResourceFailedError, reason_of
from .operation import StackOperation, current_operation, resource_event
from .ordering import dependency_order

__all__ = ["current_items", "delete_resources", "inputs_changed", "install", "update_resource"]


def _supported(resource_type: str) -> bool:
    from moto.cloudformation import parsing

    if resource_type in parsing.NULL_MODELS:
        return False
    return resource_type.startswith("Custom::") or resource_type in parsing.get_model_map()


def _create_with_events(original: Any) -> Any:
    def parse_and_create_resource(
        logical_id: str,
        resource_json: dict[str, Any],
        resources_map: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        op = current_operation()
        resource_type = str(resource_json.get("Type", ""))
        condition = resource_json.get("Condition")
        if (
            op is None
            or op.stack.stack_id != resources_map.stack_id
            or (condition and not resources_map.lazy_condition_map[condition])
            or not _supported(resource_type)
        ):
            return original(logical_id, resource_json, resources_map, account_id, region_name)
        resource_event(op, logical_id, resource_type, "CREATE_IN_PROGRESS")
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:
            raise
        except Exception as exc:
            reason = reason_of(exc)
            op.failed.append(logical_id)
            resource_event(op, logical_id, resource_type, "CREATE_FAILED", reason)
            raise ResourceFailed(logical_id, reason) from exc
        physical = getattr(resource, "physical_resource_id", "")
        resource_event(op, logical_id, resource_type, "CREATE_COMPLETE", physical_id=physical)
        op.created.append(logical_id)
        _remember_inputs(resources_map, logical_id, resource_json)
        return resource

    return parse_and_create_resource


def _map_create(self: Any, template: dict[str, Any]) -> bool:
    """``ResourceMap.create`` in dependency order (moto follows DependsOn only)."""
    from moto.ec2 import models as ec2_models
    from moto.ec2.models.core import TaggedEC2Resource

    self._template = template
    self._resource_json_map = template["Resources"]
    self.tags.update(
        {
            "aws:cloudformation:stack-name": self["AWS::StackName"],
            "aws:cloudformation:stack-id": self["AWS::StackId"],
        }
    )
    for name in dependency_order(self._resource_json_map):
        instance: Any = self[name]
        if isinstance(instance, TaggedEC2Resource):
            self.tags["aws:cloudformation:logical-id"] = name
            backend = ec2_models.ec2_backends[self._account_id][self._region_name]
            backend.create_tags([getattr(instance, "physical_resource_id", "")], self.tags)
    return True


def _resolved_properties(rmap: Any, definition: dict[str, Any]) -> Any:
    from moto.cloudformation.parsing import clean_json

    return clean_json(copy.deepcopy(definition.get("Properties") or {}), rmap)


def _remember_inputs(rmap: Any, name: str, definition: dict[str, Any]) -> None:
    """Keep the resolved properties a resource was created or updated with.

    CloudFormation updates a resource when a value it references changes (a new
    ``GetAtt TrainingRun.ModelDataUrl``), not only when its template text does; moto compares
    template text only. :func:`inputs_changed` compares these against the current values.
    """
    try:
        resolved = _resolved_properties(rmap, definition)
    except Exception:
        return
    rmap.__dict__.setdefault("_local_resolved", {})[name] = resolved


def inputs_changed(rmap: Any, name: str) -> bool:
    remembered: dict[str, Any] = rmap.__dict__.get("_local_resolved", {})
    if name not in remembered or name not in rmap._resource_json_map:
        return False
    try:
        current = _resolved_properties(rmap, rmap._resource_json_map[name])
    except Exception:
        return False
    return bool(current != remembered[name])


def update_resource(
    op: StackOperation | None, rmap: Any, name: str, definition: dict[str, Any]
) -> None:
    from moto.cloudformation import parsing

    resource_type = str(definition.get("Type", ""))
    original = rmap._parsed_resources.get(name)
    physical = getattr(original, "physical_resource_id", "")
    resource_event(op, name, resource_type, "UPDATE_IN_PROGRESS", physical_id=physical)
    try:
        changed = parsing.parse_and_update_resource(
            name, definition, rmap, account_id=rmap._account_id, region_name=rmap._region_name
        )
    except Exception as exc:
        reason = reason_of(exc)
        if op is not None:
            op.failed.append(name)
        resource_event(op, name, resource_type, "UPDATE_FAILED", reason, physical)
        raise ResourceFailed(name, reason) from exc
    if changed is not None:
        rmap._parsed_resources[name] = changed
        physical = getattr(changed, "physical_resource_id", physical)
    resource_event(op, name, resource_type, "UPDATE_COMPLETE", physical_id=physical)
    _remember_inputs(rmap, name, definition)
    if op is not None and not op.rolling_back:
        op.modified.append(name)


def _map_update(
    self: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> None:
    """``ResourceMap.update``: add and modify in dependency order, remove at clean-up.

    Inside a stack operation the removals are left to the operation's clean-up phase (as
    CloudFormation does after the update succeeded); outside one (change sets) they happen here.
    """
    diff = self.build_resource_diff(template, parameters)
    op = current_operation()
    old_resources = self._resource_json_map
    self._template = template
    if parameters:
        self.input_parameters = parameters
    self.load_mapping()
    self.load_parameters()
    self.load_conditions()
    self._resource_json_map = template["Resources"]
    adds, modifies = set(diff["Add"]), set(diff["Modify"])
    for name in dependency_order(self._resource_json_map):
        if name in adds:
            _ = self[name]
        elif name in modifies or inputs_changed(self, name):
            update_resource(op, self, name, self._resource_json_map[name])
    removals = [
        (name, self._parsed_resources.get(name), old_resources[name])
        for name in reversed(dependency_order(old_resources))
        if name in diff["Remove"]
    ]
    if op is not None:
        op.removals.extend(removals)
        return
    for name, resource, definition in removals:
        if resource is not None:
            self._delete_resource(resource, definition)
            self._parsed_resources.pop(name, None)


def delete_resources(
    op: StackOperation | None,
    rmap: Any,
    items: Iterable[tuple[str, Any, dict[str, Any]]],
    *,
    retain: tuple[str, ...] = ("Retain", "RetainExceptOnCreate"),
) -> list[str]:
    """Delete ``(name, resource, definition)`` in the given order; return the names that failed.

    ``retain`` lists the DeletionPolicy values that keep a resource: a stack delete honours both
    retaining policies, the rollback of a create deletes ``RetainExceptOnCreate`` resources.
    """
    failed: list[str] = []
    for name, resource, definition in items:
        if resource is None or isinstance(resource, (str, int, float, list, dict)):
            continue
        resource_type = str(definition.get("Type", ""))
        physical = getattr(resource, "physical_resource_id", "")
        if definition.get("DeletionPolicy") in retain:
            resource_event(op, name, resource_type, "DELETE_SKIPPED", physical_id=physical)
            rmap._parsed_resources.pop(name, None)
            continue
        resource_event(op, name, resource_type, "DELETE_IN_PROGRESS", physical_id=physical)
        try:
            rmap._delete_resource(resource, definition)
        except Exception as exc:
            reason = reason_of(exc)
            LOG.warning("deleting %s (%s) failed: %s", name, resource_type, reason)
            resource_event(op, name, resource_type, "DELETE_FAILED", reason, physical)
            failed.append(name)
            continue
        rmap._parsed_resources.pop(name, None)
        resource_event(op, name, resource_type, "DELETE_COMPLETE", physical_id=physical)
    return failed


def current_items(rmap: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    resources = rmap._resource_json_map
    return [
        (name, rmap._parsed_resources.get(name), resources[name])
        for name in reversed(dependency_order(resources))
    ]


def _map_delete(self: Any) -> None:
    """``ResourceMap.delete`` in reverse dependency order, each resource once."""
    failed = delete_resources(current_operation(), self, current_items(self))
    if failed:
        raise ResourceFailedError(
            f"The following resource(s) failed to delete: [{', '.join(failed)}]. "
        )


def install() -> None:
    """Patch moto's resource creation and ``ResourceMap`` (called once, by the package)."""
    from moto.cloudformation import parsing

    parsing.parse_and_create_resource = _create_with_events(parsing.parse_and_create_resource)
    parsing.ResourceMap.create = _map_create  # type: ignore[method-assign]
    parsing.ResourceMap.update = _map_update  # type: ignore[method-assign]
    parsing.ResourceMap.delete = _map_delete  # type: ignore[method-assign]
