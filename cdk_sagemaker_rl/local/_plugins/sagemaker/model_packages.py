"""The model registry: model package groups and their versions, as SageMaker keeps them.

moto has the calls but not all of SageMaker's rules, and lacks some calls altogether. Here:

- CreateModelPackage takes the group by name or ARN and refuses a group that does not exist
  (``ValidationException``); a version gets the next number of its group (numbers are never
  reused, even after DeleteModelPackage); ``ModelApprovalStatus`` defaults to
  ``PendingManualApproval`` for a version, as on AWS; a ``ClientToken`` seen before answers the
  package it created instead of creating another version (the call is idempotent, as its API
  reference says; boto3 fills a fresh token in when the caller gives none);
- CreateModelPackageGroup refuses a name in use (moto replaced the group, losing its versions);
- ListModelPackages sorts by creation time with the version number as tie-breaker, so versions
  created within the same millisecond still come out newest first with ``Descending``;
- DescribeModelPackage and ListModelPackages name a version's package after its group
  (``ModelPackageName``, which DescribeModelPackage always answers; moto left it out);
- UpdateModelPackage keeps the ``ApprovalDescription`` and ``CustomerMetadataProperties`` that
  the call does not change (moto cleared them), merging new properties into the old ones;
- DeleteModelPackage, DeleteModelPackageGroup (``ConflictException`` while the group still has
  versions: AWS deletes only an empty group) and the group's resource policy
  (Put/Get/DeleteModelPackageGroupPolicy, the policy kept as the string it was given) are added.

Nothing is validated against an image or a model artifact: a version is a record.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = [
    "delete_group",
    "find_group",
    "get_group_policy",
    "group_name",
    "install",
    "put_group_policy",
]

#: The status a version gets when CreateModelPackage does not say.
DEFAULT_APPROVAL_STATUS = "PendingManualApproval"

#: CreateModelPackage reads the group's last version number and writes the next one.
_lock = threading.Lock()


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def _conflict(message: str) -> Exception:
    from moto.sagemaker.exceptions import ConflictException

    return ConflictException(message)


def group_name(name_or_arn: str) -> str:
    """``ModelPackageGroupName`` as the calls take it, a name or an ARN: the name."""
    value = str(name_or_arn or "")
    if value.startswith("arn:") and "/" in value:
        return value.rsplit("/", 1)[-1]
    return value


def _group_arn(backend: Any, name: str) -> str:
    from moto.sagemaker.utils import arn_formatter

    return arn_formatter("model-package-group", name, backend.account_id, backend.region_name)


def find_group(backend: Any, name_or_arn: str) -> Any:
    """The group, or SageMaker's ``ValidationException`` when there is none."""
    name = group_name(name_or_arn)
    group = backend.model_package_groups.get(name)
    if group is None:
        raise _validation_error(f"ModelPackageGroup {_group_arn(backend, name)} does not exist.")
    return group


def _versions(backend: Any, name: str) -> list[Any]:
    return [
        package
        for package in backend.model_packages.values()
        if package.model_package_group_name == name and package.model_package_version
    ]


def _client_tokens(backend: Any) -> dict[str, str]:
    tokens: dict[str, str] = backend.__dict__.setdefault("_local_client_tokens", {})
    return tokens


# --- groups -------------------------------------------------------------------------------------


def _create_model_package_group(original: Any) -> Any:
    def create_model_package_group(
        self: Any,
        model_package_group_name: str,
        model_package_group_description: str,
        tags: list[dict[str, str]] | None = None,
    ) -> str:
        if model_package_group_name in self.model_package_groups:
            arn = _group_arn(self, model_package_group_name)
            raise _validation_error(f"Model Package Group already exists: {arn}")
        result: str = original(
            self, model_package_group_name, model_package_group_description, tags=tags
        )
        return result

    return create_model_package_group


def delete_group(backend: Any, name_or_arn: str) -> None:
    """DeleteModelPackageGroup: only an empty group can go (its policy and tags go with it)."""
    group = find_group(backend, name_or_arn)
    name = group.model_package_group_name
    if _versions(backend, name):
        raise _conflict(
            f"Model Package Group {group.arn} cannot be deleted because it has model package "
            "versions: delete them first."
        )
    backend.model_package_groups.pop(name, None)


def put_group_policy(backend: Any, name_or_arn: str, policy: str) -> str:
    group = find_group(backend, name_or_arn)
    group.resource_policy = str(policy)
    return str(group.arn)


def get_group_policy(backend: Any, name_or_arn: str) -> str:
    group = find_group(backend, name_or_arn)
    policy = getattr(group, "resource_policy", None)
    if not policy:
        raise _validation_error(f"Cannot find resource policy for {group.arn}.")
    return str(policy)


def delete_group_policy(backend: Any, name_or_arn: str) -> None:
    get_group_policy(backend, name_or_arn)
    find_group(backend, name_or_arn).resource_policy = None


# --- versions -----------------------------------------------------------------------------------


def _create_model_package(
    self: Any,
    model_package_name: str | None,
    model_package_group_name: str | None,
    model_package_description: str | None,
    inference_specification: Any,
    validation_specification: Any,
    source_algorithm_specification: Any,
    certify_for_marketplace: bool,
    tags: Any,
    model_approval_status: str | None,
    metadata_properties: Any,
    model_metrics: Any,
    client_token: Any,
    customer_metadata_properties: Any,
    drift_check_baselines: Any,
    domain: Any,
    task: Any,
    sample_payload_url: Any,
    additional_inference_specifications: Any,
) -> str:
    """CreateModelPackage with SageMaker's rules (see the module docstring)."""
    from moto.sagemaker.models import ModelPackage

    with _lock:
        tokens = _client_tokens(self)
        if client_token and tokens.get(str(client_token)) in self.model_packages:
            return tokens[str(client_token)]
        if model_package_group_name and model_package_name:
            raise _validation_error(
                "Both ModelPackageName and ModelPackageGroupName are provided in the input. "
                "Cannot determine which one to use."
            )
        if not model_package_group_name and not model_package_name:
            raise _validation_error("Missing ARN.")
        version: int | None = None
        if model_package_group_name:
            group = find_group(self, model_package_group_name)
            name = str(group.model_package_group_name)
            numbers = [p.model_package_version for p in _versions(self, name)]
            version = max([int(getattr(group, "last_version", 0)), *numbers]) + 1
            group.last_version = version
            package_type = "Versioned"
            model_approval_status = model_approval_status or DEFAULT_APPROVAL_STATUS
        else:
            name = str(model_package_name)
            package_type = "Unversioned"
        package = ModelPackage(
            model_package_name=name,
            model_package_group_name=name if version is not None else None,
            model_package_version=version,
            model_package_description=model_package_description,
            inference_specification=inference_specification,
            source_algorithm_specification=source_algorithm_specification,
            validation_specification=validation_specification,
            certify_for_marketplace=certify_for_marketplace,
            model_approval_status=model_approval_status,
            metadata_properties=metadata_properties,
            model_metrics=model_metrics,
            approval_description=None,
            customer_metadata_properties=customer_metadata_properties,
            drift_check_baselines=drift_check_baselines,
            domain=domain,
            task=task,
            sample_payload_url=sample_payload_url,
            additional_inference_specifications=additional_inference_specifications,
            client_token=client_token,
            region_name=self.region_name,
            account_id=self.account_id,
            model_package_type=package_type,
            tags=list(tags or []),
        )
        self.model_package_name_mapping[name] = package.arn
        self.model_package_name_mapping[package.arn] = package.arn
        self.model_packages[package.arn] = package
        if client_token:
            tokens[str(client_token)] = package.arn
        return str(package.arn)


def _sort_key(sort_by: str | None) -> Any:
    if sort_by == "Name":
        return lambda p: (p.model_package_name, p.model_package_version or 0)
    return lambda p: (p.creation_time, p.model_package_version or 0)


def _list_model_packages() -> Any:
    from moto.sagemaker.models import PAGINATION_MODEL
    from moto.utilities.paginator import paginate

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_model_packages(
        self: Any,
        creation_time_after: Any,
        creation_time_before: Any,
        name_contains: str | None,
        model_approval_status: str | None,
        model_package_group_name: str | None,
        model_package_type: str | None,
        sort_by: str | None,
        sort_order: str | None,
    ) -> list[Any]:
        """ListModelPackages, the version number breaking ties of creation time."""
        group = group_name(model_package_group_name) if model_package_group_name else None
        if group is not None:
            model_package_type = "Versioned"

        def wanted(package: Any) -> bool:
            versioned = package.model_package_version is not None
            return (
                (creation_time_after is None or package.creation_time > creation_time_after)
                and (creation_time_before is None or package.creation_time < creation_time_before)
                and (name_contains is None or name_contains in package.model_package_name)
                and (
                    model_approval_status is None
                    or package.model_approval_status == model_approval_status
                )
                and (group is None or package.model_package_group_name == group)
                and (
                    model_package_type == "Both" or versioned == (model_package_type == "Versioned")
                )
            )

        packages = [p for p in self.model_packages.values() if wanted(p)]
        return sorted(packages, key=_sort_key(sort_by), reverse=sort_order == "Descending")

    return list_model_packages


def _package_response(original: Any) -> Any:
    def gen_response_object(self: Any) -> dict[str, Any]:
        """moto's response, with the ``ModelPackageName`` that DescribeModelPackage requires:
        a version's is its group's name."""
        response: dict[str, Any] = original(self)
        response.setdefault("ModelPackageName", self.model_package_name)
        return response

    return gen_response_object


def _find_package(backend: Any, name_or_arn: str) -> Any:
    arn = backend.model_package_name_mapping.get(name_or_arn, name_or_arn)
    package = backend.model_packages.get(arn)
    if package is None:
        raise _validation_error(f"Model package {name_or_arn} not found")
    return package


def _update_model_package(
    self: Any,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str] | None,
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    """UpdateModelPackage: what the call names changes, the rest stays."""
    package = _find_package(self, model_package_arn)
    if model_approval_status is not None:
        package.set_model_approval_status(model_approval_status)
    if approval_description is not None:
        package.approval_description = approval_description
    metadata = dict(package.customer_metadata_properties or {})
    metadata.update(customer_metadata_properties or {})
    for key in customer_metadata_properties_to_remove or []:
        metadata.pop(key, None)
    package.customer_metadata_properties = metadata or None
    if additional_inference_specifications_to_add:
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
    package.modifications_done()
    return str(package.arn)


def _delete_model_package(backend: Any, name_or_arn: str) -> None:
    package = _find_package(backend, name_or_arn)
    arn = package.arn
    backend.model_packages.pop(arn, None)
    mapping = backend.model_package_name_mapping
    for key in [key for key, value in mapping.items() if value == arn]:
        del mapping[key]
    tokens = _client_tokens(backend)
    for key in [key for key, value in tokens.items() if value == arn]:
        del tokens[key]


# --- the calls moto lacks -----------------------------------------------------------------------


def _delete_model_package_group_action(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    delete_group(self.sagemaker_backend, self._get_param("ModelPackageGroupName"))
    return EmptyResult()


def _delete_model_package_action(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    _delete_model_package(self.sagemaker_backend, self._get_param("ModelPackageName"))
    return EmptyResult()


def _put_model_package_group_policy_action(self: Any) -> Any:
    from moto.core.responses import ActionResult

    arn = put_group_policy(
        self.sagemaker_backend,
        self._get_param("ModelPackageGroupName"),
        self._get_param("ResourcePolicy"),
    )
    return ActionResult({"ModelPackageGroupArn": arn})


def _get_model_package_group_policy_action(self: Any) -> Any:
    from moto.core.responses import ActionResult

    policy = get_group_policy(self.sagemaker_backend, self._get_param("ModelPackageGroupName"))
    return ActionResult({"ResourcePolicy": policy})


def _delete_model_package_group_policy_action(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    delete_group_policy(self.sagemaker_backend, self._get_param("ModelPackageGroupName"))
    return EmptyResult()


def _describe_model_package_group(self: Any, model_package_group_name: str) -> Any:
    return find_group(self, model_package_group_name)


def install() -> None:
    """Patch moto's model registry calls and add the missing ones (called once, by the package)."""
    from moto.sagemaker.models import ModelPackage, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    package: Any = ModelPackage
    package.gen_response_object = _package_response(ModelPackage.gen_response_object)
    backend: Any = SageMakerModelBackend
    backend.create_model_package_group = _create_model_package_group(
        SageMakerModelBackend.create_model_package_group
    )
    backend.describe_model_package_group = _describe_model_package_group
    backend.create_model_package = _create_model_package
    backend.list_model_packages = _list_model_packages()
    backend.update_model_package = _update_model_package
    responses: Any = SageMakerResponse
    responses.delete_model_package_group = _delete_model_package_group_action
    responses.delete_model_package = _delete_model_package_action
    responses.put_model_package_group_policy = _put_model_package_group_policy_action
    responses.get_model_package_group_policy = _get_model_package_group_policy_action
    responses.delete_model_package_group_policy = _delete_model_package_group_policy_action
