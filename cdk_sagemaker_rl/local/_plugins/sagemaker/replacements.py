"""Models and endpoint configs replaced as CloudFormation replaces them: the old one stays until
the stack update succeeded.

A retrain changes the model's ``ModelDataUrl``, which replaces the ``AWS::SageMaker::Model`` and,
through its name, the ``AWS::SageMaker::EndpointConfig``. moto deletes the old resource before it
creates the new one, so during the update the endpoint serves a config that no longer exists,
and when the endpoint's update fails the rollback has nothing to go back to: it creates the old
config again under a new name and redeploys the endpoint onto it (a second deployment, the
failure's reason gone). CloudFormation instead creates the new resource, deletes the old one in
the update's clean-up phase, and on rollback points back at the old one and deletes the new one.
This module does the same through the stack operation's replacements, which the CloudFormation
plugin deletes at clean-up; outside a stack operation, or when the name stays the same (an
explicit name cannot be replaced in place), moto's way is kept.
"""

from __future__ import annotations

from typing import Any

from ..cloudformation.errors import reason_of
from ..cloudformation.operation import (
    Replacement,
    StackOperation,
    current_operation,
    resource_event,
)

__all__ = ["install"]


class _Replaced:
    """The old resource of a replacement, in the shape the operation's clean-up expects."""

    def __init__(self, model: Any, logical_id: str, old: Any, resource_type: str) -> None:
        self.model = model
        self.old = old
        self._logical_id = logical_id
        self._type = resource_type

    @property
    def logical_id(self) -> str:
        return self._logical_id

    @property
    def physical_resource_id(self) -> str:
        return str(self.old.physical_resource_id)

    @property
    def properties(self) -> dict[str, Any]:
        return {}

    def delete_physical_id(
        self, op: StackOperation, physical_id: str, properties: dict[str, Any]
    ) -> None:
        """Delete the old resource (after success) or the new one (after a rollback)."""
        resource_event(
            op, self._logical_id, self._type, "DELETE_IN_PROGRESS", physical_id=physical_id
        )
        try:
            account_id, region_name = physical_id.split(":")[4], physical_id.split(":")[3]
            self.model.delete_from_cloudformation_json(physical_id, {}, account_id, region_name)
        except Exception as exc:
            resource_event(
                op, self._logical_id, self._type, "DELETE_FAILED", reason_of(exc), physical_id
            )
            return
        resource_event(op, self._logical_id, self._type, "DELETE_COMPLETE", physical_id=physical_id)


def _replacing_update(name_attribute: str) -> Any:
    def update_from_cloudformation_json(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        op = current_operation()
        if op is not None and op.rolling_back:
            for replaced in op.replacements:
                if (
                    isinstance(replaced.resource, _Replaced)
                    and replaced.new_physical_id == original_resource.physical_resource_id
                ):
                    return replaced.resource.old  # the new one is deleted at clean-up
        if op is None or new_resource_name == getattr(original_resource, name_attribute):
            cls.delete_from_cloudformation_json(
                original_resource.physical_resource_id, cloudformation_json, account_id, region_name
            )
            return cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name
            )
        new = cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )
        logical_id = str(getattr(original_resource, "logical_resource_id", ""))
        op.replacements.append(
            Replacement(
                resource=_Replaced(cls, logical_id, original_resource, cls.cloudformation_type()),
                old_physical_id=str(original_resource.physical_resource_id),
                old_properties={},
                new_physical_id=str(new.physical_resource_id),
            )
        )
        return new

    return classmethod(update_from_cloudformation_json)


def install() -> None:
    """Patch the two models' CloudFormation update (called once, by the package)."""
    from moto.sagemaker.models import FakeEndpointConfig, Model

    Model.update_from_cloudformation_json = _replacing_update("model_name")  # type: ignore[method-assign]
    FakeEndpointConfig.update_from_cloudformation_json = _replacing_update(  # type: ignore[method-assign]
        "endpoint_config_name"
    )
