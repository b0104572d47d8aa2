"""cdk-nag beyond AwsSolutions: the HIPAA Security and NIST 800-53 R5 packs on the reference app.

Users in regulated accounts run these packs on everything they deploy, so every finding on our
constructs must be either fixed or acknowledged (with a reason) by the library. The reference
app is built in-process (``build_app``, which registers AwsSolutions), the two extra packs are
added through ``Validations.of(app).add_plugins(...)`` (cdk-nag v3), and the synth's
``validation-report.json`` is read.

``EXPECTED_ACKNOWLEDGEMENTS`` is the reviewed decision per pack: what is acknowledged rather than
fixed, with the reason next to each entry. The two findings that are not in it are fixed in the
reference app (a customer managed KMS key for the artifact bucket and the endpoint's storage).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import HIPAASecurityChecks, NIST80053R5Checks

from app import build_app
from tests.conftest import cdk_json_context
from tests.test_reference_app import EXPECTED_ACKNOWLEDGEMENTS as AWS_SOLUTIONS_DEV
from tests.test_reference_app import STACKS, STAGING, TRAINED
from tests.test_reference_app import STAGING_ACKNOWLEDGEMENTS as AWS_SOLUTIONS_STAGING

PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5")

FUNCTIONS = (
    "CartPole/SignalFunction/Resource",
    "CartPole/DeployTime/Function/Resource",
    "CartPole/Gate/Function/Resource",
    "CartPole/Serving/PredictFunction/Resource",
)
LOG_GROUPS = (
    "CartPole/StateMachineLogs/Resource",
    "CartPole/SignalFunctionLogs/Resource",
    "CartPole/DeployTime/FunctionLogs/Resource",
    "CartPole/Gate/FunctionLogs/Resource",
    "CartPole/Serving/PredictFunctionLogs/Resource",
)
DEFAULT_POLICIES = (
    "CartPole/ExecutionRole/DefaultPolicy/Resource",
    "CartPole/SignalFunctionRole/DefaultPolicy/Resource",
    "CartPole/StateMachine/Role/DefaultPolicy/Resource",
    "CartPole/DeployTime/FunctionRole/DefaultPolicy/Resource",
    "CartPole/Gate/FunctionRole/DefaultPolicy/Resource",
    "CartPole/Serving/Role/DefaultPolicy/Resource",
    "CartPole/Serving/PredictFunctionRole/DefaultPolicy/Resource",
)
#: The staging stack's: the approved-version lookup and the endpoint serving it.
STAGING_FUNCTIONS = (
    "CartPole/LookupFunction/Resource",
    "CartPole/Serving/PredictFunction/Resource",
)
STAGING_LOG_GROUPS = (
    "CartPole/LookupFunctionLogs/Resource",
    "CartPole/Serving/PredictFunctionLogs/Resource",
)
STAGING_DEFAULT_POLICIES = (
    "CartPole/LookupFunctionRole/DefaultPolicy/Resource",
    "CartPole/Serving/Role/DefaultPolicy/Resource",
    "CartPole/Serving/PredictFunctionRole/DefaultPolicy/Resource",
)
ROLLBACK_ALARMS = (
    "CartPole/Serving/RollbackAlarms/Errors/Resource",
    "CartPole/Serving/RollbackAlarms/Latency/Resource",
)
BUCKETS = ("CartPole/AccessLogs/Resource", "CartPole/Artifacts/Resource")

#: Rule -> (construct paths relative to the stack, why it is acknowledged rather than fixed).
#: The HIPAA and NIST 800-53 R5 packs raise the same rules on this app.
REGULATED_ACKNOWLEDGEMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "S3BucketReplicationEnabled": (
        BUCKETS,
        "Artifacts are reproducible (retraining from the fingerprinted source gives them back) "
        "and the access-log bucket is a log sink; cross-region replication needs a bucket in "
        "another region that a single-region stack cannot own.",
    ),
    "S3DefaultEncryptionKMS": (
        ("CartPole/AccessLogs/Resource",),
        "S3 server access logging only delivers to target buckets encrypted with SSE-S3; "
        "SSE-KMS is not supported on the log target bucket.",
    ),
    "IAMNoInlinePolicy": (
        DEFAULT_POLICIES,
        "aws-cdk-lib grants (logs, X-Ray, invoke, pass role) are AWS::IAM::Policy resources "
        "attached to exactly one role each and deleted with it; a customer managed policy "
        "would add a reusable object without narrowing any permission.",
    ),
    "CloudWatchLogGroupEncrypted": (
        LOG_GROUPS,
        "CloudWatch Logs encrypts every log group at rest; the functions never log payloads "
        "(predict logs status and latency only). A customer managed key needs a key policy "
        "for the regional logs service principal: offer it as an opt-in prop.",
    ),
    "LambdaConcurrency": (
        FUNCTIONS,
        "Reserved concurrency is carved out of the account pool and fails the deploy in "
        "accounts at the default limit of 10 (unreserved concurrency may not go below 10); the "
        "custom-resource and signal functions run once per deploy. Offer it as a prop for the "
        "predict function.",
    ),
    "LambdaDLQ": (
        FUNCTIONS,
        "No asynchronous invocation has an unhandled failure to park: predict and signal are "
        "invoked synchronously (API caller / state machine task with retries), and the custom "
        "resource handler always answers CloudFormation itself, so a DLQ would have no consumer.",
    ),
    "SNSEncryptedKMS": (
        ("CartPole/Monitoring/AlarmTopic/Resource",),
        "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key "
        "(alias/aws/sns), and a customer managed key per estimator costs money and needs a key "
        "policy for a service principal; notifications carry alarm names, states and values "
        "only. Pass Monitoring(alarm_topic=...) with a customer managed key to encrypt.",
    ),
    "LambdaInsideVPC": (
        FUNCTIONS,
        "The functions only call AWS APIs (Step Functions, SageMaker, CloudWatch Logs, the "
        "presigned wait-condition URL); the stack owns no VPC. Offer a vpc prop for accounts "
        "that require one.",
    ),
}


REGULATED: set[tuple[str, str]] = {
    (path, rule) for rule, (paths, _) in REGULATED_ACKNOWLEDGEMENTS.items() for path in paths
}

#: The staging stack (no buckets, no training, no alarm topic): the same rules on its own
#: constructs, and its rollback alarms, which notify nobody but drive SageMaker's automatic
#: rollback of a failing endpoint update (acknowledged by ApprovedPolicy).
STAGING_REGULATED: set[tuple[str, str]] = {
    *((path, "IAMNoInlinePolicy") for path in STAGING_DEFAULT_POLICIES),
    *((path, "CloudWatchLogGroupEncrypted") for path in STAGING_LOG_GROUPS),
    *(
        (path, rule)
        for rule in ("LambdaConcurrency", "LambdaDLQ", "LambdaInsideVPC")
        for path in STAGING_FUNCTIONS
    ),
    *((path, "CloudWatchAlarmAction") for path in ROLLBACK_ALARMS),
}


#: pack -> {(construct path relative to the stack, finding)} for the dev stack. A finding is the
#: rule id without the pack prefix; granular AwsSolutions findings keep only their [...] part, as
#: in tests/test_reference_app.py, whose list is the single source for AwsSolutions.
EXPECTED_ACKNOWLEDGEMENTS: dict[str, set[tuple[str, str]]] = {
    "AwsSolutions": set(AWS_SOLUTIONS_DEV),
    "HIPAA.Security": REGULATED,
    "NIST.800.53.R5": REGULATED,
}
#: The same for the staging stack.
EXPECTED_STAGING_ACKNOWLEDGEMENTS: dict[str, set[tuple[str, str]]] = {
    "AwsSolutions": set(AWS_SOLUTIONS_STAGING),
    "HIPAA.Security": STAGING_REGULATED,
    "NIST.800.53.R5": STAGING_REGULATED,
}


def pack_params() -> list[Any]:
    return list(PACKS)


# ============================================================================================
# Reading the report
# ============================================================================================


def finding_id(pack: str, rule_name: str) -> str:
    """``HIPAA.Security-LambdaDLQ`` -> ``LambdaDLQ``; ``AwsSolutions-IAM5[X]`` -> ``X``."""
    rule = rule_name.removeprefix(f"{pack}-")
    if pack == "AwsSolutions" and "[" in rule:
        return rule.split("[", 1)[1].removesuffix("]")
    return rule


def plugin_report(report: dict[str, Any], pack: str) -> Any:
    """The pack's part of the report (the object itself, so tests can mutate a copy)."""
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == pack]
    return plugin


def rows(
    report: dict[str, Any], pack: str, stack: str, key: str
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path relative to ``stack``, finding, violation) for ``violations`` or
    ``suppressedViolations`` of one pack."""
    for violation in plugin_report(report, pack).get(key, []):
        for construct in violation["violatingConstructs"]:
            path = str(construct["constructPath"])
            if path.startswith(stack + "/"):
                yield path.split("/", 1)[1], finding_id(pack, violation["ruleName"]), violation


def violations(report: dict[str, Any], pack: str, stack: str) -> set[tuple[str, str]]:
    return {(path, finding) for path, finding, _ in rows(report, pack, stack, "violations")}


def acknowledged(report: dict[str, Any], pack: str, stack: str) -> set[tuple[str, str]]:
    return {
        (path, finding) for path, finding, _ in rows(report, pack, stack, "suppressedViolations")
    }


# ============================================================================================
# The synth
# ============================================================================================


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    outdir = tmp_path_factory.mktemp("nag-packs")
    app = build_app(cdk_json_context(), outdir=str(outdir))
    cdk.Validations.of(app).add_plugins(HIPAASecurityChecks(app), NIST80053R5Checks(app))
    try:
        app.synth()
    except RuntimeError as err:  # findings fail the synth after writing the report
        if "ValidationFailed" not in str(err):
            raise
    return dict(json.loads((outdir / "validation-report.json").read_text()))


def test_all_three_packs_ran(report: dict[str, Any]) -> None:
    assert sorted(p["pluginName"] for p in report["pluginReports"]) == sorted(PACKS)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("pack", pack_params())
def test_no_unacknowledged_findings(report: dict[str, Any], pack: str, stack: str) -> None:
    assert sorted(violations(report, pack, stack)) == []


@pytest.mark.parametrize("pack", pack_params())
def test_acknowledged_findings_are_as_listed(report: dict[str, Any], pack: str) -> None:
    assert acknowledged(report, pack, "RLCartPole-dev") == EXPECTED_ACKNOWLEDGEMENTS[pack]
    assert acknowledged(report, pack, STAGING) == EXPECTED_STAGING_ACKNOWLEDGEMENTS[pack]


@pytest.mark.parametrize("pack", PACKS)
def test_every_acknowledgement_has_a_reason(report: dict[str, Any], pack: str) -> None:
    for stack in STACKS:
        for path, finding, violation in rows(report, pack, stack, "suppressedViolations"):
            assert str(violation.get("reason", "")).strip(), (pack, path, finding)


@pytest.mark.parametrize("pack", ["HIPAA.Security", "NIST.800.53.R5"])
def test_environments_get_the_same_regulated_findings(report: dict[str, Any], pack: str) -> None:
    """dev and prod differ in sizes only: a finding on one and not the other is a library bug."""
    dev, prod = (violations(report, pack, s) | acknowledged(report, pack, s) for s in TRAINED)
    assert dev == prod


def test_regulated_findings_are_exactly_the_reviewed_ones(report: dict[str, Any]) -> None:
    """Every HIPAA/NIST finding today is either in the proposal or one of the two KMS fixes; a
    new kind of finding fails here."""
    to_fix = {
        ("CartPole/Artifacts/Resource", "S3DefaultEncryptionKMS"),
        ("CartPole/Serving/EndpointConfig", "SageMakerEndpointConfigurationKMSKeyConfigured"),
    }
    for pack in ("HIPAA.Security", "NIST.800.53.R5"):
        for stack in STACKS:
            expected = (
                EXPECTED_STAGING_ACKNOWLEDGEMENTS if stack == STAGING else EXPECTED_ACKNOWLEDGEMENTS
            )[pack]
            found = violations(report, pack, stack) | acknowledged(report, pack, stack)
            assert found <= expected | to_fix, (pack, stack, sorted(found - expected - to_fix))


# ------------------------------------------------------------------------- test the tests
def test_report_reading_catches_a_new_violation_and_a_lost_acknowledgement(
    report: dict[str, Any],
) -> None:
    dev = "RLCartPole-dev"
    assert acknowledged(report, "AwsSolutions", dev) == EXPECTED_ACKNOWLEDGEMENTS["AwsSolutions"]
    broken = copy.deepcopy(report)
    aws = plugin_report(broken, "AwsSolutions")
    # An acknowledgement disappears from the dev stack ...
    aws["suppressedViolations"] = [
        v
        for v in aws["suppressedViolations"]
        if not v["ruleName"].endswith("[Resource::*]")
        or not any(c["constructPath"].startswith(dev + "/") for c in v["violatingConstructs"])
    ]
    # ... and a new finding appears.
    aws["violations"] = [
        {
            "ruleName": "AwsSolutions-L1",
            "severity": "error",
            "violatingConstructs": [
                {"constructPath": f"{dev}/CartPole/Serving/PredictFunction/Resource"}
            ],
        }
    ]
    assert violations(broken, "AwsSolutions", dev) == {
        ("CartPole/Serving/PredictFunction/Resource", "L1")
    }
    assert violations(broken, "AwsSolutions", "RLCartPole-prod") == set()
    missing = EXPECTED_ACKNOWLEDGEMENTS["AwsSolutions"] - acknowledged(broken, "AwsSolutions", dev)
    assert missing and {finding for _, finding in missing} == {"Resource::*"}


def test_finding_ids_match_the_acknowledgement_format() -> None:
    assert finding_id("AwsSolutions", "AwsSolutions-IAM5[Resource::*]") == "Resource::*"
    assert finding_id("HIPAA.Security", "HIPAA.Security-LambdaDLQ") == "LambdaDLQ"
    assert finding_id("NIST.800.53.R5", "NIST.800.53.R5-LambdaDLQ") == "LambdaDLQ"
