"""``deploy()``'s options, checked before anything is built.

Every option is checked here, with the value and what is allowed in the message, so that a wrong
argument stops ``cdk synth`` instead of failing a deploy (or, worse, deploying something else: a
truthy ``function_url="no"`` would have created a URL).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

from .._kms import KmsKeyRef, kms_key
from .._naming import check_sagemaker_name
from ..errors import invalid
from ..instance_types import validate_serving_instance_type
from .plan import ServingPlan
from .predict import check_function_url_options
from .workflow import workflow_key_arn


@dataclass(frozen=True)
class EndpointOptions:
    """What :class:`~.endpoint.RLEndpoint` is built from, every value checked."""

    instance_type: str
    initial_instance_count: int
    #: The container's environment, ``SAGEMAKER_PROGRAM`` = ``entry_point`` included.
    environment: dict[str, str]
    #: The key of the endpoint's storage volume.
    kms_key: KmsKeyRef | None
    #: The key that encrypts the model artifact (the model role decrypts with it).
    model_kms_key: kms.IKey | None
    variant_name: str
    function_url: bool
    function_url_auth_type: lambda_.FunctionUrlAuthType


def endpoint_options(
    scope: IConstruct,
    plan: ServingPlan,
    *,
    instance_type: str,
    initial_instance_count: int,
    entry_point: str | None,
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
    validate_serving_instance_type(instance_type, "instance_type")
    if (
        isinstance(initial_instance_count, bool)
        or not isinstance(initial_instance_count, int)
        or initial_instance_count < 1
    ):
        raise invalid("initial_instance_count", initial_instance_count, "an integer >= 1")
    url, auth_type = check_function_url_options(
        function_url, function_url_auth_type, allow_unauthenticated_function_url
    )
    environment = plan.container_environment(entry_point)
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
        instance_type=instance_type,
        initial_instance_count=initial_instance_count,
        environment=environment,
        kms_key=key,
        model_kms_key=model_kms_key,
        variant_name=check_sagemaker_name(variant_name, "variant_name"),
        function_url=url,
        function_url_auth_type=auth_type,
    )
