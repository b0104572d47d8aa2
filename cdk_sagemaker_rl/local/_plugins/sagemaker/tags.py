"""SageMaker tags as SageMaker keeps them, and as CloudFormation updates them.

moto's AddTags appended, so adding a key twice listed it twice (an ``aws-sdk:sagemaker:addTags``
task that moves a tag to a new value left both values); ListTags, AddTags and DeleteTags on an
ARN naming nothing, or a model package version, failed with a 500 that the SDK retries. Here:

- AddTags adds or overwrites, one value per key, as its API reference says;
- an ARN that names no resource is SageMaker's ``ValidationException`` with the message
  ``Resource does not exist.`` (what AWS answers ListTags for a deleted or unknown resource);
- model package versions (``model-package/<group>/<n>``) have tags;
- :func:`apply_template_tags` is CloudFormation's update of a resource's ``Tags`` property:
  keys the template had and no longer has are removed, the template's keys are set, and tags
  added by anyone else stay.
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply_template_tags", "install"]

#: What SageMaker answers for an ARN that names nothing.
NO_RESOURCE_MESSAGE = "Resource does not exist."


def _actual_case(backend: Any, arn: str) -> str:
    """``arn`` with the resource name as it was created: SageMaker writes names lower case in
    ARNs (as the library's IAM policies and the gate do), moto keeps them as given."""
    head, _, resource = arn.rpartition(":")
    kind, _, name = resource.partition("/")
    stores = {"endpoint": "endpoints", "model": "_models", "endpoint-config": "endpoint_configs"}
    store = getattr(backend, stores.get(kind, ""), None) or {}
    actual = next((key for key in store if str(key).lower() == name.lower()), name)
    return f"{head}:{kind}/{actual}"


def _get_resource_from_arn(original: Any) -> Any:
    def get_resource_from_arn(self: Any, arn: str) -> Any:
        from moto.sagemaker.exceptions import ValidationError

        package = self.model_packages.get(arn)
        if package is not None:
            resource: Any = package
        else:
            try:
                resource = original(self, _actual_case(self, arn))
            except (AttributeError, KeyError, ValueError, TypeError, ValidationError):
                resource = None
        if resource is None:
            raise ValidationError(message=NO_RESOURCE_MESSAGE)
        if getattr(resource, "tags", None) is None:
            resource.tags = []
        return resource

    return get_resource_from_arn


def _merge(current: list[dict[str, Any]], tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``current`` with ``tags`` added or overwriting the value of their key (order kept)."""
    merged = {str(tag["Key"]): dict(tag) for tag in current}
    for tag in tags:
        merged[str(tag["Key"])] = {"Key": str(tag["Key"]), "Value": str(tag.get("Value", ""))}
    return list(merged.values())


def _add_tags(self: Any, arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
    resource = self._get_resource_from_arn(arn)
    resource.tags = _merge(resource.tags, tags or [])
    result: list[dict[str, str]] = resource.tags
    return result


def apply_template_tags(resource: Any, tags: list[dict[str, Any]] | None) -> None:
    """Set the ``Tags`` of a template on ``resource`` as CloudFormation creates or updates them.

    The keys the previous template set are remembered on the resource, so that an update removes
    the ones the new template dropped and leaves alone the tags someone else added (AddTags from
    a workflow, say).
    """
    template = {str(tag["Key"]): tag for tag in tags or []}
    previous: list[str] = list(getattr(resource, "template_tag_keys", None) or [])
    kept = [
        tag
        for tag in getattr(resource, "tags", None) or []
        if tag["Key"] not in previous or tag["Key"] in template
    ]
    resource.tags = _merge(kept, list(template.values()))
    resource.template_tag_keys = list(template)


def install() -> None:
    """Patch moto's tag calls (called once, by the package)."""
    from moto.sagemaker.models import SageMakerModelBackend

    backend: Any = SageMakerModelBackend
    backend._get_resource_from_arn = _get_resource_from_arn(
        SageMakerModelBackend._get_resource_from_arn
    )
    backend.add_tags = _add_tags
