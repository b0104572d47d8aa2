"""Every IAM policy document the reference app synthesizes is valid IAM, per parliament.

cdk-nag judges how *broad* a policy is; it does not know whether ``sagemaker:CreateTrainingJobs``
exists or whether an ARN has the resource type an action needs. Both fail silently at deploy
time (IAM accepts unknown actions; the call is then denied at run time). Here every policy
document of every synthesized template - identity policies (AWS::IAM::Policy, inline role
policies), trust policies and bucket policies - is resolved to realistic ARNs for a concrete
partition (tests/test_api_shapes.py's resolver) and linted with parliament.

Which parliament findings fail the test
---------------------------------------
Every finding type of parliament's core checks is an error, RESOURCE_STAR included (it means an
action that supports resource-level permissions is granted on ``*``). The only exceptions are
``PARLIAMENT_MISTAKES``: cases where parliament 1.6.4's data or logic disagrees with AWS's
Service Authorization Reference, each with the reason, each applied only when the statement is
verifiably correct by parliament's own data.

Community auditors run on identity policies; what they flag is a *design* question, not an
error, so each flagged action is accepted explicitly in ``ACCEPTED_COMMUNITY_FINDINGS`` with the
reason it is needed. A new flagged action fails the test until it is reviewed and listed.

Two repo rules on top of parliament
-----------------------------------
* No Allow statement has a wildcard (``*``) in an action, nor uses NotAction. Deny statements
  may (``Deny s3:*`` unless ``aws:SecureTransport`` is the SSL-only bucket policy cdk-nag S10
  asks for; a wider Deny only takes permissions away).
* ``Resource: "*"`` only holds actions that AWS documents as having no resource type
  (``NO_RESOURCE_TYPE_ACTIONS``), i.e. actions that cannot be scoped any further.

One exception: KMS key policies. In a key policy ``Resource: "*"`` means the key itself (it is
the only form KMS accepts), and the statement that gives the account root ``kms:*`` is KMS's
default key policy: it grants no principal anything by itself, it lets IAM policies of the
account grant access to the key (without it the key can become unmanageable). Exactly that
statement is accepted (``_is_default_key_policy_statement``), nothing else.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_template
from tests.test_api_shapes import STACKS, Deployment, TemplateResolver

with warnings.catch_warnings():
    # parliament 1.6.4 locates its data with pkg_resources (setuptools < 81 is pinned for it).
    warnings.simplefilter("ignore", UserWarning)
    import parliament

#: Deployments the (environment-agnostic) templates are resolved for: one per partition.
REGIONS = ("us-east-1", "cn-north-1", "us-gov-west-1")

#: Resource types whose policy documents are resource policies (they name a Principal).
RESOURCE_POLICY_TYPES = {
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::KMS::Key",
    "AWS::Logs::ResourcePolicy",
    "AWS::Lambda::Permission",
}

#: Actions that the Service Authorization Reference lists with an empty "Resource types" column:
#: they can only be granted on "*". Each is here because something in the library needs it.
NO_RESOURCE_TYPE_ACTIONS = {
    # SageMaker training/hosting containers publish metrics (scoped by a cloudwatch:namespace
    # condition instead).
    "cloudwatch:PutMetricData",
    # ECR login before pulling the training/serving image; the pull itself is scoped to the repo.
    "ecr:GetAuthorizationToken",
    # X-Ray tracing of Lambda functions and the state machine.
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # Step Functions logging to CloudWatch Logs (vended log delivery); the Step Functions
    # developer guide documents these with Resource "*".
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}

#: (finding, action, parliament's required_format) -> why it is parliament's mistake.
PARLIAMENT_MISTAKES = {
    (
        "RESOURCE_MISMATCH",
        "states:DescribeExecution",
        "arn:*:states:*:*:express:*:*:*",
    ): "AWS lists execution* and express* as alternative resource types of DescribeExecution "
    "(a standard execution ARN or an express one); parliament 1.6.4 (statement.py, "
    "RESOURCE_MISMATCH) demands a match for every starred type, so a statement scoped to "
    "standard executions is reported as missing the express form. Applied only when a "
    "resource of the statement matches another starred type of the action.",
    (
        "RESOURCE_MISMATCH",
        "states:ListExecutions",
        "arn:*:states:*:*:mapRun:*/*:*",
    ): "AWS lists stateMachine* and mapRun* as alternative resource types of ListExecutions "
    "(the executions of a state machine, or of a Distributed Map run); parliament 1.6.4 "
    "demands both, so a statement scoped to the state machine is reported as missing the map "
    "run form. Applied only when a resource of the statement matches another starred type.",
}

#: (community finding, action) -> why the library needs that action.
ACCEPTED_COMMUNITY_FINDINGS = {
    (
        "CREDENTIALS_EXPOSURE",
        "ecr:getauthorizationtoken",
    ): "SageMaker needs an ECR token to pull the training and serving images; the token can "
    "only pull what the role's ecr:BatchGetImage statement allows (one repository).",
    (
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "iam:passrole",
    ): "The state machine passes the SageMaker execution role to CreateTrainingJob; scoped to "
    "that one role ARN and to iam:PassedToService = sagemaker.amazonaws.com.",
    (
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "logs:putresourcepolicy",
    ): "Step Functions logging (aws-cdk-lib's StateMachine with logs) needs it to let the "
    "log delivery service write to the state machine's log group.",
}


# ============================================================================================
# Collecting policy documents
# ============================================================================================


@dataclass(frozen=True)
class PolicyDocument:
    stack: str
    logical_id: str
    resource_type: str
    #: Where in the resource's properties, e.g. "PolicyDocument" or "Policies[0].PolicyDocument".
    where: str
    #: "identity", "resource" or "trust".
    kind: str
    document: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.stack}/{self.logical_id}.{self.where}"


def _documents_in(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every object with a ``Statement`` member (a policy document), wherever it is nested."""
    if isinstance(value, dict):
        if "Statement" in value:
            yield where, value
            return
        for key, item in value.items():
            yield from _documents_in(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _documents_in(item, f"{where}[{index}]")


def policy_documents(
    template: Mapping[str, Any], resolver: TemplateResolver, stack: str
) -> list[PolicyDocument]:
    found = []
    for logical_id, resource in template["Resources"].items():
        kind_of_resource = resource["Type"]
        for where, raw in _documents_in(resource.get("Properties", {}), ""):
            document = resolver.resolve(raw)
            if isinstance(document, str):
                document = json.loads(document)
            if where == "AssumeRolePolicyDocument":
                kind = "trust"
                # A trust policy is the role's resource policy: lint it with the role as the
                # resource, which parliament needs and which is what it applies to.
                role_arn = resolver.attribute(logical_id, "Arn")
                document = copy.deepcopy(document)
                for statement in _statements(document):
                    statement.setdefault("Resource", role_arn)
            elif kind_of_resource in RESOURCE_POLICY_TYPES:
                kind = "resource"
            else:
                kind = "identity"
            found.append(PolicyDocument(stack, logical_id, kind_of_resource, where, kind, document))
    return found


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return list(statements) if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# ============================================================================================
# Linting
# ============================================================================================


def _parliament_service(prefix: str) -> Mapping[str, Any]:
    for service in parliament.iam_definition:
        if service["prefix"] == prefix:
            return dict(service)
    raise KeyError(prefix)


def _matches_another_required_type(action: str, excluded_format: str, resources: list[str]) -> bool:
    """A resource of the statement matches a starred resource type of ``action`` other than the
    one parliament reported as missing (by parliament's own data and ARN matcher)."""
    from parliament.statement import get_arn_format

    prefix, name = action.split(":", 1)
    service = _parliament_service(prefix)
    (privilege,) = [p for p in service["privileges"] if p["privilege"].lower() == name.lower()]
    for entry in privilege["resource_types"]:
        resource_type = entry["resource_type"]
        if not resource_type.endswith("*"):
            continue
        arn_format = get_arn_format(resource_type, service["resources"])
        if arn_format == excluded_format:
            continue
        if any(
            parliament.is_arn_strictly_valid(resource_type[:-1], arn_format, resource)
            for resource in resources
            if resource != "*"
        ):
            return True
    return False


def lint(policy: PolicyDocument) -> list[str]:
    """The problems of one policy document (empty when it passes)."""
    community = policy.kind == "identity"
    analyzed = parliament.analyze_policy_string(
        json.dumps(policy.document), include_community_auditors=community
    )
    resources = [r for s in _statements(policy.document) for r in _as_list(s.get("Resource", []))]
    problems = []
    for finding in analyzed.findings:
        issue = finding.issue
        if issue in ("CREDENTIALS_EXPOSURE", "PERMISSIONS_MANAGEMENT_ACTIONS"):
            actions = (finding.location or {}).get("actions", [])
            unaccepted = [a for a in actions if (issue, a) not in ACCEPTED_COMMUNITY_FINDINGS]
            if unaccepted or not actions:
                problems.append(f"{policy.label}: {issue} {unaccepted or finding.detail}")
            continue
        if issue == "RESOURCE_MISMATCH" and isinstance(finding.detail, list):
            remaining = [
                entry
                for entry in finding.detail
                if not (
                    (issue, entry["action"], entry["required_format"]) in PARLIAMENT_MISTAKES
                    and _matches_another_required_type(
                        entry["action"], entry["required_format"], resources
                    )
                )
            ]
            if remaining:
                problems.append(f"{policy.label}: {issue} {remaining}")
            continue
        if issue == "RESOURCE_STAR" and all(
            _is_default_key_policy_statement(policy, s) for s in _statements(policy.document)
        ):
            continue  # the key policy's "*" is the key itself
        problems.append(f"{policy.label}: {issue} {finding.detail} at {finding.location}")
    return problems + repo_rule_problems(policy)


def _is_default_key_policy_statement(policy: PolicyDocument, statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal", {})
    root = isinstance(principal, Mapping) and str(principal.get("AWS", "")).endswith(":root")
    return (
        policy.resource_type == "AWS::KMS::Key"
        and statement.get("Effect") == "Allow"
        and root
        and _as_list(statement.get("Action")) == ["kms:*"]
        and _as_list(statement.get("Resource")) == ["*"]
    )


def repo_rule_problems(policy: PolicyDocument) -> list[str]:
    problems = []
    for index, statement in enumerate(_statements(policy.document)):
        if _is_default_key_policy_statement(policy, statement):
            continue
        where = f"{policy.label} statement {statement.get('Sid', index)}"
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        if statement.get("Effect") == "Allow":
            if "NotAction" in statement:
                problems.append(f"{where}: Allow with NotAction")
            wildcards = [a for a in actions if "*" in a]
            if wildcards:
                problems.append(f"{where}: wildcard actions {wildcards}")
            if "NotResource" in statement:
                problems.append(f"{where}: Allow with NotResource")
        elif any("*" in a for a in actions):
            condition = statement.get("Condition", {})
            if condition.get("Bool", {}).get("aws:SecureTransport") != "false":
                problems.append(
                    f"{where}: a wildcard Deny is only expected as the SSL-only bucket policy"
                )
        if "*" in _as_list(statement.get("Resource", [])):
            scopable = sorted(set(actions) - NO_RESOURCE_TYPE_ACTIONS)
            if scopable:
                problems.append(
                    f"{where}: Resource '*' for actions with a resource type {scopable}"
                )
    return problems


# ============================================================================================
# Fixtures and tests
# ============================================================================================


@pytest.fixture(scope="module", params=REGIONS)
def documents(request: pytest.FixtureRequest, reference_out: Path) -> list[PolicyDocument]:
    found = []
    for stack in STACKS:
        template = load_template(reference_out, stack)
        resolver = TemplateResolver(template, Deployment(str(request.param), stack_name=stack))
        found += policy_documents(template, resolver, stack)
    return found


def test_every_kind_of_policy_document_is_found(documents: list[PolicyDocument]) -> None:
    kinds = {(d.resource_type, d.kind) for d in documents}
    assert {
        ("AWS::IAM::Policy", "identity"),
        ("AWS::IAM::Role", "trust"),
        ("AWS::S3::BucketPolicy", "resource"),
    } <= kinds
    assert len(documents) >= 2 * 14


def test_every_policy_document_lints_clean(documents: list[PolicyDocument]) -> None:
    problems = [problem for document in documents for problem in lint(document)]
    assert problems == []


def test_no_resource_type_list_agrees_with_parliament_data() -> None:
    """The explicit list is checked against parliament's copy of the Service Authorization
    Reference: each action exists and has no required resource type there."""
    for action in sorted(NO_RESOURCE_TYPE_ACTIONS):
        prefix, name = action.split(":")
        service = _parliament_service(prefix)
        (privilege,) = [p for p in service["privileges"] if p["privilege"] == name]
        required = [r["resource_type"] for r in privilege["resource_types"] if r["resource_type"]]
        assert required == [], (action, required)


# ------------------------------------------------------------------------- test the tests
def _mutated(
    documents: list[PolicyDocument], logical_prefix: str, statement: dict[str, Any]
) -> PolicyDocument:
    (original,) = [
        d
        for d in documents
        if d.stack == "RLCartPole-dev"
        and d.logical_id.startswith(logical_prefix)
        and d.kind == "identity"
    ]
    document = copy.deepcopy(original.document)
    document["Statement"].append(statement)
    return PolicyDocument(
        original.stack,
        original.logical_id,
        original.resource_type,
        original.where,
        original.kind,
        document,
    )


def _role_policy(documents: list[PolicyDocument], prefix: str) -> PolicyDocument:
    return _mutated(
        documents,
        prefix,
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example-bucket"},
    )


def test_unmutated_documents_stay_clean(documents: list[PolicyDocument]) -> None:
    assert lint(_role_policy(documents, "CartPoleStateMachineRoleDefaultPolicy")) == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            {
                "Effect": "Allow",
                "Action": "sagemaker:CreateTrainingJobs",
                "Resource": "arn:aws:sagemaker:us-east-1:111122223333:training-job/cartpole-dev-*",
            },
            "UNKNOWN_ACTION",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "sagemakr:CreateTrainingJob",
                "Resource": "arn:aws:sagemaker:us-east-1:111122223333:training-job/cartpole-dev-*",
            },
            "UNKNOWN_PREFIX",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "sagemaker:CreateTrainingJob",
                "Resource": "arn:aws:sagemaker:us-east-1:111122223333:endpoint/cartpole-dev",
            },
            "RESOURCE_MISMATCH",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "states:DescribeExecution",
                "Resource": "arn:aws:states:us-east-1:111122223333:stateMachine:training",
            },
            "RESOURCE_MISMATCH",
        ),
        (
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:bucket/key"},
            "INVALID_ARN",
        ),
        (
            {"Effect": "Allow", "Action": "sagemaker:DescribeTrainingJob", "Resource": "*"},
            "Resource '*' for actions with a resource type",
        ),
        (
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::bucket/*"},
            "wildcard actions",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "iam:CreateAccessKey",
                "Resource": "arn:aws:iam::111122223333:user/someone",
            },
            "CREDENTIALS_EXPOSURE",
        ),
        (
            {"Effect": "Deny", "Action": "sagemaker:*", "Resource": "*"},
            "a wildcard Deny is only expected",
        ),
    ],
    ids=[
        "unknown-action",
        "unknown-prefix",
        "resource-mismatch",
        "mismatch-not-covered-by-exception",
        "malformed-arn",
        "resource-star",
        "wildcard-action",
        "unreviewed-community-finding",
        "wildcard-deny",
    ],
)
def test_lint_catches_a_broken_statement(
    documents: list[PolicyDocument], statement: dict[str, Any], expected: str
) -> None:
    problems = lint(_mutated(documents, "CartPoleExecutionRoleDefaultPolicy", statement))
    assert any(expected in problem for problem in problems), problems


def test_a_misspelt_action_in_a_real_policy_is_caught(documents: list[PolicyDocument]) -> None:
    (original,) = [
        d
        for d in documents
        if d.stack == "RLCartPole-dev"
        and d.logical_id.startswith("CartPoleStateMachineRole")
        and d.kind == "identity"
    ]
    document = copy.deepcopy(original.document)
    for statement in _statements(document):
        statement["Action"] = [
            "sagemaker:CreateTrainingJobs" if a == "sagemaker:CreateTrainingJob" else a
            for a in _as_list(statement["Action"])
        ]
    broken = PolicyDocument(
        original.stack,
        original.logical_id,
        original.resource_type,
        original.where,
        original.kind,
        document,
    )
    problems = lint(broken)
    assert any("UNKNOWN_ACTION" in p for p in problems), problems
