"""The Lambda functions the library bundles, built one way.

Every function we ship gets the same runtime, JSON logs, X-Ray tracing and a log group we own with a
retention, so that cdk-nag's Lambda rules and a reviewer's expectations are met in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ._handlers import handler_root
from ._iam import acknowledge_all, acknowledge_wildcard, compliance_findings

#: The latest Python runtime the pinned aws-cdk-lib knows; the handlers use only the stdlib + boto3.
RUNTIME = lambda_.Runtime.PYTHON_3_14


#: The HIPAA / NIST Lambda rules every bundled function answers the same way.
_FUNCTION_FINDINGS = (
    *compliance_findings(
        "LambdaConcurrency",
        "Reserved concurrency would fail the deploy in accounts at the default limit of 10; the "
        "function is invoked by CloudFormation, Step Functions or its callers synchronously.",
    ),
    *compliance_findings(
        "LambdaDLQ",
        "Never invoked asynchronously: custom resources answer CloudFormation themselves, the "
        "signal task retries, predict is synchronous. There is nothing for a DLQ to keep.",
    ),
    *compliance_findings(
        "LambdaInsideVPC",
        "It calls only AWS APIs (and a presigned S3 URL); the stack owns no VPC to place it in.",
    ),
)


#: Left out of the asset: bytecode and tool caches of a checkout, and tests should any appear.
ASSET_EXCLUDE = ("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache", "tests")


def handler_code() -> lambda_.AssetCode:
    """The code of every bundled function: the whole handler tree (``lambda/``), one asset.

    The tree is the task root of each function, so a handler is ``<package>.<module>.<function>``
    and every package imports the code they share (``_shared``, e.g. the JSON logger) the same
    way in Lambda, in local mode and in ``tests/lambda``. CDK stages a folder once per content
    hash, so all the functions of an app point at one zip: one asset to stage and publish.
    """
    return lambda_.Code.from_asset(str(handler_root()), exclude=list(ASSET_EXCLUDE))


def handler_path(folder: str, handler: str) -> str:
    """The Handler of ``handler`` (``module.function``) in the package ``folder`` of the tree."""
    module, _, function = handler.rpartition(".")
    if not (module and function):  # pragma: no cover - programming error, not user input
        raise ValueError(f"handler must be module.function, got {handler!r}")
    source = handler_root() / folder / f"{module.replace('.', '/')}.py"
    if not source.is_file():  # pragma: no cover - packaging error, not user input
        raise FileNotFoundError(f"bundled Lambda handler missing: {source}")
    return f"{folder}.{handler}"


def bundled_function(
    scope: Construct,
    construct_id: str,
    *,
    folder: str,
    handler: str,
    description: str,
    environment: Mapping[str, str] | None = None,
    timeout: Duration | None = None,
    memory_size: int = 256,
) -> lambda_.Function:
    """A Python function running ``handler`` of ``lambda/<folder>`` with our operational defaults.

    ``folder`` is a package of the handler tree (``custom_resources``, ``predict``) and
    ``handler`` its ``module.function``; the function's Handler is ``<folder>.<handler>``.
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    # Our own role instead of AWSLambdaBasicExecutionRole: it may write to this log group only.
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description[:1000],
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    acknowledge_wildcard(
        role,
        "*",
        "X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) has no resource type.",
    )
    function = lambda_.Function(
        scope,
        construct_id,
        role=role,
        runtime=RUNTIME,
        code=handler_code(),
        handler=handler_path(folder, handler),
        description=description,
        environment=dict(environment or {}),
        timeout=timeout or Duration.seconds(60),
        memory_size=memory_size,
        tracing=lambda_.Tracing.ACTIVE,
        logging_format=lambda_.LoggingFormat.JSON,
        log_group=log_group,
    )
    acknowledge_all(function, _FUNCTION_FINDINGS)
    return function
