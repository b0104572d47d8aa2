"""``AWS::SSM::Parameter`` without a ``Name``, named as CloudFormation names it.

The reference stack declares its parameters without names; moto would create each as a parameter
named None and fail the stack.
"""

from __future__ import annotations

from typing import Any, cast

__all__ = ["install"]


def install() -> None:
    """moto creates an ``AWS::SSM::Parameter`` without ``Name`` as a parameter named None (and
    fails); CloudFormation generates a name, and keeps it when the parameter is updated."""
    from moto.ssm.models import Parameter

    original_create = Parameter.create_from_cloudformation_json
    original_update = Parameter.update_from_cloudformation_json

    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        cloudformation_json.setdefault("Properties", {}).setdefault("Name", resource_name)
        return original_create(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )

    def update(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json.setdefault("Properties", {})
        properties.setdefault("Name", original_resource.name)
        return original_update(
            original_resource, properties["Name"], cloudformation_json, account_id, region_name
        )

    Parameter.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        cast(Any, create)
    )
    Parameter.update_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        cast(Any, update)
    )
