"""``deploy()``'s options, checked before anything is built.

Every option is checked here, with the value and what is allowed in the message, so that a wrong
argument stops ``cdk synth`` instead of failing a deploy (or, worse, deploying something else: a
truthy ``function_url="no"`` would have created a URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from aws_cdk import Duration, Size
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

from .._kms import KmsKeyRef, kms_key
from .._naming import check_sagemaker_name
from ..errors import ValidationError, invalid
from ..instance_types import validate_serving_instance_type
from ._checks import container_environment, duration_seconds, limited_int
from .autoscaling import AutoScaling, check_autoscaling
from .data_capture import DataCapture
from .deployment import EndpointUpdate, check_update
from .plan import ServingPlan
from .predict import check_function_url_options
from .serverless import ServerlessInference
from .variant import VariantSettings
from .workflow import workflow_key_arn

_CONTAINER = "README.md#model-container-options"
_SERVERLESS = "README.md#serverless-inference"


@dataclass(frozen=True)
class EndpointOptions:
    """What :class:`~.endpoint.RLEndpoint` is built from, every value checked."""

    variant: VariantSettings
    #: The container's environment, ``SAGEMAKER_PROGRAM`` = ``entry_point`` included.
    environment: dict[str, str]
    #: The key of the endpoint's storage volume.
    kms_key: KmsKeyRef | None
    #: The key that encrypts the model artifact (the model role decrypts with it).
    model_kms_key: kms.IKey | None
    function_url: bool
    function_url_auth_type: lambda_.FunctionUrlAuthType
    update: EndpointUpdate
    autoscaling: AutoScaling | None
    data_capture: DataCapture | None

    @property
    def variant_name(self) -> str:
        return self.variant.variant_name

    @property
    def instance_type(self) -> str | None:
        return self.variant.instance_type


def endpoint_options(
    scope: IConstruct,
    plan: ServingPlan,
    *,
    instance_type: str | None,
    initial_instance_count: int,
    entry_point: str | None,
    environment: Mapping[str, str] | None = None,
    serverless: ServerlessInference | None = None,
    update: EndpointUpdate | None = None,
    autoscaling: AutoScaling | None = None,
    data_capture: DataCapture | None = None,
    volume_size: int | Size | None = None,
    model_data_download_timeout: Duration | None = None,
    container_startup_health_check_timeout: Duration | None = None,
    kms_key_value: kms.IKey | str | None,
    model_kms_key: kms.IKey | None,
    variant_name: str,
    function_url: bool,
    function_url_auth_type: lambda_.FunctionUrlAuthType,
    allow_unauthenticated_function_url: bool,
    with_workflow: bool,
) -> EndpointOptions:
    """Check ``deploy()``'s options; ``with_workflow`` is ``fit(wait=False)``'s serving.

    The types are checked too: callers from plain Python (or JSON context) pass anything.
    """
    if not isinstance(plan, ServingPlan):
        raise invalid(
            "plan",
            plan,
            "a ServingPlan: serving_plan(...), serving_plan_for_attached(...) or "
            "ServingPlan('custom', ContainerImage.from_uri(...))",
        )
    if serverless is not None and not isinstance(serverless, ServerlessInference):
        raise invalid(
            "serverless", serverless, "a ServerlessInference(...) or None", see=_SERVERLESS
        )
    if serverless is None:
        if instance_type is None:
            raise invalid(
                "instance_type",
                None,
                "an ml.* instance type, or serverless=ServerlessInference(...) for an "
                "endpoint without instances",
                see=_SERVERLESS,
            )
        validate_serving_instance_type(instance_type, "instance_type")
    if (
        isinstance(initial_instance_count, bool)
        or not isinstance(initial_instance_count, int)
        or initial_instance_count < 1
    ):
        raise invalid("initial_instance_count", initial_instance_count, "an integer >= 1")
    checked_update = check_update(update)
    scaling = check_autoscaling(autoscaling)
    if data_capture is not None and not isinstance(data_capture, DataCapture):
        raise invalid("data_capture", data_capture, "a DataCapture(...) or None")
    variant = VariantSettings(
        variant_name=check_sagemaker_name(variant_name, "variant_name"),
        instance_type=instance_type if serverless is None else None,
        initial_instance_count=initial_instance_count,
        serverless=serverless,
        volume_size_gb=_volume_gb(volume_size),
        model_data_download_timeout_seconds=_timeout(
            model_data_download_timeout, "model_data_download_timeout", "model_data_download"
        ),
        container_startup_health_check_timeout_seconds=_timeout(
            container_startup_health_check_timeout,
            "container_startup_health_check_timeout",
            "container_startup_health_check",
        ),
    )
    if serverless is not None:
        _refuse_with_serverless(
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            update=checked_update,
            autoscaling=scaling,
            data_capture=data_capture,
            volume_size=volume_size,
        )
    if scaling is not None and not (
        scaling.min_capacity <= initial_instance_count <= scaling.max_capacity
    ):
        raise ValidationError(
            f"initial_instance_count={initial_instance_count} is outside the autoscaling range "
            f"{scaling.min_capacity}-{scaling.max_capacity}. Allowed: min_capacity <= "
            "initial_instance_count <= max_capacity. See README.md#autoscaling."
        )
    url, auth_type = check_function_url_options(
        function_url, function_url_auth_type, allow_unauthenticated_function_url
    )
    environment = {
        **container_environment(environment, _CONTAINER),
        **plan.container_environment(entry_point),
    }
    key = kms_key(scope, kms_key_value, "kms_key")
    if with_workflow:
        workflow_key_arn(key)
    if model_kms_key is not None and not (
        hasattr(model_kms_key, "key_arn") and hasattr(model_kms_key, "grant_decrypt")
    ):
        raise invalid(
            "model_kms_key", model_kms_key, "an aws_kms.IKey (the model artifact's key) or None"
        )
    return EndpointOptions(
        variant=variant,
        environment=environment,
        kms_key=key,
        model_kms_key=model_kms_key,
        function_url=url,
        function_url_auth_type=auth_type,
        update=checked_update,
        autoscaling=scaling,
        data_capture=data_capture,
    )


def _volume_gb(value: int | Size | None) -> int | None:
    if value is None:
        return None
    gb = value.to_gibibytes() if isinstance(value, Size) else value
    return limited_int(gb, "volume_size", "variant_volume_gb", _CONTAINER)


def _timeout(value: Duration | None, argument: str, key: str) -> int | None:
    if value is None:
        return None
    return duration_seconds(value, argument, f"{key}_seconds", _CONTAINER)


def _refuse_with_serverless(
    *,
    instance_type: str | None,
    initial_instance_count: int,
    update: EndpointUpdate,
    autoscaling: AutoScaling | None,
    data_capture: DataCapture | None,
    volume_size: object,
) -> None:
    """What SageMaker refuses on a serverless variant, refused before the deploy."""
    refused: list[tuple[str, object, bool, str]] = [
        (
            "instance_type",
            instance_type,
            instance_type is not None,
            "a serverless variant has no instance type: give instance_type or serverless",
        ),
        (
            "initial_instance_count",
            initial_instance_count,
            initial_instance_count != 1,
            "a serverless variant has no instances; max_concurrency sets how far it scales",
        ),
        (
            "update",
            "EndpointUpdate.rolling(...)",
            update.strategy == "ROLLING",
            "SageMaker does not do rolling updates of serverless endpoints; use "
            "EndpointUpdate.blue_green(...)",
        ),
        (
            "autoscaling",
            autoscaling,
            autoscaling is not None,
            "serverless endpoints scale by themselves up to max_concurrency",
        ),
        (
            "data_capture",
            data_capture,
            data_capture is not None,
            "SageMaker does not capture data of serverless endpoints",
        ),
        (
            "volume_size",
            volume_size,
            volume_size is not None,
            "a serverless variant has no instance storage volume",
        ),
    ]
    for argument, value, given, why in refused:
        if given:
            raise ValidationError(
                f"{argument}={value!r} cannot be combined with serverless=ServerlessInference"
                f"(...): {why}. See {_SERVERLESS}."
            )


class DeployOptions(TypedDict, total=False):
    """``deploy()``'s keyword options, for a ``deploy(**options)`` that forwards them to
    :class:`~.endpoint.RLEndpoint` as they are (``ApprovedPolicy``). ``RLEstimator.deploy`` and
    ``AttachedTrainingJob.deploy`` still spell their options out in their signatures."""

    entry_point: str | None
    image: Any
    environment: Mapping[str, str] | None
    serverless: Any
    update: Any
    autoscaling: Any
    data_capture: Any
    volume_size: int | Size | None
    model_data_download_timeout: Duration | None
    container_startup_health_check_timeout: Duration | None
    kms_key: kms.IKey | str | None
    model_kms_key: kms.IKey | None
    variant_name: str
    function_url: bool
    function_url_auth_type: lambda_.FunctionUrlAuthType
    allow_unauthenticated_function_url: bool


def check_deploy_options(options: Mapping[str, object], see: str) -> None:
    """Misspelt keywords name the options there are (not a TypeError at the call)."""
    unknown = sorted(set(options) - set(DeployOptions.__annotations__))
    if unknown:
        raise ValidationError(
            f"deploy() got unknown option(s) {', '.join(unknown)}. Allowed: instance_type, "
            f"initial_instance_count, {', '.join(DeployOptions.__annotations__)}. See {see}."
        )
