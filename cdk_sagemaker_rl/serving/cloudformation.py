"""Model, endpoint config and endpoint as CloudFormation resources: when the model exists at deploy.

After ``fit(wait=True)`` (or for an attached job, or a given artifact) the ``model.tar.gz`` exists
while CloudFormation runs, so the three SageMaker resources are ordinary template resources. Model
and config names are left to CloudFormation, so a new model replaces them; the endpoint's name is
fixed at synth time and it is updated in place to the new config, so it survives retraining.

The update itself is SageMaker's (``DeploymentConfig``: blue/green or rolling, alarm rollback). The
old endpoint config is only deleted in CloudFormation's cleanup phase, after the endpoint update
succeeded, so an update SageMaker rolls back never points the endpoint at a deleted config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IDependable

from .._kms import KmsKeyRef
from .autoscaling import retained_variant_properties
from .data_capture import BoundDataCapture
from .variant import VariantSettings, endpoint_config_extras


@dataclass(frozen=True)
class HostingResources:
    """The three resources; ``Ref`` of ``AWS::SageMaker::Endpoint`` is its ARN."""

    model: sagemaker.CfnModel
    endpoint_config: sagemaker.CfnEndpointConfig
    endpoint: sagemaker.CfnEndpoint


def hosting_resources(
    scope: Construct,
    *,
    role: iam.Role,
    endpoint_name: str,
    model_data_url: str,
    image_uri: str,
    environment: dict[str, str],
    variant: VariantSettings,
    kms_key: KmsKeyRef | None,
    data_capture: BoundDataCapture | None,
    deployment_config: dict[str, Any],
    retain_variant_properties: bool,
    depends_on: IDependable | None,
) -> HostingResources:
    """``Model``, ``EndpointConfig`` and ``Endpoint`` in ``scope``, served under ``role``."""
    container: dict[str, Any] = {"image": image_uri, "modelDataUrl": model_data_url}
    if environment:
        container["environment"] = environment
    model = sagemaker.CfnModel(
        scope,
        "Model",
        execution_role_arn=role.role_arn,
        primary_container=container,
    )
    # The model must not be created before its role may read the artifact.
    model.node.add_dependency(role.node.find_child("DefaultPolicy"))
    if depends_on is not None:
        model.node.add_dependency(depends_on)
    endpoint_config = sagemaker.CfnEndpointConfig(
        scope,
        "EndpointConfig",
        # Written below in the request's shape, shared with the serving workflow.
        production_variants=[],
        kms_key_id=kms_key.request_value if kms_key is not None else None,
    )
    endpoint_config.add_property_override(
        "ProductionVariants", [variant.request({"ModelName": model.attr_model_name})]
    )
    for name, value in endpoint_config_extras(data_capture).items():
        endpoint_config.add_property_override(name, value)
    endpoint = sagemaker.CfnEndpoint(
        scope,
        "Endpoint",
        # Named at synth time, so the model role's log permission can name its log group.
        endpoint_name=endpoint_name,
        endpoint_config_name=endpoint_config.attr_endpoint_config_name,
    )
    endpoint.add_property_override("DeploymentConfig", deployment_config)
    if retain_variant_properties:
        for name, value in retained_variant_properties().items():
            endpoint.add_property_override(name, value)
    return HostingResources(model, endpoint_config, endpoint)
