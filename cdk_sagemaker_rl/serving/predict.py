"""The predict function: the SDK's ``predictor.predict(data)`` as a Lambda next to the endpoint.

Callers get a stable function to invoke (or an IAM-authenticated URL) instead of SageMaker's
InvokeEndpoint, with input checks and error answers they can act on (``lambda/predict``). The
function URL is IAM-authenticated unless the caller explicitly asks for a public one, because a
public URL lets anyone run (and pay for) inference.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .._functions import bundled_function
from ..errors import invalid


def check_function_url_options(
    function_url: object, auth_type: object, allow_unauthenticated: object
) -> tuple[bool, lambda_.FunctionUrlAuthType]:
    """``deploy(function_url=..., function_url_auth_type=..., allow_unauthenticated_...)``."""
    if not isinstance(function_url, bool):
        raise invalid("function_url", function_url, "True or False")
    if not isinstance(allow_unauthenticated, bool):
        raise invalid("allow_unauthenticated_function_url", allow_unauthenticated, "True or False")
    if not isinstance(auth_type, lambda_.FunctionUrlAuthType):
        raise invalid(
            "function_url_auth_type",
            auth_type,
            "an aws_lambda.FunctionUrlAuthType (AWS_IAM, or NONE with "
            "allow_unauthenticated_function_url=True)",
        )
    if auth_type != lambda_.FunctionUrlAuthType.AWS_IAM and not allow_unauthenticated:
        raise invalid(
            "function_url_auth_type",
            auth_type,
            "FunctionUrlAuthType.AWS_IAM, unless allow_unauthenticated_function_url=True "
            "says you really want a public predict URL",
        )
    return function_url, auth_type


def predict_function(
    scope: Construct, *, endpoint_name: str, endpoint_arn: str, content_type: str, accept: str
) -> lambda_.Function:
    """``PredictFunction`` in ``scope``: may invoke exactly this endpoint."""
    function = bundled_function(
        scope,
        "PredictFunction",
        folder="predict",
        handler="index.handler",
        description="Calls predict on the RL policy endpoint",
        timeout=Duration.seconds(90),
        environment={
            "ENDPOINT_NAME": endpoint_name,
            "CONTENT_TYPE": content_type,
            "ACCEPT": accept,
        },
    )
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint_arn])
    )
    return function


def add_function_url(
    scope: Construct, function: lambda_.Function, auth_type: lambda_.FunctionUrlAuthType
) -> lambda_.FunctionUrl:
    """A URL for ``function`` and its ``PredictFunctionUrl`` output in ``scope``."""
    url = function.add_function_url(auth_type=auth_type)
    CfnOutput(scope, "PredictFunctionUrl", value=url.url)
    return url
