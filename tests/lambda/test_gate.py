"""gate.py: the reward gate and the model registry (Custom::RLPolicyGate and the workflow tasks).

SageMaker (training jobs, endpoints and their tags, model package groups and versions) and S3
(the jobs' output.tar.gz) are moto in-process with real boto3 clients, so botocore validates
every request the handler makes; CloudFormation's response URL is a recording HTTP server on
127.0.0.1. moto cannot play two things, set here by hand: a job's FinalMetricDataList (written on
moto's job object) and ListTags on an endpoint that does not exist (moto crashes with an
AttributeError; ``missing_resource_tags`` answers SageMaker's ValidationException instead).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any, TypeAlias

import pytest

# Fixture types live in conftest.py; annotated as Any here to avoid importing conftest.
FakeContext: TypeAlias = Any
RegistryMoto: TypeAlias = Any
RecordingServer: TypeAlias = Any
Run: TypeAlias = Callable[..., dict[str, Any]]
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

JOB = "cartpole-ppo-2026-03-04-05-06-07-089"
OLD_JOB = "cartpole-ppo-2026-03-01-00-00-00-000"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{JOB}"
GROUP = "cartpole-ppo"
METRIC = "eval_reward_mean"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
ENVIRONMENT = {"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}
ENDPOINT = "cartpole-ppo-endpoint"
TAG = "cdk-sagemaker-rl:training-job"
LOGS = " (handler logs: CloudWatch Logs /aws/lambda/rl-handler 2026/01/01/[$LATEST]abcdef)"
KEEPS_SERVING = (
    f"The policy is not served (registered as Rejected in model package group {GROUP}); "
    "the endpoint keeps serving the previous policy."
)


def version_arn(number: int, group: str = GROUP) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{number}"


def model_data(job: str = JOB) -> str:
    return f"s3://bucket/output/{job}/output/model.tar.gz"


def gate_spec(
    comparison: str = ">=",
    threshold: float = 450.0,
    *,
    metric: str = METRIC,
    max_regression: float | None = None,
    file: str | None = None,
) -> dict[str, Any]:
    """The Gate property as PolicyGate renders it (numbers as strings, as CloudFormation does)."""
    spec: dict[str, Any] = {
        "Metric": metric,
        "Comparison": comparison,
        "Threshold": repr(threshold),
        "Source": {"Kind": "EvaluationFile", "File": file} if file else {"Kind": "FinalMetric"},
    }
    if max_regression is not None:
        spec["MaxRegression"] = repr(max_regression)
    return spec


def props(job: str = JOB, gate: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "TrainingJobName": job,
        "ModelPackageGroupName": GROUP,
        "ApprovalStatus": "Approved",
        "Container": {"Image": IMAGE, "Environment": dict(ENVIRONMENT)},
        "Gate": gate_spec() if gate is None else gate,
    }
    values.update(extra)
    return values


@pytest.fixture
def gate(cr: SimpleNamespace, import_handler: Callable[[str], ModuleType]) -> ModuleType:
    """custom_resources.gate, loaded cold (``cr`` already shortened _cfn's retry backoff)."""
    return import_handler("custom_resources.gate")


@pytest.fixture
def http_server(module_http_server: RecordingServer) -> RecordingServer:
    """The module's recording server, emptied: CloudFormation's response URL for one test."""
    module_http_server.requests.clear()
    module_http_server.script.clear()
    return module_http_server


@pytest.fixture
def moto(registry_moto: RegistryMoto) -> RegistryMoto:
    registry_moto.model_package_group(GROUP)
    return registry_moto


@pytest.fixture
def list_tags_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the ARNs given to ListTags; an ARN naming nothing is a ValidationException.

    moto 5.2.5 looks the resource up with ``dict.get`` and then crashes on ``None.tags``
    (AttributeError, raised straight through the in-process client); SageMaker answers a
    ValidationException ("Resource does not exist."), which is what this stub raises.
    """
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend

    calls: list[str] = []
    original_lookup = SageMakerModelBackend._get_resource_from_arn
    original_list_tags = SageMakerModelBackend.list_tags

    def get_resource_from_arn(self: Any, arn: str) -> Any:
        resource = original_lookup(self, arn)
        if resource is None:
            raise ValidationError(message="Resource does not exist.")
        return resource

    def list_tags(self: Any, arn: str, **kwargs: Any) -> Any:
        calls.append(arn)
        return original_list_tags(self, arn, **kwargs)

    monkeypatch.setattr(SageMakerModelBackend, "_get_resource_from_arn", get_resource_from_arn)
    monkeypatch.setattr(SageMakerModelBackend, "list_tags", list_tags)
    return calls


def trained(moto: RegistryMoto, job: str = JOB, **metrics: float) -> None:
    """A Completed job whose FinalMetricDataList holds ``metrics`` (and nothing else)."""
    moto.training_job(job)
    moto.final_metrics(job, metrics)


@pytest.fixture
def run(gate: ModuleType, moto: RegistryMoto, cfn_call: Callable[..., dict[str, Any]]) -> Run:
    """Sends one CloudFormation request to the gate (see ``cfn_call``) and returns the response."""

    def run_gate(
        properties: dict[str, Any],
        request_type: str = "Create",
        physical_resource_id: str | None = None,
        *,
        old_properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return cfn_call(
            gate,
            properties,
            request_type,
            physical_resource_id,
            old_properties=old_properties,
            resource_type="Custom::RLPolicyGate",
        )

    return run_gate


def versions(moto: RegistryMoto, group: str = GROUP) -> list[dict[str, Any]]:
    """Every version of ``group``, oldest first, as DescribeModelPackage answers."""
    listed = moto.sagemaker.list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Ascending"
    )["ModelPackageSummaryList"]
    return [
        moto.sagemaker.describe_model_package(ModelPackageName=item["ModelPackageArn"])
        for item in listed
    ]


# --------------------------------------------------------------------------------------------
# Final metric (FinalMetricDataList), through CloudFormation
# --------------------------------------------------------------------------------------------


def test_passing_final_metric_registers_an_approved_version_and_answers_success(
    run: Run, moto: RegistryMoto
) -> None:
    trained(moto, eval_reward_mean=475.5, train_loss=0.25)

    body = run(props())

    message = f"Reward gate passed for training job {JOB}: {METRIC} = 475.5, required >= 450."
    assert body["Status"] == "SUCCESS" and body["Reason"] == ""
    assert body["PhysicalResourceId"] == version_arn(1)
    assert body["Data"] == {
        "Verdict": "passed",
        "Message": message,
        "Value": "475.5",
        "ModelPackageArn": version_arn(1),
        "ApprovalStatus": "Approved",
        "TrainingJobName": JOB,
        "ApprovalDeadline": "",
    }
    [version] = versions(moto)
    assert version["ModelPackageArn"] == version_arn(1)
    assert version["ModelPackageGroupName"] == GROUP and version["ModelPackageVersion"] == 1
    assert version["ModelApprovalStatus"] == "Approved"
    assert version["ModelPackageDescription"] == message
    assert version["InferenceSpecification"] == {
        "Containers": [{"Image": IMAGE, "ModelDataUrl": model_data(), "Environment": ENVIRONMENT}],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    assert version["MetadataProperties"] == {"GeneratedBy": JOB_ARN}
    assert version["CustomerMetadataProperties"] == {
        "TrainingJobName": JOB,
        "GateVerdict": "passed",
        "GateValue": "475.5",
        "metric:eval_reward_mean": "475.5",
        "metric:train_loss": "0.25",
    }


def test_failing_final_metric_fails_the_deploy_and_registers_a_rejected_version(
    run: Run, moto: RegistryMoto
) -> None:
    trained(moto, eval_reward_mean=9.35)

    body = run(props())

    message = (
        f"Reward gate failed for training job {JOB}: {METRIC} = 9.35, required >= 450. "
        + KEEPS_SERVING
    )
    assert body["Status"] == "FAILED"
    assert body["Reason"] == message + LOGS
    # A failed Create has created nothing CloudFormation would have to delete.
    assert body["PhysicalResourceId"] == "create-failed:req-0001"
    assert body["Data"] == {}
    [version] = versions(moto)
    assert version["ModelApprovalStatus"] == "Rejected"
    assert version["ModelPackageDescription"] == message
    assert version["CustomerMetadataProperties"] == {
        "TrainingJobName": JOB,
        "GateVerdict": "failed",
        "GateValue": "9.35",
        "metric:eval_reward_mean": "9.35",
    }
    # A rejected policy is still recorded as servable as it was trained.
    assert version["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_data()


def test_failing_update_keeps_the_physical_id_of_the_policy_being_served(
    run: Run, moto: RegistryMoto
) -> None:
    """A new physical id would tell CloudFormation the resource was replaced; it must not be."""
    trained(moto, OLD_JOB, eval_reward_mean=480.0)
    first = run(props(OLD_JOB))
    trained(moto, JOB, eval_reward_mean=12.0)

    body = run(props(JOB), "Update", first["PhysicalResourceId"])

    assert body["Status"] == "FAILED"
    assert body["PhysicalResourceId"] == version_arn(1)
    assert f"{METRIC} = 12, required >= 450" in body["Reason"]
    assert [v["ModelApprovalStatus"] for v in versions(moto)] == ["Approved", "Rejected"]


@pytest.mark.parametrize(
    ("comparison", "threshold", "value", "passed"),
    [
        (">=", 450.0, 450.0, True),
        (">", 450.0, 450.0, False),
        ("<=", 0.5, 0.5, True),
        ("<", 0.5, 0.5, False),
    ],
)
def test_each_comparison_decides_the_verdict_and_the_registered_status(
    run: Run, moto: RegistryMoto, comparison: str, threshold: float, value: float, passed: bool
) -> None:
    trained(moto, eval_loss=value)

    body = run(props(gate=gate_spec(comparison, threshold, metric="eval_loss")))

    text = f"eval_loss = {value:g}, required {comparison} {threshold:g}"
    assert body["Status"] == ("SUCCESS" if passed else "FAILED")
    if passed:
        assert body["Data"]["Message"] == f"Reward gate passed for training job {JOB}: {text}."
    else:
        assert body["Reason"].startswith(f"Reward gate failed for training job {JOB}: {text}. ")
    [version] = versions(moto)
    assert version["ModelApprovalStatus"] == ("Approved" if passed else "Rejected")


def test_the_message_shows_a_value_close_to_the_threshold_as_it_is(
    run: Run, moto: RegistryMoto
) -> None:
    """A failed verdict must not read "= 500, required >= 500" (six-digit rounding)."""
    trained(moto, eval_reward_mean=499.9996)

    body = run(props(gate=gate_spec(">=", 500.0)))

    assert body["Status"] == "FAILED"
    assert f"{METRIC} = 499.9996, required >= 500. " in body["Reason"]


# --------------------------------------------------------------------------------------------
# Evaluation file inside <S3OutputPath>/<job>/output/output.tar.gz
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "member"),
    [
        ("evaluation.json", "evaluation.json"),
        ("evaluation.json", "./evaluation.json"),
        # RewardGate allows a leading dot ([A-Za-z0-9._-]{1,128}).
        (".metrics.json", "./.metrics.json"),
        (".metrics.json", ".metrics.json"),
    ],
)
def test_evaluation_file_value_passes_the_gate(
    run: Run, moto: RegistryMoto, file: str, member: str
) -> None:
    # The final metric says otherwise: the gate must read the file, not FinalMetricDataList.
    trained(moto, eval_reward_mean=1.0)
    moto.output_archive(
        JOB,
        {
            "./reward_curve.png": b"\x89PNG",
            # Not the file: a name that only differs by leading dots must not be taken for it.
            "..evaluation.json": json.dumps({METRIC: 2.0}).encode(),
            member: json.dumps({METRIC: 487.25, "episodes": 20}).encode(),
        },
    )

    body = run(props(gate=gate_spec(file=file)))

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"]["Value"] == "487.25"
    assert body["Data"]["Message"] == (
        f"Reward gate passed for training job {JOB}: {METRIC} = 487.25, required >= 450."
    )
    [version] = versions(moto)
    assert version["CustomerMetadataProperties"]["GateValue"] == "487.25"
    # The job's own final metrics are still recorded next to the gate's value.
    assert version["CustomerMetadataProperties"]["metric:eval_reward_mean"] == "1.0"


def test_evaluation_file_value_fails_the_gate(run: Run, moto: RegistryMoto) -> None:
    trained(moto)
    moto.output_archive(JOB, {"evaluation.json": json.dumps({METRIC: 9.35}).encode()})

    body = run(props(gate=gate_spec(file="evaluation.json")))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        f"Reward gate failed for training job {JOB}: {METRIC} = 9.35, required >= 450. "
        + KEEPS_SERVING
        + LOGS
    )
    assert [v["ModelApprovalStatus"] for v in versions(moto)] == ["Rejected"]


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        pytest.param(
            {"metrics.json": b"{}"},
            f"Reward gate cannot judge training job {JOB}: its output has no evaluation.json "
            "(the training script must write /opt/ml/output/data/evaluation.json)",
            id="file-not-in-archive",
        ),
        pytest.param(
            {"..evaluation.json": b'{"eval_reward_mean": 487.0}'},
            f"Reward gate cannot judge training job {JOB}: its output has no evaluation.json "
            "(the training script must write /opt/ml/output/data/evaluation.json)",
            id="only-a-look-alike-name",
        ),
        pytest.param(
            None,
            f"Reward gate cannot judge training job {JOB}: its output has no evaluation.json "
            "(the training script must write /opt/ml/output/data/evaluation.json)",
            id="no-archive",
        ),
        pytest.param(
            {"evaluation.json": b"eval_reward_mean=487"},
            f"evaluation.json of job {JOB} is not JSON: Expecting value: line 1 column 1 (char 0)",
            id="not-json",
        ),
        pytest.param(
            {"evaluation.json": b"[487.0]"},
            f"evaluation.json of job {JOB} is not a JSON object",
            id="not-an-object",
        ),
        pytest.param(
            {"evaluation.json": b'{"eval_reward_mean": "487", "episodes": 20}'},
            f"Reward gate cannot judge training job {JOB}: evaluation.json has no number under "
            "'eval_reward_mean' (found keys: episodes, eval_reward_mean)",
            id="string-value",
        ),
        pytest.param(
            {"evaluation.json": b'{"eval_reward_mean": true}'},
            f"Reward gate cannot judge training job {JOB}: evaluation.json has no number under "
            "'eval_reward_mean' (found keys: eval_reward_mean)",
            id="boolean-value",
        ),
        pytest.param(
            {"evaluation.json": b'{"reward": 487.0}'},
            f"Reward gate cannot judge training job {JOB}: evaluation.json has no number under "
            "'eval_reward_mean' (found keys: reward)",
            id="metric-missing",
        ),
    ],
)
def test_unreadable_evaluation_file_fails_naming_what_is_missing_and_registers_nothing(
    run: Run, moto: RegistryMoto, members: dict[str, bytes] | None, reason: str
) -> None:
    trained(moto, eval_reward_mean=487.0)
    if members is not None:
        moto.output_archive(JOB, members)
    else:
        moto.s3.create_bucket(Bucket="bucket")

    body = run(props(gate=gate_spec(file="evaluation.json")))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == reason + LOGS  # a GateError: no exception type in front
    assert body["PhysicalResourceId"] == "create-failed:req-0001"
    assert versions(moto) == []


def test_missing_final_metric_fails_naming_the_metric_and_registers_nothing(
    run: Run, moto: RegistryMoto
) -> None:
    trained(moto, train_loss=0.25)

    body = run(props())

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        f"Reward gate cannot judge training job {JOB}: SageMaker recorded no final value of "
        f"the metric {METRIC} (its regex never matched the job's log)" + LOGS
    )
    assert versions(moto) == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (None, f"Training job {JOB} was not found"),
        ("InProgress", f"Training job {JOB} is InProgress, not Completed"),
        ("Failed", f"Training job {JOB} is Failed, not Completed"),
    ],
)
def test_a_job_that_is_not_completed_cannot_be_judged(
    run: Run, moto: RegistryMoto, status: str | None, reason: str
) -> None:
    if status is not None:
        moto.training_job(JOB, status=status)

    body = run(props())

    assert body["Status"] == "FAILED" and body["Reason"] == reason + LOGS
    assert versions(moto) == []


# --------------------------------------------------------------------------------------------
# Champion / challenger (MaxRegression, the endpoint's training-job tag)
# --------------------------------------------------------------------------------------------


def champion_props(**gate_overrides: Any) -> dict[str, Any]:
    spec = {"max_regression": 10.0, **gate_overrides}
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
    return props(gate=gate_spec(**spec), EndpointArn=endpoint_arn, ChampionTag=TAG)


def test_challenger_slightly_worse_than_the_serving_policy_passes_within_max_regression(
    run: Run, moto: RegistryMoto, list_tags_calls: list[str]
) -> None:
    trained(moto, OLD_JOB, eval_reward_mean=480.0)
    endpoint_arn = moto.endpoint(ENDPOINT, {TAG: OLD_JOB, "team": "rl"})
    trained(moto, JOB, eval_reward_mean=475.0)

    body = run(champion_props())

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert list_tags_calls == [endpoint_arn]
    assert body["Data"]["Message"] == (
        f"Reward gate passed for training job {JOB}: {METRIC} = 475, required >= 450 and "
        f">= 470 (the serving policy, job {OLD_JOB}, scores 480; max regression 10)."
    )
    assert [v["ModelApprovalStatus"] for v in versions(moto)] == ["Approved"]


def test_challenger_worse_than_max_regression_fails_naming_the_serving_job_and_its_score(
    run: Run, moto: RegistryMoto, list_tags_calls: list[str]
) -> None:
    trained(moto, OLD_JOB, eval_reward_mean=480.0)
    moto.endpoint(ENDPOINT, {TAG: OLD_JOB})
    trained(moto, JOB, eval_reward_mean=465.0)  # above the threshold, below 480 - 10

    body = run(champion_props())

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        f"Reward gate failed for training job {JOB}: {METRIC} = 465, required >= 450 and "
        f">= 470 (the serving policy, job {OLD_JOB}, scores 480; max regression 10). "
        + KEEPS_SERVING
        + LOGS
    )
    [version] = versions(moto)
    assert version["ModelApprovalStatus"] == "Rejected"
    assert version["CustomerMetadataProperties"]["TrainingJobName"] == JOB


def test_lower_is_better_champion_bar_is_the_serving_score_plus_max_regression(
    run: Run, moto: RegistryMoto, list_tags_calls: list[str]
) -> None:
    trained(moto, OLD_JOB, eval_loss=0.25)
    moto.endpoint(ENDPOINT, {TAG: OLD_JOB})
    trained(moto, JOB, eval_loss=0.5)  # passes <= 1, but is worse than 0.25 + 0.125

    body = run(
        champion_props(comparison="<=", threshold=1.0, metric="eval_loss", max_regression=0.125)
    )

    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith(
        f"Reward gate failed for training job {JOB}: eval_loss = 0.5, required <= 1 and <= 0.375 "
        f"(the serving policy, job {OLD_JOB}, scores 0.25; max regression 0.125). "
    )


def test_champion_is_scored_from_its_own_evaluation_file(
    run: Run, moto: RegistryMoto, list_tags_calls: list[str]
) -> None:
    trained(moto, OLD_JOB)
    moto.output_archive(OLD_JOB, {"./evaluation.json": json.dumps({METRIC: 500.0}).encode()})
    moto.endpoint(ENDPOINT, {TAG: OLD_JOB})
    trained(moto, JOB)
    moto.output_archive(JOB, {"evaluation.json": json.dumps({METRIC: 489.0}).encode()})

    body = run(champion_props(file="evaluation.json"))

    assert body["Status"] == "FAILED"
    assert (
        f"{METRIC} = 489, required >= 450 and >= 490 (the serving policy, job {OLD_JOB}, "
        "scores 500; max regression 10)"
    ) in body["Reason"]


@pytest.mark.parametrize(
    "serving",
    [
        pytest.param("untagged", id="endpoint-without-tag"),
        pytest.param("none", id="no-endpoint"),
        pytest.param("self", id="endpoint-serves-this-job"),
    ],
)
def test_without_a_serving_policy_the_threshold_alone_applies(
    run: Run, moto: RegistryMoto, list_tags_calls: list[str], serving: str
) -> None:
    # A much better old job exists; it must not count unless the endpoint names it.
    trained(moto, OLD_JOB, eval_reward_mean=500.0)
    if serving == "untagged":
        moto.endpoint(ENDPOINT, {"team": "rl"})
    elif serving == "self":
        moto.endpoint(ENDPOINT, {TAG: JOB})
    trained(moto, JOB, eval_reward_mean=455.0)

    body = run(champion_props())

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert len(list_tags_calls) == 1
    why = "the endpoint already serves this policy" if serving == "self" else "no policy serves yet"
    assert body["Data"]["Message"] == (
        f"Reward gate passed for training job {JOB}: {METRIC} = 455, required >= 450 "
        f"({why}: the threshold alone applies)."
    )


def test_without_max_regression_the_endpoint_is_not_read(
    run: Run, moto: RegistryMoto, list_tags_calls: list[str]
) -> None:
    trained(moto, OLD_JOB, eval_reward_mean=500.0)
    endpoint_arn = moto.endpoint(ENDPOINT, {TAG: OLD_JOB})
    trained(moto, JOB, eval_reward_mean=455.0)

    body = run(props(EndpointArn=endpoint_arn, ChampionTag=TAG))

    assert body["Status"] == "SUCCESS"
    assert list_tags_calls == []
    assert body["Data"]["Message"] == (
        f"Reward gate passed for training job {JOB}: {METRIC} = 455, required >= 450."
    )


@pytest.mark.parametrize(
    ("value", "champion", "passed", "text"),
    [
        (475.0, ("old", 480.0), True, "and >= 470 (the serving policy, job old, scores 480;"),
        (470.0, ("old", 480.0), True, "and >= 470"),  # exactly at the floor
        (469.5, ("old", 480.0), False, "and >= 470"),
        (495.0, ("old", 480.0), True, "and >= 470"),  # better than the champion
        (445.0, ("old", 446.0), False, "and >= 436"),  # within the regression, below the bar
        (float("nan"), None, False, ""),
    ],
)
def test_judge_requires_both_the_threshold_and_the_champion_floor(
    gate: ModuleType,
    value: float,
    champion: tuple[str, float] | None,
    passed: bool,
    text: str,
) -> None:
    spec = gate.Gate.parse(gate_spec(">=", 450.0, max_regression=10.0))

    verdict, message = gate.judge(spec, value, champion)

    assert verdict is passed
    assert message.startswith(f"{METRIC} = {value:g}, required >= 450")
    assert text in message


@pytest.mark.parametrize(
    ("comparison", "value", "passed"),
    [
        (">=", 450.0, True),
        (">=", 449.5, False),
        (">=", 451.0, True),
        (">", 450.5, True),
        (">", 450.0, False),
        ("<=", 450.0, True),
        ("<=", 450.5, False),
        ("<", 449.5, True),
        ("<", 450.0, False),
    ],
)
def test_judge_applies_each_comparison_at_and_around_the_threshold(
    gate: ModuleType, comparison: str, value: float, passed: bool
) -> None:
    spec = gate.Gate.parse(gate_spec(comparison, 450.0))

    assert gate.judge(spec, value, None) == (
        passed,
        f"{METRIC} = {value:g}, required {comparison} 450",
    )


def test_gate_parse_reads_cloudformation_strings_and_refuses_an_unknown_comparison(
    gate: ModuleType,
) -> None:
    parsed = gate.Gate.parse(
        {
            "Metric": METRIC,
            "Comparison": "<",
            "Threshold": "0.5",
            "MaxRegression": "0.1",
            "Source": {"Kind": "EvaluationFile", "File": "evaluation.json"},
        }
    )
    assert parsed == gate.Gate(
        metric=METRIC,
        comparison="<",
        threshold=0.5,
        max_regression=0.1,
        source="EvaluationFile",
        file="evaluation.json",
    )
    assert not parsed.higher_is_better
    defaults = gate.Gate.parse({"Metric": METRIC, "Comparison": ">=", "Threshold": "450"})
    assert (defaults.source, defaults.file, defaults.max_regression) == ("FinalMetric", None, None)
    with pytest.raises(gate.GateError, match=r"Gate Comparison '=>' is not one of >=, >, <=, <"):
        gate.Gate.parse({"Metric": METRIC, "Comparison": "=>", "Threshold": "1"})
    with pytest.raises(gate.GateError, match="Gate must be an object"):
        gate.Gate.parse("eval_reward_mean >= 450")


# --------------------------------------------------------------------------------------------
# Registration: statuses, no gate, rollback and delete
# --------------------------------------------------------------------------------------------


def test_without_a_gate_every_policy_is_registered_with_the_passing_status(
    run: Run, moto: RegistryMoto
) -> None:
    trained(moto, eval_reward_mean=3.0)
    properties = props(Container={"Image": IMAGE})
    del properties["Gate"]

    body = run(properties)

    assert body["Status"] == "SUCCESS"
    assert body["Data"]["Verdict"] == "passed" and body["Data"]["Value"] == ""
    assert body["Data"]["Message"] == (
        f"Reward gate passed for training job {JOB}: no gate: every trained policy is registered."
    )
    [version] = versions(moto)
    assert version["ModelApprovalStatus"] == "Approved"
    # No Environment given: none registered (an empty map would be an invalid request).
    assert version["InferenceSpecification"]["Containers"] == [
        {"Image": IMAGE, "ModelDataUrl": model_data()}
    ]
    assert version["CustomerMetadataProperties"] == {
        "TrainingJobName": JOB,
        "GateVerdict": "passed",
        "metric:eval_reward_mean": "3.0",
    }


def test_rollback_update_naming_the_registered_job_registers_nothing_and_answers_the_same(
    run: Run, moto: RegistryMoto
) -> None:
    trained(moto, eval_reward_mean=475.5)
    created = run(props())
    # Were the job judged again, this would fail: the rollback must reuse the first verdict.
    moto.final_metrics(JOB, {METRIC: 1.0})

    rolled_back = run(props(), "Update", created["PhysicalResourceId"])

    assert rolled_back["Status"] == "SUCCESS"
    assert rolled_back["PhysicalResourceId"] == created["PhysicalResourceId"] == version_arn(1)
    assert rolled_back["Data"] == created["Data"]
    assert len(versions(moto)) == 1


def test_update_to_another_job_judges_and_registers_it(run: Run, moto: RegistryMoto) -> None:
    trained(moto, OLD_JOB, eval_reward_mean=460.0)
    created = run(props(OLD_JOB))
    trained(moto, JOB, eval_reward_mean=470.0)

    updated = run(props(JOB), "Update", created["PhysicalResourceId"])

    assert updated["Status"] == "SUCCESS"
    assert updated["PhysicalResourceId"] == version_arn(2)
    assert updated["Data"]["TrainingJobName"] == JOB and updated["Data"]["Value"] == "470.0"
    assert [v["CustomerMetadataProperties"]["TrainingJobName"] for v in versions(moto)] == [
        OLD_JOB,
        JOB,
    ]


def test_a_rolled_back_deploy_rejects_the_version_that_never_served(
    run: Run, moto: RegistryMoto
) -> None:
    trained(moto, OLD_JOB, eval_reward_mean=460.0)
    first = run(props(OLD_JOB))
    trained(moto, JOB, eval_reward_mean=470.0)
    second = run(props(JOB), "Update", first["PhysicalResourceId"])
    assert second["PhysicalResourceId"] == version_arn(2)

    # A later resource failed (the model did not load): CloudFormation goes back to OLD_JOB.
    rolled_back = run(
        props(OLD_JOB), "Update", second["PhysicalResourceId"], old_properties=props(JOB)
    )

    assert rolled_back["Status"] == "SUCCESS"
    assert rolled_back["Data"]["TrainingJobName"] == OLD_JOB
    # (moto's UpdateModelPackage drops the metadata: the versions are told apart by number.)
    statuses = {v["ModelPackageArn"]: v["ModelApprovalStatus"] for v in versions(moto)}
    assert statuses == {version_arn(1): "Approved", version_arn(2): "Rejected"}
    withdrawn = moto.sagemaker.describe_model_package(ModelPackageName=version_arn(2))
    assert "never served" in withdrawn["ApprovalDescription"]


def test_an_update_to_a_newer_job_rejects_nothing(run: Run, moto: RegistryMoto) -> None:
    trained(moto, OLD_JOB, eval_reward_mean=460.0)
    first = run(props(OLD_JOB))
    trained(moto, JOB, eval_reward_mean=470.0)
    run(props(JOB), "Update", first["PhysicalResourceId"], old_properties=props(OLD_JOB))
    assert [v["ModelApprovalStatus"] for v in versions(moto)] == ["Approved", "Approved"]


@pytest.mark.parametrize("physical", [version_arn(1), "create-failed:req-0000"])
def test_delete_answers_success_and_keeps_every_version(
    run: Run, moto: RegistryMoto, physical: str
) -> None:
    trained(moto, eval_reward_mean=475.5)
    run(props())

    body = run(props(), "Delete", physical)

    assert body["Status"] == "SUCCESS" and body["Reason"] == ""
    assert body["PhysicalResourceId"] == physical and body["Data"] == {}
    [version] = versions(moto)
    assert version["ModelApprovalStatus"] == "Approved"


def test_required_properties_missing_fail_the_create(run: Run) -> None:
    body = run(props(ModelPackageGroupName=""))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == ("TrainingJobName and ModelPackageGroupName are required" + LOGS)


# --------------------------------------------------------------------------------------------
# Step Functions (fit(wait=False)): on_task -> evaluate / check_approval
# --------------------------------------------------------------------------------------------


def test_pending_manual_approval_version_gets_a_deadline(
    gate: ModuleType, moto: RegistryMoto, context: FakeContext
) -> None:
    trained(moto, eval_reward_mean=475.5)
    before = time.time()

    result = gate.on_task(
        props(ApprovalStatus="PendingManualApproval", ApprovalTimeoutSeconds="3600"),
        context,
    )

    after = time.time()
    assert result["Verdict"] == "passed"
    assert result["ApprovalStatus"] == "PendingManualApproval"
    assert result["ModelPackageArn"] == version_arn(1)
    assert result["Message"] == (
        f"Reward gate passed for training job {JOB}: {METRIC} = 475.5, required >= 450. "
        f"Version waits for manual approval in model package group {GROUP}."
    )
    assert before + 3600 <= float(result["ApprovalDeadline"]) <= after + 3600
    [version] = versions(moto)
    assert version["ModelApprovalStatus"] == "PendingManualApproval"


@pytest.mark.parametrize(
    ("approval", "timeout", "value", "status"),
    [
        pytest.param(
            "PendingManualApproval", None, 475.5, "PendingManualApproval", id="no-timeout"
        ),
        pytest.param("Approved", "3600", 475.5, "Approved", id="approved"),
        pytest.param("PendingManualApproval", "3600", 9.35, "Rejected", id="failed"),
    ],
)
def test_approval_deadline_is_only_set_for_a_pending_version_with_a_timeout(
    gate: ModuleType,
    moto: RegistryMoto,
    context: FakeContext,
    approval: str,
    timeout: str | None,
    value: float,
    status: str,
) -> None:
    trained(moto, eval_reward_mean=value)
    extra: dict[str, Any] = {"ApprovalStatus": approval}
    if timeout is not None:
        extra["ApprovalTimeoutSeconds"] = timeout

    result = gate.on_task(props(**extra), context)

    assert result["ApprovalDeadline"] == ""
    assert result["ApprovalStatus"] == status
    assert [v["ModelApprovalStatus"] for v in versions(moto)] == [status]


def test_failed_verdict_is_a_task_result_not_an_error(
    gate: ModuleType, moto: RegistryMoto, context: FakeContext
) -> None:
    trained(moto, eval_reward_mean=9.35)

    result = gate.on_task(props(), context)

    assert result == {
        "Verdict": "failed",
        "Message": (
            f"Reward gate failed for training job {JOB}: {METRIC} = 9.35, required >= 450. "
            + KEEPS_SERVING
        ),
        "Value": "9.35",
        "ModelPackageArn": version_arn(1),
        "ApprovalStatus": "Rejected",
        "TrainingJobName": JOB,
        "ApprovalDeadline": "",
    }


def test_a_gate_that_cannot_be_evaluated_raises_for_the_workflow_to_catch(
    gate: ModuleType, moto: RegistryMoto, context: FakeContext
) -> None:
    trained(moto, train_loss=0.25)

    with pytest.raises(gate.GateError, match=f"no final value of the metric {METRIC}"):
        gate.on_task(props(), context)
    assert versions(moto) == []


@pytest.fixture
def pending(gate: ModuleType, moto: RegistryMoto, context: FakeContext) -> dict[str, Any]:
    """A version waiting for approval, and the evaluation result the workflow carries on."""
    trained(moto, eval_reward_mean=475.5)
    result: dict[str, Any] = gate.on_task(
        props(ApprovalStatus="PendingManualApproval", ApprovalTimeoutSeconds="3600"),
        context,
    )
    return result


def check(gate: ModuleType, evaluation: dict[str, Any], context: FakeContext) -> dict[str, Any]:
    result: dict[str, Any] = gate.on_task(
        {
            "Action": "CheckApproval",
            "ModelPackageArn": evaluation["ModelPackageArn"],
            "Deadline": evaluation["ApprovalDeadline"],
        },
        context,
    )
    return result


def test_check_approval_pending_then_approved(
    gate: ModuleType, moto: RegistryMoto, context: FakeContext, pending: dict[str, Any]
) -> None:
    arn = pending["ModelPackageArn"]
    assert check(gate, pending, context) == {
        "Status": "Pending",
        "Message": f"{arn} waits for manual approval",
    }

    moto.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")

    assert check(gate, pending, context) == {"Status": "Approved", "Message": f"{arn} was approved"}


def test_check_approval_rejected(
    gate: ModuleType, moto: RegistryMoto, context: FakeContext, pending: dict[str, Any]
) -> None:
    arn = pending["ModelPackageArn"]
    moto.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")

    assert check(gate, pending, context) == {
        "Status": "Rejected",
        "Message": f"{arn} was rejected: it is not served",
    }


def test_check_approval_expires_after_the_deadline_unless_decided(
    gate: ModuleType,
    moto: RegistryMoto,
    context: FakeContext,
    pending: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arn = pending["ModelPackageArn"]
    deadline = float(pending["ApprovalDeadline"])
    monkeypatch.setattr(gate, "time", SimpleNamespace(time=lambda: deadline - 1))
    assert check(gate, pending, context)["Status"] == "Pending"

    monkeypatch.setattr(gate, "time", SimpleNamespace(time=lambda: deadline + 1))
    assert check(gate, pending, context) == {
        "Status": "Expired",
        "Message": f"{arn} was not approved within the approval timeout: it is not served",
    }

    # A decision taken before the poll still counts after the deadline.
    moto.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    assert check(gate, pending, context)["Status"] == "Approved"


def test_a_serving_policy_that_cannot_be_scored_leaves_the_threshold_alone(
    run: Run, moto: RegistryMoto, list_tags_calls: list[str]
) -> None:
    # The serving job wrote no evaluation file (it predates the gate): not a reason to block.
    trained(moto, OLD_JOB)
    moto.endpoint(ENDPOINT, {TAG: OLD_JOB})
    trained(moto, JOB)
    moto.output_archive(JOB, {"evaluation.json": json.dumps({METRIC: 489.0}).encode()})

    body = run(champion_props(file="evaluation.json"))

    assert body["Status"] == "SUCCESS", body["Reason"]
    message = body["Data"]["Message"]
    assert (
        f"{METRIC} = 489, required >= 450 (the serving policy's score could not be read: "
        in message
    )
    assert f"training job {OLD_JOB}" in message and "the threshold alone applies" in message


def test_the_estimators_own_group_is_created_on_first_registration(
    run: Run, moto: RegistryMoto
) -> None:
    group = "cartpole-fresh"
    trained(moto, OLD_JOB, eval_reward_mean=460.0)
    create = {"CreateGroup": {"Description": "Policies trained by App/CartPole"}}
    first = run(props(OLD_JOB, ModelPackageGroupName=group, **create))
    assert first["Status"] == "SUCCESS", first.get("Reason")
    described = moto.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    assert described["ModelPackageGroupDescription"] == "Policies trained by App/CartPole"
    # The next registration finds it and creates nothing.
    trained(moto, JOB, eval_reward_mean=470.0)
    second = run(props(JOB, ModelPackageGroupName=group, **create))
    assert second["PhysicalResourceId"].endswith(f"model-package/{group}/2")
    assert len(moto.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]) >= 1


def test_a_group_the_user_named_is_never_created(run: Run, moto: RegistryMoto) -> None:
    trained(moto, JOB, eval_reward_mean=470.0)
    body = run(props(JOB, ModelPackageGroupName="not-there"))
    assert body["Status"] == "FAILED"
    assert "not-there" in body["Reason"]
    listed = moto.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert "not-there" not in [g["ModelPackageGroupName"] for g in listed]
