"""The endpoint calls, through the API and CloudFormation: moto's, made to deploy and to keep
what SageMaker keeps.

moto answers InvokeEndpoint with canned results, lacks UpdateEndpoint, ignores
``DeploymentConfig`` and the retained variant properties, and reports a variant's instance count
from its config forever. Here:

- CreateEndpoint and UpdateEndpoint start a deployment (:mod:`.endpoints`) and accept
  ``DeploymentConfig`` (checked, then reported as ``LastDeploymentConfig``: traffic shifting,
  baking and alarm rollback are not emulated, the new server takes all traffic once it answers
  ``/ping``), ``RetainAllVariantProperties``, ``ExcludeRetainedVariantProperties`` and
  ``RetainDeploymentConfig``;
- DescribeEndpoint reports each variant's ``CurrentInstanceCount``/``DesiredInstanceCount`` and
  weight (or ``CurrentServerlessConfig``), and ``DataCaptureConfig`` when the endpoint captures;
- UpdateEndpointWeightsAndCapacities (what Application Auto Scaling calls) changes them, and an
  update with ``RetainAllVariantProperties`` keeps them instead of taking the new config's
  ``InitialInstanceCount``;
- DeleteEndpoint writes the captured records and stops the server;
- ``AWS::SageMaker::Endpoint`` resources wait for ``InService`` as CloudFormation does, take the
  same properties, and an update whose new model does not load fails the resource with the
  container's error; an update changes the ``Tags`` in place once the endpoint is updated (a
  rollback sets the old ones again);
- endpoint configs accept every ``ml.*`` instance type (moto's list is years old).
"""

from __future__ import annotations

import copy
from typing import Any, cast

from ..runtime import context
from . import endpoints
from .endpoints import Deployment, now
from .tags import apply_template_tags
from .variants import (
    capture_summary,
    check_deployment_config,
    check_instance_type,
    effective_capture_config,
    excluded_properties,
    flag,
    retained_variants,
    variant_summaries,
)

__all__ = ["install"]

#: How long CloudFormation waits for an endpoint to leave Creating/Updating.
CFN_ENDPOINT_TIMEOUT = 3600.0


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def _config_variants(backend: Any, config_name: str) -> list[dict[str, Any]]:
    return [dict(v) for v in backend.endpoint_configs[config_name].production_variants or []]


def _create_endpoint(original: Any) -> Any:
    def create_endpoint(
        self: Any,
        endpoint_name: str,
        endpoint_config_name: str,
        tags: Any,
        deployment_config: dict[str, Any] | None = None,
    ) -> Any:
        from moto.sagemaker.models import FakeEndpoint

        if endpoint_name in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise _validation_error(f'Cannot create already existing endpoint "{arn}".')
        if endpoint_config_name in self.endpoint_configs:
            variants = _config_variants(self, endpoint_config_name)
            check_deployment_config(deployment_config, variants)
        endpoint = original(self, endpoint_name, endpoint_config_name, tags)
        config = self.endpoint_configs[endpoint_config_name]
        capture_config = copy.deepcopy(config.data_capture_config or {})
        endpoint.production_variants = variant_summaries(config.production_variants or [])
        endpoint.data_capture_config = capture_summary(capture_config)
        endpoint.last_deployment_config = copy.deepcopy(deployment_config) or None
        endpoint.endpoint_status = "Creating"
        deployment = Deployment(
            config_name=endpoint_config_name,
            update=False,
            variants=endpoint.production_variants,
            capture_config=capture_config,
            deployment_config=endpoint.last_deployment_config,
        )
        endpoints.launch(self, endpoint_name, deployment)
        return endpoint

    return create_endpoint


def _create_endpoint_action(self: Any) -> Any:
    from moto.core.responses import ActionResult

    endpoint = self.sagemaker_backend.create_endpoint(
        self._get_param("EndpointName"),
        self._get_param("EndpointConfigName"),
        self._get_param("Tags"),
        deployment_config=self._get_param("DeploymentConfig"),
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _update_endpoint(
    self: Any,
    endpoint_name: str,
    endpoint_config_name: str,
    *,
    retain_all_variant_properties: bool = False,
    exclude_retained_variant_properties: Any = None,
    deployment_config: dict[str, Any] | None = None,
    retain_deployment_config: bool = False,
) -> Deployment:
    """``UpdateEndpoint``: deploy the new config next to the old one, then swap."""
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig

    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise _validation_error(f"Could not find endpoint '{arn}'.")
    if endpoint_config_name not in self.endpoint_configs:
        arn = FakeEndpointConfig.arn_formatter(
            endpoint_config_name, self.account_id, self.region_name
        )
        raise _validation_error(f"Could not find endpoint configuration '{arn}'.")
    if endpoint.endpoint_status not in ("InService", "Failed"):
        raise _validation_error(f'Cannot update in-progress endpoint "{endpoint.arn}".')
    excluded = excluded_properties(exclude_retained_variant_properties)
    if not deployment_config and retain_deployment_config:
        deployment_config = getattr(endpoint, "last_deployment_config", None)
    current = list(endpoint.production_variants or [])
    config = self.endpoint_configs[endpoint_config_name]
    config_variants = [dict(v) for v in config.production_variants or []]
    check_deployment_config(
        deployment_config, config_variants, [str(v.get("VariantName")) for v in current]
    )
    variants = variant_summaries(config_variants)
    if retain_all_variant_properties:
        variants = retained_variants(variants, current, excluded)
    capture_config = effective_capture_config(
        config.data_capture_config,
        endpoints.current_capture_config(self.account_id, self.region_name, endpoint_name),
        retain_all_variant_properties,
        excluded,
    )
    deployment = Deployment(
        config_name=endpoint_config_name,
        update=endpoint.endpoint_status == "InService",
        variants=variants,
        capture_config=capture_config,
        deployment_config=copy.deepcopy(deployment_config) or None,
    )
    endpoint.endpoint_status = "Updating"
    endpoint.pending_deployment_summary = {
        "EndpointConfigName": endpoint_config_name,
        "StartTime": now(),
    }
    endpoint.last_modified_time = now()
    _log_guardrails(endpoint_name, deployment.deployment_config)
    return endpoints.launch(self, endpoint_name, deployment)


def _log_guardrails(endpoint_name: str, deployment_config: dict[str, Any] | None) -> None:
    from ..runtime import LOG
    from .variants import deployment_description

    if deployment_config:
        LOG.info(
            "endpoint %s: %s requested; local mode shifts all traffic at once when the new "
            "model answers /ping (no traffic steps, baking period or alarm rollback)",
            endpoint_name,
            deployment_description(deployment_config),
        )


def _update_endpoint_action(self: Any) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("EndpointName")
    _update_endpoint(
        self.sagemaker_backend,
        name,
        self._get_param("EndpointConfigName"),
        retain_all_variant_properties=flag(self._get_param("RetainAllVariantProperties")),
        exclude_retained_variant_properties=self._get_param("ExcludeRetainedVariantProperties"),
        deployment_config=self._get_param("DeploymentConfig"),
        retain_deployment_config=flag(self._get_param("RetainDeploymentConfig")),
    )
    return ActionResult({"EndpointArn": self.sagemaker_backend.endpoints[name].arn})


def _update_weights_and_capacities(
    self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
) -> str:
    """What Application Auto Scaling calls: the variants' desired (and, at once, current) count,
    weight or serverless config. Only an endpoint in service can be changed."""
    from moto.sagemaker.models import FakeEndpoint

    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise _validation_error(f'Could not find endpoint "{arn}".')
    if endpoint.endpoint_status != "InService":
        raise _validation_error(f'Cannot update in-progress endpoint "{endpoint.arn}".')
    by_name = {str(v.get("VariantName")): v for v in endpoint.production_variants or []}
    seen: set[str] = set()
    for desired in desired_weights_and_capacities or []:
        name = str(desired.get("VariantName"))
        if name in seen:
            raise _validation_error(f'The variant name "{name}" was non-unique within the request.')
        seen.add(name)
        if name not in by_name:
            raise _validation_error(
                f'The variant name(s) "{name}" is/are not present within endpoint configuration '
                f'"{endpoint.endpoint_config_name}".'
            )
    for desired in desired_weights_and_capacities or []:
        variant = by_name[str(desired.get("VariantName"))]
        if desired.get("DesiredWeight") is not None:
            variant["DesiredWeight"] = variant["CurrentWeight"] = float(desired["DesiredWeight"])
        if desired.get("DesiredInstanceCount") is not None:
            if "DesiredServerlessConfig" in variant:
                raise _validation_error(
                    f"Variant {variant['VariantName']} is serverless: it has no instance count"
                )
            count = int(desired["DesiredInstanceCount"])
            variant["DesiredInstanceCount"] = variant["CurrentInstanceCount"] = count
        if desired.get("ServerlessUpdateConfig"):
            if "DesiredServerlessConfig" not in variant:
                raise _validation_error(
                    f"Variant {variant['VariantName']} is not serverless: it has no "
                    "ServerlessUpdateConfig"
                )
            merged = {**variant["DesiredServerlessConfig"], **desired["ServerlessUpdateConfig"]}
            variant["DesiredServerlessConfig"] = variant["CurrentServerlessConfig"] = merged
    endpoint.last_modified_time = now()
    return str(endpoint.arn)


def _delete_endpoint(original: Any) -> Any:
    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        original(self, endpoint_name)
        endpoints.forget(self.account_id, self.region_name, endpoint_name)

    return delete_endpoint


def _validate_instance_type(self: Any, instance_type: str) -> None:
    check_instance_type(instance_type)


# --- CloudFormation -----------------------------------------------------------------------------


def _wait(done: Any) -> None:
    from ..cloudformation import current_operation

    op = current_operation()
    context().wait_for(done, CFN_ENDPOINT_TIMEOUT, cancelled=None if op is None else op.cancelled)


def _cfn_create_endpoint(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    """CloudFormation creates the endpoint and waits for InService; it fails when it is not."""
    from moto.sagemaker.models import sagemaker_backends

    from ..cloudformation import ResourceFailedError

    backend: Any = sagemaker_backends[account_id][region_name]
    properties = cloudformation_json["Properties"]
    endpoint = backend.create_endpoint(
        resource_name,
        properties["EndpointConfigName"],
        properties.get("Tags", []),
        deployment_config=properties.get("DeploymentConfig"),
    )
    apply_template_tags(endpoint, properties.get("Tags"))
    _wait(lambda: endpoint.endpoint_status not in ("Creating", "Updating"))
    if endpoint.endpoint_status != "InService":
        raise ResourceFailedError(
            f'Resource handler returned message: "Endpoint {resource_name} is in '
            f'{endpoint.endpoint_status} status. Failure reason: {endpoint.failure_reason}"'
        )
    return endpoint


def _cfn_update_endpoint(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """CloudFormation updates an endpoint in place (UpdateEndpoint), keeping its name, and fails
    the resource with the deployment's FailureReason when the new config does not deploy."""
    from moto.sagemaker.models import sagemaker_backends

    from ..cloudformation import ResourceFailedError

    backend = sagemaker_backends[account_id][region_name]
    properties = cloudformation_json["Properties"]
    config_name = properties["EndpointConfigName"]
    name = original_resource.endpoint_name
    endpoint: Any = backend.endpoints[name]
    if endpoint.endpoint_config_name == config_name and endpoint.endpoint_status == "InService":
        # Only the deployment settings changed (or a rollback to the config still in service).
        check_deployment_config(properties.get("DeploymentConfig"), endpoint.production_variants)
        if properties.get("DeploymentConfig"):
            endpoint.last_deployment_config = copy.deepcopy(properties["DeploymentConfig"])
        apply_template_tags(endpoint, properties.get("Tags"))
        return endpoint
    deployment = _update_endpoint(
        backend,
        name,
        config_name,
        retain_all_variant_properties=flag(properties.get("RetainAllVariantProperties")),
        exclude_retained_variant_properties=properties.get("ExcludeRetainedVariantProperties"),
        deployment_config=properties.get("DeploymentConfig"),
        retain_deployment_config=flag(properties.get("RetainDeploymentConfig")),
    )
    _wait(deployment.done.is_set)
    if deployment.error is not None:
        raise ResourceFailedError(
            f'Resource handler returned message: "Endpoint {name} update to {config_name} '
            f'failed: {deployment.error}"'
        )
    apply_template_tags(endpoint, properties.get("Tags"))
    return backend.endpoints[name]


def install() -> None:
    """Patch moto's endpoint calls and CloudFormation models (called once, by the package)."""
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, Model, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    SageMakerResponse.create_endpoint = _create_endpoint_action  # type: ignore[method-assign]
    SageMakerResponse.update_endpoint = _update_endpoint_action  # type: ignore[attr-defined]
    SageMakerModelBackend.create_endpoint = _create_endpoint(  # type: ignore[method-assign]
        SageMakerModelBackend.create_endpoint
    )
    SageMakerModelBackend.update_endpoint = _update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.update_endpoint_weights_and_capacities = (  # type: ignore[method-assign]
        _update_weights_and_capacities
    )
    SageMakerModelBackend.delete_endpoint = _delete_endpoint(  # type: ignore[method-assign]
        SageMakerModelBackend.delete_endpoint
    )
    FakeEndpointConfig.validate_instance_type = _validate_instance_type  # type: ignore[method-assign]
    FakeEndpoint.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        cast(Any, _cfn_create_endpoint)
    )
    FakeEndpoint.update_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _cfn_update_endpoint
    )
    # moto ignores the name properties, so an explicit EndpointName/ModelName was not honoured.
    FakeEndpoint.cloudformation_name_type = staticmethod(lambda: "EndpointName")  # type: ignore[method-assign]
    FakeEndpointConfig.cloudformation_name_type = staticmethod(  # type: ignore[method-assign]
        lambda: "EndpointConfigName"
    )
    Model.cloudformation_name_type = staticmethod(lambda: "ModelName")  # type: ignore[method-assign]
