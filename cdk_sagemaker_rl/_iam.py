"""IAM helpers shared by the training and serving constructs.

They exist so that every policy we write names the narrowest resource AWS allows, and every wildcard
we cannot avoid is acknowledged in cdk-nag right next to the statement, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from ._tokens import is_token_string

#: One cdk-nag finding to acknowledge: (finding-level rule id, reason).
Finding = tuple[str, str]


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (a finding-level id such as IAM5[...])."""
    acknowledge_all(scope, [(rule, reason)])


def acknowledge_all(scope: IConstruct, findings: Iterable[Finding]) -> None:
    """Acknowledge several findings on ``scope`` at once (one ``Validations.acknowledge``)."""
    acknowledgments = [Acknowledgment(id=rule, reason=reason) for rule, reason in findings]
    if acknowledgments:
        Validations.of(scope).acknowledge(*acknowledgments)


def _nag_render(value: Any) -> str:
    """Render a resolved CloudFormation value the way cdk-nag names it in a finding id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(_nag_render(part) for part in parts)
    raise ValueError(f"cannot name {value!r} as a cdk-nag finding")  # pragma: no cover


def wildcard_finding(
    scope: IConstruct, resource: str, reason: str, *, stack: Stack | None = None
) -> Finding:
    """The AwsSolutions-IAM5 finding for one wildcard ``resource`` of a policy on ``scope``.

    cdk-nag v3 reports each wildcard separately, named after the resource as it appears in the
    template, so the acknowledgement must name that resource too: a blanket one would hide a
    wildcard added later by mistake. A literal (``"*"``) is its own name; a resource with tokens
    is resolved in ``stack`` (``scope``'s stack unless the caller has it at hand).
    """
    if is_token_string(resource):
        rendered = _nag_render((stack or Stack.of(scope)).resolve(resource))
    else:
        rendered = resource
    return f"AwsSolutions::AwsSolutions-IAM5[Resource::{rendered}]", reason


def acknowledge_wildcard(
    scope: IConstruct, resource: str, reason: str, *, stack: Stack | None = None
) -> None:
    """Acknowledge the AwsSolutions-IAM5 finding for one wildcard resource on ``scope``."""
    acknowledge_all(scope, [wildcard_finding(scope, resource, reason, stack=stack)])


def acknowledge_wildcards(
    scope: IConstruct, wildcards: Iterable[tuple[str, str]], *, stack: Stack | None = None
) -> None:
    """:func:`acknowledge_wildcard` for several ``(resource, reason)`` pairs on one scope."""
    findings = []
    for resource, reason in wildcards:
        if stack is None and is_token_string(resource):
            stack = Stack.of(scope)
        findings.append(wildcard_finding(scope, resource, reason, stack=stack))
    acknowledge_all(scope, findings)


#: The compliance packs (cdk-nag) whose rules our constructs answer for, besides AwsSolutions.
COMPLIANCE_PACKS = ("HIPAA.Security", "NIST.800.53.R5")


def compliance_findings(rule: str, reason: str) -> list[Finding]:
    """One rule of the HIPAA Security and NIST 800-53 R5 packs, as findings of both."""
    return [(f"{pack}::{pack}-{rule}", reason) for pack in COMPLIANCE_PACKS]


def acknowledge_compliance(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one rule of the HIPAA Security and NIST 800-53 R5 packs on ``scope``."""
    acknowledge_all(scope, compliance_findings(rule, reason))


def pass_role_to_sagemaker(sid: str, role_arn: str) -> iam.PolicyStatement:
    """iam:PassRole of one role, and only to SageMaker (what a CreateTrainingJob/Model needs)."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["iam:PassRole"],
        resources=[role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def sync_events_rule(sid: str, stack: Stack, rule_name: str) -> iam.PolicyStatement:
    """The EventBridge rule Step Functions manages for a ``.sync`` integration, and nothing else."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources=[stack.format_arn(service="events", resource="rule", resource_name=rule_name)],
    )
