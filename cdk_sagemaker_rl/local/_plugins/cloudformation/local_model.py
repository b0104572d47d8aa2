"""The part of moto's CloudFormation model protocol our local resources share.

moto's resource map calls these class- and instance methods on every model it creates. Our models
are not ``CloudFormationModel`` subclasses (registration stays explicit, see ``install``), so the
defaults that would otherwise be written out in each of them live here once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self


class LocalModel:
    """Defaults: no generated name, always created, no attributes, no update, nothing to delete."""

    #: The CloudFormation resource type this model stands for.
    CFN_TYPE: ClassVar[str] = ""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.CFN_TYPE

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Self,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Self:
        """Keep the resource as it is (CloudFormation does not update handles or conditions)."""
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        """Unused: moto calls :meth:`delete` on the instance first."""

    def delete(self, account_id: str, region_name: str) -> None:
        """Nothing to release."""
