"""The model registry: a SageMaker model package group, and how trained policies enter it.

Every trained policy of a gated estimator becomes a version of a model package group, with its
metrics and the gate's verdict, so that "what did we train, how good was it, who approved it" has
one answer, and another stack (or account) can serve an approved version without training again
(:mod:`.promotion`).

The group is retained when its stack is deleted: its versions are the record of what was trained
and approved, and SageMaker refuses to delete a group that still holds versions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Resource, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from .._iam import acknowledge_wildcard
from .._naming import SAGEMAKER_NAME, SAGEMAKER_NAME_RULE, unique_physical_name
from .._tokens import PARTITION
from ..errors import ValidationError, invalid

_SEE = "README.md#gating-and-promotion"
#: A model package group ARN, as SageMaker writes it.
GROUP_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package-group/"
    r"([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})$"
)
_ACCOUNT = re.compile(r"^[0-9]{12}$")
#: What a consuming account needs on a shared group to find and serve its approved versions.
READ_ACTIONS = ("sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages")
#: ListModelPackages names the group and lists its versions: it is granted on both ARNs, as
#: SageMaker's cross-account (AWS RAM) example grants it.
_VERSIONS_REASON = "SageMaker numbers the group's versions as they are created."


def check_group_name(value: object, argument: str = "model_package_group_name") -> str:
    if isinstance(value, str) and (Token.is_unresolved(value) or SAGEMAKER_NAME.match(value)):
        return value
    raise invalid(argument, value, f"a model package group name: {SAGEMAKER_NAME_RULE}", see=_SEE)


class ModelPackageGroupBase(Resource):
    """A model package group (ours or imported): its name, ARN, versions and grants."""

    group_name: str
    group_arn: str

    @property
    def packages_arn(self) -> str:
        """Every version of this group (``model-package/<group>/*``)."""
        stack = Stack.of(self)
        parts = stack.split_arn(self.group_arn, ArnFormat.SLASH_RESOURCE_NAME)
        return stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{self.group_name.lower()}/*",
            account=parts.account,
            region=parts.region,
            partition=parts.partition,
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Find and describe this group's versions (what a promotion's lookup does)."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(READ_ACTIONS),
            resource_arns=[self.group_arn, self.packages_arn],
        )
        role = grantee.grant_principal
        if isinstance(role, iam.Role):
            acknowledge_wildcard(role, self.packages_arn, _VERSIONS_REASON)
        return grant

    def grant_register(self, grantee: iam.IGrantable) -> iam.Grant:
        """Add versions to this group, read them back, and reject one whose deploy was rolled
        back (what a gate does)."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            # ListModelPackages: a rollback finds the version it goes back to.
            actions=["sagemaker:CreateModelPackage", *READ_ACTIONS],
            resource_arns=[self.group_arn, self.packages_arn],
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:UpdateModelPackage"],
            resource_arns=[self.packages_arn],
        )
        role = grantee.grant_principal
        if isinstance(role, iam.Role):
            acknowledge_wildcard(role, self.packages_arn, _VERSIONS_REASON)
        return grant


class ModelPackageGroup(ModelPackageGroupBase):
    """A model package group (``AWS::SageMaker::ModelPackageGroup``), retained by default.

    ``shared_with_accounts`` writes the group's resource policy so that those accounts may find
    and describe its versions: what a promotion stack there needs (README.md#cross-account).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_group_name: str | None = None,
        description: str | None = None,
        shared_with_accounts: Sequence[str] = (),
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        if model_package_group_name is not None:
            check_group_name(model_package_group_name)
        if isinstance(shared_with_accounts, str) or not all(
            isinstance(a, str) and _ACCOUNT.match(a) for a in shared_with_accounts
        ):
            raise invalid(
                "shared_with_accounts",
                shared_with_accounts,
                "a list of 12-digit AWS account ids",
                see=_SEE,
            )
        if description is not None and (
            not isinstance(description, str) or len(description) > 1024
        ):
            raise invalid(
                "description", description, "a string of at most 1024 characters", see=_SEE
            )
        super().__init__(scope, construct_id)
        name = model_package_group_name or unique_physical_name(self)
        self.group_name = name
        self.group_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="model-package-group", resource_name=name.lower()
        )
        policy = None
        if shared_with_accounts:
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadApprovedVersions",
                        "Effect": "Allow",
                        "Principal": {
                            "AWS": [f"arn:{PARTITION}:iam::{a}:root" for a in shared_with_accounts]
                        },
                        "Action": ["sagemaker:DescribeModelPackageGroup", *READ_ACTIONS],
                        "Resource": [self.group_arn, self.packages_arn],
                    }
                ],
            }
        self.resource = sagemaker.CfnModelPackageGroup(
            self,
            "Resource",
            model_package_group_name=name,
            model_package_group_description=description,
            model_package_group_policy=policy,
        )
        self.resource.apply_removal_policy(removal_policy)

    @staticmethod
    def from_name(scope: Construct, construct_id: str, name: str) -> ModelPackageGroupBase:
        """A group of this account and region, by name."""
        check_group_name(name, "model_package_group_name")
        arn = Stack.of(scope).format_arn(
            service="sagemaker", resource="model-package-group", resource_name=name.lower()
        )
        return _Imported(scope, construct_id, name, arn)

    @staticmethod
    def from_arn(scope: Construct, construct_id: str, arn: str) -> ModelPackageGroupBase:
        """A group by ARN, perhaps another account's (it must share it: README.md#cross-account)."""
        match = GROUP_ARN.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise invalid(
                "model_package_group_arn",
                arn,
                "arn:<partition>:sagemaker:<region>:<12-digit account>:model-package-group/<name> "
                f"with a name of {SAGEMAKER_NAME_RULE}",
                see=_SEE,
            )
        return _Imported(scope, construct_id, match.group(1), arn)


class _Imported(ModelPackageGroupBase):
    def __init__(self, scope: Construct, construct_id: str, name: str, arn: str) -> None:
        super().__init__(scope, construct_id)
        self.group_name = name
        self.group_arn = arn


def group_from(scope: Construct, construct_id: str, value: object) -> ModelPackageGroupBase:
    """A group as a user may name it: a construct, an ARN or a name."""
    if isinstance(value, ModelPackageGroupBase):
        return value
    if isinstance(value, str) and value.startswith("arn:"):
        return ModelPackageGroup.from_arn(scope, construct_id, value)
    if isinstance(value, str):
        return ModelPackageGroup.from_name(scope, construct_id, value)
    raise invalid(
        "model_package_group",
        value,
        "a ModelPackageGroup, a model package group ARN, or a group name",
        see=_SEE,
    )


#: The default and the bounds of the approval wait (Step Functions runs at most a year).
DEFAULT_APPROVAL_TIMEOUT = Duration.days(7)
DEFAULT_APPROVAL_POLL = Duration.minutes(5)
_MAX_APPROVAL_SECONDS = 364 * 24 * 3600


@dataclass(frozen=True)
class ModelRegistry:
    """Where trained policies are recorded, and whether a person approves them before serving.

    ``group``: a :class:`ModelPackageGroup`, a group name or ARN; by default the estimator gets a
    group of its own. ``manual_approval``: a policy that passed the gate is registered as
    ``PendingManualApproval`` and served only once someone approves it (``fit(wait=False)``
    only: a CloudFormation deploy cannot wait for a person). ``approval_timeout`` bounds that
    wait (default 7 days), ``approval_poll_interval`` sets how often it looks (default 5 min).
    """

    group: ModelPackageGroupBase | str | None = None
    manual_approval: bool = False
    approval_timeout: Duration | None = None
    approval_poll_interval: Duration | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.manual_approval, bool):
            raise invalid("manual_approval", self.manual_approval, "True or False", see=_SEE)
        for name in ("approval_timeout", "approval_poll_interval"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, Duration) or Token.is_unresolved(value.to_seconds()):
                raise invalid(name, value, "an aws_cdk.Duration", see=_SEE)
            seconds = value.to_seconds()
            if not 1 <= seconds <= _MAX_APPROVAL_SECONDS:
                raise invalid(
                    name, f"{seconds} seconds", f"1 to {_MAX_APPROVAL_SECONDS} seconds", see=_SEE
                )
            if not self.manual_approval:
                raise ValidationError(
                    f"{name}={seconds} seconds is only meaningful with manual_approval=True: "
                    f"without it a policy that passes the gate is Approved at once. See {_SEE}."
                )

    @property
    def approval_status(self) -> str:
        return "PendingManualApproval" if self.manual_approval else "Approved"

    @property
    def timeout(self) -> Duration:
        return self.approval_timeout or DEFAULT_APPROVAL_TIMEOUT

    @property
    def poll(self) -> Duration:
        return self.approval_poll_interval or DEFAULT_APPROVAL_POLL


__all__ = [
    "ModelPackageGroup",
    "ModelPackageGroupBase",
    "ModelRegistry",
    "check_group_name",
    "group_from",
]
