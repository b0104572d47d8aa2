"""``AWS::SageMaker::ModelPackageGroup`` in templates: a group of moto's model registry.

moto has no CloudFormation model for it, so a template with a group deployed without it. This
model follows the resource's schema (``aws-sagemaker-modelpackagegroup.json``, shipped with
cfn-lint):

- ``ModelPackageGroupName`` is required (CloudFormation generates no name for this type) and
  checked against the schema's pattern; ``Ref`` is the group's ARN (its primary identifier) and
  ``Fn::GetAtt`` gives ``ModelPackageGroupArn``, ``CreationTime`` and ``ModelPackageGroupStatus``;
- ``ModelPackageGroupPolicy`` (a JSON object, or a string) is the group's resource policy, what
  GetModelPackageGroupPolicy answers (an object as compact JSON text);
- ``Tags`` are set with CloudFormation's system tags (``aws:cloudformation:stack-name``,
  ``stack-id``, ``logical-id``), as the schema asks;
- an update changes the policy and tags in place; a new name replaces the group (the old one is
  deleted once the update succeeded, unless ``UpdateReplacePolicy`` is ``Retain``, and a rollback
  deletes the new one); a new description with the same name fails the update as
  CloudFormation fails every custom-named replacement;
- delete: DeleteModelPackageGroup, which fails while the group has versions (``DeletionPolicy:
  Retain`` keeps the group, see :mod:`.resource_map`).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from .errors import ResourceFailedError, reason_of
from .local_model import LocalModel
from .operation import Replacement, StackOperation, current_operation, resource_event

__all__ = ["LocalModelPackageGroup"]

#: The schema's ``ModelPackageGroupName``.
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_NAME_MAX = 63


def _backend(account_id: str, region_name: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account_id][region_name]


def _registry() -> Any:
    from ..sagemaker import model_packages

    return model_packages


def _handler_error(exc: BaseException, code: str) -> ResourceFailedError:
    return ResourceFailedError(
        f'Resource handler returned message: "{reason_of(exc)}" (HandlerErrorCode: {code})'
    )


def _policy_text(policy: Any) -> str | None:
    if policy in (None, "", {}):
        return None
    if isinstance(policy, str):
        return policy
    return json.dumps(policy, separators=(",", ":"))


def _checked_name(logical_id: str, properties: dict[str, Any]) -> str:
    """The name, or CloudFormation's property validation failure."""
    name = properties.get("ModelPackageGroupName")
    problem = None
    if not name:
        problem = "#: required key [ModelPackageGroupName] not found"
    elif not isinstance(name, str) or not _NAME.match(name):
        problem = "#/ModelPackageGroupName: failed validation constraint for keyword [pattern]"
    elif len(name) > _NAME_MAX:
        problem = f"#/ModelPackageGroupName: expected maxLength: {_NAME_MAX}, actual: {len(name)}"
    if problem is not None:
        raise ResourceFailedError(
            f"Properties validation failed for resource {logical_id} with message:\n[{problem}]"
        )
    return str(name)


def _system_tags(logical_id: str, stack_id: str) -> list[dict[str, str]]:
    stack_name = stack_id.split("/")[1] if stack_id.count("/") >= 2 else stack_id
    return [
        {"Key": "aws:cloudformation:stack-name", "Value": stack_name},
        {"Key": "aws:cloudformation:logical-id", "Value": logical_id},
        {"Key": "aws:cloudformation:stack-id", "Value": stack_id},
    ]


class LocalModelPackageGroup(LocalModel):
    """A model package group; ``Ref`` is its ARN."""

    CFN_TYPE = "AWS::SageMaker::ModelPackageGroup"
    ATTRIBUTES: ClassVar[tuple[str, ...]] = (
        "ModelPackageGroupArn",
        "CreationTime",
        "ModelPackageGroupStatus",
    )

    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.account_id = account_id
        self.region_name = region_name
        self.arn = str(_backend(account_id, region_name).model_package_groups[name].arn)
        self.physical_resource_id = self.arn

    def _group(self) -> Any:
        return _backend(self.account_id, self.region_name).model_package_groups.get(self.name)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ModelPackageGroupName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "ModelPackageGroupArn":
            return self.arn
        group = self._group()
        if attribute_name == "CreationTime" and group is not None:
            stamp = group.creation_time
            return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        if attribute_name == "ModelPackageGroupStatus" and group is not None:
            return group.model_package_group_status
        raise KeyError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalModelPackageGroup:
        from moto.sagemaker.exceptions import SagemakerClientError

        from ..sagemaker.tags import apply_template_tags

        logical_id = str(kwargs.get("LogicalId") or resource_name)
        props = cloudformation_json.get("Properties") or {}
        name = _checked_name(logical_id, props)
        backend = _backend(account_id, region_name)
        stack_id = str(kwargs.get("StackId") or "")
        try:
            backend.create_model_package_group(
                name,
                props.get("ModelPackageGroupDescription"),
                tags=_system_tags(logical_id, stack_id),
            )
        except SagemakerClientError as exc:
            raise _handler_error(exc, "AlreadyExists") from exc
        group = backend.model_package_groups[name]
        apply_template_tags(group, props.get("Tags"))
        policy = _policy_text(props.get("ModelPackageGroupPolicy"))
        if policy is not None:
            _registry().put_group_policy(backend, name, policy)
        return cls(name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: LocalModelPackageGroup,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LocalModelPackageGroup:
        """Policy and tags in place; a new name replaces; a new description cannot."""
        from ..sagemaker.tags import apply_template_tags

        op = current_operation()
        logical_id = str(getattr(original_resource, "logical_resource_id", "") or "")
        props = cloudformation_json.get("Properties") or {}
        if op is not None and op.rolling_back:
            for replaced in op.replacements:
                if (
                    isinstance(replaced.resource, _ReplacedGroup)
                    and replaced.new_physical_id == original_resource.physical_resource_id
                ):
                    return replaced.resource.old  # the new one is deleted at clean-up
        name = _checked_name(logical_id, props)
        if name != original_resource.name:
            return cls._replace(op, original_resource, logical_id, cloudformation_json)
        group = original_resource._group()
        if group is None:
            raise ResourceFailedError(
                f'Resource handler returned message: "ModelPackageGroup {original_resource.arn} '
                'does not exist." (HandlerErrorCode: NotFound)'
            )
        description = props.get("ModelPackageGroupDescription") or None
        if description != (group.model_package_group_description or None):
            raise ResourceFailedError(
                "CloudFormation cannot update a stack when a custom-named resource requires "
                f"replacing. Rename {name} and update the stack again."
            )
        policy = _policy_text(props.get("ModelPackageGroupPolicy"))
        if policy is not None:
            group.resource_policy = policy
        else:
            group.resource_policy = None
        apply_template_tags(group, props.get("Tags"))
        return original_resource

    @classmethod
    def _replace(
        cls,
        op: StackOperation | None,
        original: LocalModelPackageGroup,
        logical_id: str,
        cloudformation_json: dict[str, Any],
    ) -> LocalModelPackageGroup:
        stack_id = "" if op is None else str(op.stack.stack_id)
        new = cls.create_from_cloudformation_json(
            original.name,
            cloudformation_json,
            original.account_id,
            original.region_name,
            LogicalId=logical_id,
            StackId=stack_id,
        )
        retained = cloudformation_json.get("UpdateReplacePolicy") == "Retain"
        if op is None:
            if not retained:
                original.delete(original.account_id, original.region_name)
            return new
        if not retained:
            op.replacements.append(
                Replacement(
                    resource=_ReplacedGroup(logical_id, original),
                    old_physical_id=original.physical_resource_id,
                    old_properties={},
                    new_physical_id=new.physical_resource_id,
                )
            )
        return new

    def delete(self, account_id: str, region_name: str) -> None:
        """DeleteModelPackageGroup; a group already gone is deleted (as CloudFormation sees it)."""
        from moto.sagemaker.exceptions import ConflictException, SagemakerClientError

        backend = _backend(self.account_id, self.region_name)
        if self.name not in backend.model_package_groups:
            return
        try:
            _registry().delete_group(backend, self.name)
        except ConflictException as exc:
            raise _handler_error(exc, "ResourceConflict") from exc
        except SagemakerClientError as exc:
            raise _handler_error(exc, "GeneralServiceException") from exc


class _ReplacedGroup:
    """A group replaced under a new name: the old one is deleted at the update's clean-up, the
    new one after a rollback (the operation's replacements protocol, see :mod:`.operation`)."""

    def __init__(self, logical_id: str, old: LocalModelPackageGroup) -> None:
        self._logical_id = logical_id
        self.old = old

    @property
    def logical_id(self) -> str:
        return self._logical_id

    @property
    def physical_resource_id(self) -> str:
        return self.old.physical_resource_id

    @property
    def properties(self) -> dict[str, Any]:
        return {}

    def delete_physical_id(
        self, op: StackOperation, physical_id: str, properties: dict[str, Any]
    ) -> None:
        type_ = LocalModelPackageGroup.CFN_TYPE
        resource_event(op, self._logical_id, type_, "DELETE_IN_PROGRESS", physical_id=physical_id)
        backend = _backend(self.old.account_id, self.old.region_name)
        try:
            if physical_id.rsplit("/", 1)[-1] in backend.model_package_groups:
                _registry().delete_group(backend, physical_id)
        except Exception as exc:
            resource_event(
                op, self._logical_id, type_, "DELETE_FAILED", reason_of(exc), physical_id
            )
            return
        resource_event(op, self._logical_id, type_, "DELETE_COMPLETE", physical_id=physical_id)
