"""Application Auto Scaling of endpoint variants: accepted through the API and CloudFormation,
never executed.

moto's ``application-autoscaling`` takes RegisterScalableTarget, PutScalingPolicy and
PutScheduledAction for ``sagemaker`` variants, but has no CloudFormation model for
``AWS::ApplicationAutoScaling::ScalableTarget`` (with its ``ScheduledActions``) or
``AWS::ApplicationAutoScaling::ScalingPolicy``: a template with them would deploy without them.
The models here create, update and delete them through moto's backend, so that a deploy leaves
the same targets, policies and scheduled actions that DescribeScalableTargets & co. show on AWS.

Step Functions names the service ``applicationautoscaling`` in ``aws-sdk`` task ARNs (the serving
workflow registers targets that way) where boto3 knows ``application-autoscaling``; moto's
interpreter maps only ``sfn``, so that name is added to its map here.

As on AWS, a scalable target of a SageMaker variant must name an existing endpoint and variant
(``endpoint/<name>/variant/<variant>``): a template that registers it before its endpoint exists
fails here as it would there. Nothing scales: no metric is published and no alarm or schedule is
evaluated; a variant's count changes only through UpdateEndpointWeightsAndCapacities.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from ..cloudformation.local_model import LocalModel

__all__ = ["ScalableTarget", "ScalingPolicy", "install"]


def _backend(account_id: str, region_name: str) -> Any:
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    return applicationautoscaling_backends[account_id][region_name]


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _timestamp(value: Any) -> Any:
    """A template's ISO 8601 StartTime/EndTime as the epoch seconds the API carries."""
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value


class ScalableTarget(LocalModel):
    """``AWS::ApplicationAutoScaling::ScalableTarget``; its Ref is
    ``<ResourceId>|<ScalableDimension>|<ServiceNamespace>``, as CloudFormation's."""

    CFN_TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"

    def __init__(self, namespace: str, resource_id: str, dimension: str, actions: list[str]):
        self.namespace = namespace
        self.resource_id = resource_id
        self.dimension = dimension
        self.action_names = actions
        self.physical_resource_id = f"{resource_id}|{dimension}|{namespace}"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Id":
            return self.physical_resource_id
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> ScalableTarget:
        properties = cloudformation_json.get("Properties") or {}
        backend = _backend(account_id, region_name)
        namespace = str(properties["ServiceNamespace"])
        resource_id = str(properties["ResourceId"])
        dimension = str(properties["ScalableDimension"])
        backend.register_scalable_target(
            namespace,
            resource_id,
            dimension,
            _int(properties.get("MinCapacity")),
            _int(properties.get("MaxCapacity")),
            properties.get("RoleARN"),
            properties.get("SuspendedState"),
        )
        names = []
        for action in properties.get("ScheduledActions") or []:
            backend.put_scheduled_action(
                namespace,
                action.get("Schedule"),
                action.get("Timezone"),
                action["ScheduledActionName"],
                resource_id,
                dimension,
                _timestamp(action.get("StartTime")),
                _timestamp(action.get("EndTime")),
                {k: int(v) for k, v in (action.get("ScalableTargetAction") or {}).items()},
            )
            names.append(str(action["ScheduledActionName"]))
        return cls(namespace, resource_id, dimension, names)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: ScalableTarget,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> ScalableTarget:
        """Register again (new bounds) and replace the scheduled actions; a target for another
        resource replaces the old one."""
        properties = cloudformation_json.get("Properties") or {}
        same = (
            properties.get("ServiceNamespace") == original_resource.namespace
            and properties.get("ResourceId") == original_resource.resource_id
            and properties.get("ScalableDimension") == original_resource.dimension
        )
        if same:
            original_resource._delete_actions(account_id, region_name)
        else:
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    def _delete_actions(self, account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)
        for name in self.action_names:
            backend.delete_scheduled_action(self.namespace, name, self.resource_id, self.dimension)

    def delete(self, account_id: str, region_name: str) -> None:
        """Deregistering a target removes its scheduled actions and policies too (AWS)."""
        backend = _backend(account_id, region_name)
        self._delete_actions(account_id, region_name)
        for key, policy in list(backend.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (
                self.namespace,
                self.resource_id,
                self.dimension,
            ):
                del backend.policies[key]
        if backend._scalable_target_exists(self.resource_id, self.dimension):
            backend.deregister_scalable_target(self.namespace, self.resource_id, self.dimension)


class ScalingPolicy(LocalModel):
    """``AWS::ApplicationAutoScaling::ScalingPolicy``; its Ref is the policy ARN. The target is
    named by ``ScalingTargetId`` (a target's Ref) or by the three target properties."""

    CFN_TYPE = "AWS::ApplicationAutoScaling::ScalingPolicy"

    def __init__(self, name: str, where: tuple[str, str, str], arn: str) -> None:
        self.name = name
        self.where = where
        self.physical_resource_id = arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.physical_resource_id
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> ScalingPolicy:
        from moto.applicationautoscaling.exceptions import AWSValidationException

        properties = cloudformation_json.get("Properties") or {}
        target_id = properties.get("ScalingTargetId")
        if target_id:
            resource_id, dimension, namespace = str(target_id).split("|")
        else:
            namespace = str(properties.get("ServiceNamespace"))
            resource_id = str(properties.get("ResourceId"))
            dimension = str(properties.get("ScalableDimension"))
        backend = _backend(account_id, region_name)
        if not backend._scalable_target_exists(resource_id, dimension):
            raise AWSValidationException(
                f"No scalable target registered for service namespace: {namespace}, resource "
                f"ID: {resource_id}, scalable dimension: {dimension}"
            )
        kind = properties.get("PolicyType")
        body = (
            properties.get("TargetTrackingScalingPolicyConfiguration")
            if kind == "TargetTrackingScaling"
            else properties.get("StepScalingPolicyConfiguration")
        )
        name = str(properties.get("PolicyName") or resource_name)
        policy = backend.put_scaling_policy(
            name, namespace, resource_id, dimension, body or {}, kind
        )
        return cls(name, (namespace, resource_id, dimension), policy.policy_arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: ScalingPolicy,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> ScalingPolicy:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.applicationautoscaling.exceptions import AWSValidationException

        namespace, resource_id, dimension = self.where
        with contextlib.suppress(AWSValidationException):  # gone with its target already
            _backend(account_id, region_name).delete_scaling_policy(
                self.name, namespace, resource_id, dimension
            )


def _check_sagemaker_target(original: Any) -> Any:
    """RegisterScalableTarget of a SageMaker variant needs that endpoint and variant (AWS)."""

    def register_scalable_target(
        self: Any, namespace: str, r_id: str, dimension: str, *args: Any, **kwargs: Any
    ) -> Any:
        from moto.applicationautoscaling.exceptions import AWSValidationException
        from moto.sagemaker.models import sagemaker_backends

        if namespace == "sagemaker":
            parts = str(r_id).split("/")
            if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant":
                raise AWSValidationException(
                    f"Unsupported resource ID {r_id}: a SageMaker variant is "
                    "endpoint/<endpoint name>/variant/<variant name>"
                )
            endpoint = sagemaker_backends[self.account_id][self.region_name].endpoints.get(parts[1])
            variants = [] if endpoint is None else endpoint.production_variants or []
            if not any(v.get("VariantName") == parts[3] for v in variants):
                raise AWSValidationException(
                    f"The endpoint {parts[1]} or its variant {parts[3]} does not exist: "
                    f"cannot register {r_id} as a scalable target"
                )
        return original(self, namespace, r_id, dimension, *args, **kwargs)

    return register_scalable_target


def _deregister_with_policies(original: Any) -> Any:
    """DeregisterScalableTarget also deletes the target's scaling policies and scheduled actions
    (AWS); moto's keeps them, so a re-registered target would inherit them."""

    def deregister_scalable_target(self: Any, namespace: str, r_id: str, dimension: str) -> None:
        original(self, namespace, r_id, dimension)

        def owned(item: Any) -> bool:
            return (item.service_namespace, item.resource_id, item.scalable_dimension) == (
                namespace,
                r_id,
                dimension,
            )

        self.policies = {key: p for key, p in self.policies.items() if not owned(p)}
        self.scheduled_actions = [a for a in self.scheduled_actions if not owned(a)]

    return deregister_scalable_target


def install() -> None:
    """Register the CloudFormation models, check SageMaker targets and let Step Functions tasks
    call the service (once, by the package)."""
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
    from moto.cloudformation import parsing
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )

    overrides = state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    overrides["applicationautoscaling"] = "application-autoscaling"

    ApplicationAutoscalingBackend.register_scalable_target = (  # type: ignore[method-assign]
        _check_sagemaker_target(ApplicationAutoscalingBackend.register_scalable_target)
    )
    ApplicationAutoscalingBackend.deregister_scalable_target = (  # type: ignore[method-assign]
        _deregister_with_policies(ApplicationAutoscalingBackend.deregister_scalable_target)
    )
    models: list[Any] = [ScalableTarget, ScalingPolicy]
    original_map = parsing.get_model_map

    def get_model_map() -> dict[str, Any]:
        mapping = dict(original_map())
        mapping.update({model.cloudformation_type(): model for model in models})
        return mapping

    parsing.get_model_map = get_model_map  # type: ignore[assignment]
