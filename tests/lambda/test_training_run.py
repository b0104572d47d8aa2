"""training_run.on_event (Custom::RLTrainingRun), training_run.signal and the shared _cfn plumbing.

Step Functions, SageMaker and CloudWatch Logs are moto in-process; CloudFormation's response
URL and the wait-condition handle are a recording HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

# Fixture types live in conftest.py; annotated as Any here to avoid importing conftest.
FakeContext = Moto = RecordingServer = Any
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

FIXED_NOW = datetime(2026, 3, 4, 5, 6, 7, 89_000, tzinfo=UTC)
JOB = "cartpole-ppo-2026-03-04-05-06-07-089"
HANDLE_URL = (
    "https://cloudformation-waitcondition-us-east-1.s3.amazonaws.com/handle?X-Amz-Signature=abc"
)


def json_logs(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def props(state_machine_arn: str, **overrides: str) -> dict[str, str]:
    values = {
        "StateMachineArn": state_machine_arn,
        "JobNameBase": "cartpole-ppo",
        "OutputPath": "s3://rl-bucket/training/",
        "WaitHandleUrl": HANDLE_URL,
        "Fingerprint": "f1",
    }
    values.update(overrides)
    return values


@pytest.fixture
def fixed_clock(cr: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cr.training_run, "clock", lambda: FIXED_NOW)


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def test_job_name_is_sdk_style_utc_with_milliseconds(cr: SimpleNamespace) -> None:
    tr = cr.training_run
    assert tr.job_name("cartpole-ppo", FIXED_NOW) == JOB
    # A non-UTC clock is converted, not printed in local time.
    local = FIXED_NOW.astimezone(datetime.now().astimezone().tzinfo)
    assert tr.job_name("b", local) == "b-2026-03-04-05-06-07-089"


def test_job_name_uses_the_whole_63_characters_and_no_more(cr: SimpleNamespace) -> None:
    tr = cr.training_run
    name = tr.job_name("a" * 39, FIXED_NOW)
    assert len(name) == 63 and tr.JOB_NAME_PATTERN.fullmatch(name)
    with pytest.raises(cr.cfn.ResourceError, match="at most 39"):
        tr.job_name("a" * 40, FIXED_NOW)
    with pytest.raises(cr.cfn.ResourceError, match="SageMaker rejects"):
        tr.job_name("bad_name", FIXED_NOW)


def test_execution_arn_is_derived_from_the_state_machine_arn(cr: SimpleNamespace) -> None:
    tr = cr.training_run
    sm = "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:Training"
    assert tr.execution_arn(sm, "job-1") == (
        "arn:aws-cn:states:cn-north-1:123456789012:execution:Training:job-1"
    )
    assert tr.execution_arn(sm + ":7", "job-1").endswith(":execution:Training:job-1")
    with pytest.raises(cr.cfn.ResourceError, match="not a state machine ARN"):
        tr.execution_arn("arn:aws:lambda:us-east-1:1:function:f", "job-1")


# --------------------------------------------------------------------------------------------
# Create / Update
# --------------------------------------------------------------------------------------------


def test_create_starts_the_execution_and_answers_with_the_job(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    context: FakeContext,
    fixed_clock: None,
) -> None:
    sm = moto.state_machine()
    event = cfn_event("Create", http_server.url("/cfn?sig=1"), props(sm))

    returned = cr.training_run.on_event(event, context)

    exec_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:rl-training:{JOB}"
    [put] = http_server.requests
    assert put.method == "PUT" and put.path == "/cfn?sig=1"
    assert put.headers["content-type"] == ""
    assert put.json() == {
        "Status": "SUCCESS",
        "Reason": "",
        "PhysicalResourceId": JOB,
        "StackId": event["StackId"],
        "RequestId": "req-0001",
        "LogicalResourceId": "TrainingRun",
        "Data": {
            "TrainingJobName": JOB,
            "ModelDataUrl": f"s3://rl-bucket/training/{JOB}/output/model.tar.gz",
            "ExecutionArn": exec_arn,
        },
    }
    assert returned == put.json()
    execution = moto.sfn.describe_execution(executionArn=exec_arn)
    assert execution["name"] == JOB and execution["status"] == "RUNNING"
    assert json.loads(execution["input"]) == {"WaitHandleUrl": HANDLE_URL}


def test_create_without_wait_handle_sends_an_empty_input(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    fixed_clock: None,
) -> None:
    sm = moto.state_machine()
    properties = props(sm)
    del properties["WaitHandleUrl"]
    cr.training_run.on_event(cfn_event("Create", http_server.url(), properties), None)

    [put] = http_server.requests
    assert put.json()["Status"] == "SUCCESS"
    arn = put.json()["Data"]["ExecutionArn"]
    assert json.loads(moto.sfn.describe_execution(executionArn=arn)["input"]) == {}


def test_real_clock_names_satisfy_sagemaker(
    cr: SimpleNamespace, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    sm = moto.state_machine()
    cr.training_run.on_event(
        cfn_event("Create", http_server.url(), props(sm, JobNameBase="x" * 39)), None
    )
    name = http_server.requests[0].json()["PhysicalResourceId"]
    assert len(name) == 63 and cr.training_run.JOB_NAME_PATTERN.fullmatch(name)


def test_update_starts_a_new_training_with_a_new_physical_id(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    fixed_clock: None,
) -> None:
    sm = moto.state_machine()
    old_job = "cartpole-ppo-2026-01-01-00-00-00-000"
    old = moto.sfn.start_execution(
        stateMachineArn=sm, name=old_job, input=json.dumps({"WaitHandleUrl": "https://old"})
    )
    moto.set_execution_status(old["executionArn"], "SUCCEEDED")
    event = cfn_event(
        "Update",
        http_server.url(),
        props(sm, Fingerprint="f2"),
        physical_resource_id=old_job,
        old_properties=props(sm, WaitHandleUrl="https://old"),
    )

    cr.training_run.on_event(event, None)

    body = http_server.requests[0].json()
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == JOB
    names = {e["name"] for e in moto.sfn.list_executions(stateMachineArn=sm)["executions"]}
    assert names == {old_job, JOB}


def test_update_rollback_reuses_the_training_of_the_same_wait_handle(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    fixed_clock: None,
) -> None:
    """UPDATE_ROLLBACK sends Update with the old properties: no retraining, old id back."""
    sm = moto.state_machine()
    old_job = "cartpole-ppo-2026-01-01-00-00-00-000"
    old = moto.sfn.start_execution(
        stateMachineArn=sm, name=old_job, input=json.dumps({"WaitHandleUrl": HANDLE_URL})
    )
    moto.set_execution_status(old["executionArn"], "SUCCEEDED")
    # A later, failed execution for the same handle must not be picked.
    failed = moto.sfn.start_execution(
        stateMachineArn=sm,
        name="cartpole-ppo-2026-02-01-00-00-00-000",
        input=json.dumps({"WaitHandleUrl": HANDLE_URL}),
    )
    moto.set_execution_status(failed["executionArn"], "FAILED")
    event = cfn_event(
        "Update",
        http_server.url(),
        props(sm),
        physical_resource_id="cartpole-ppo-new",
        old_properties=props(sm, WaitHandleUrl="https://new"),
    )

    cr.training_run.on_event(event, None)

    body = http_server.requests[0].json()
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == old_job
    assert body["Data"] == {
        "TrainingJobName": old_job,
        "ModelDataUrl": f"s3://rl-bucket/training/{old_job}/output/model.tar.gz",
        "ExecutionArn": old["executionArn"],
    }
    assert len(moto.sfn.list_executions(stateMachineArn=sm)["executions"]) == 2


def test_failed_create_answers_failed_with_a_placeholder_that_delete_ignores(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    context: FakeContext,
    stop_training_job_calls: list[str],
) -> None:
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:missing"
    cr.training_run.on_event(cfn_event("Create", http_server.url(), props(missing)), context)

    failed = http_server.requests[0].json()
    assert failed["Status"] == "FAILED"
    assert "StateMachineDoesNotExist" in failed["Reason"]
    assert context.log_stream_name in failed["Reason"]
    placeholder = failed["PhysicalResourceId"]
    assert placeholder == "create-failed:req-0001"

    cr.training_run.on_event(
        cfn_event("Delete", http_server.url(), props(missing), physical_resource_id=placeholder),
        context,
    )
    deleted = http_server.requests[1].json()
    assert deleted["Status"] == "SUCCESS" and deleted["PhysicalResourceId"] == placeholder
    assert stop_training_job_calls == []


def test_invalid_properties_fail_with_a_readable_reason(
    cr: SimpleNamespace, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    sm = moto.state_machine()
    cr.training_run.on_event(
        cfn_event("Create", http_server.url(), props(sm, JobNameBase="j" * 45)), None
    )
    cr.training_run.on_event(
        cfn_event("Create", http_server.url(), props(sm, OutputPath="bucket/x")), None
    )
    bad_base, bad_output = (r.json() for r in http_server.requests)
    assert bad_base["Status"] == "FAILED" and "JobNameBase" in bad_base["Reason"]
    assert "45 characters" in bad_base["Reason"]
    assert bad_output["Status"] == "FAILED" and "s3://" in bad_output["Reason"]
    assert moto.sfn.list_executions(stateMachineArn=sm)["executions"] == []


def test_failed_update_keeps_the_current_physical_id(
    cr: SimpleNamespace, moto: Moto, http_server: RecordingServer, cfn_event: Any
) -> None:
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:missing"
    event = cfn_event("Update", http_server.url(), props(missing), physical_resource_id="job-1")
    cr.training_run.on_event(event, None)
    body = http_server.requests[0].json()
    assert body["Status"] == "FAILED" and body["PhysicalResourceId"] == "job-1"


# --------------------------------------------------------------------------------------------
# Delete
# --------------------------------------------------------------------------------------------


def test_delete_stops_the_running_execution_and_the_training_job(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    stop_training_job_calls: list[str],
    fixed_clock: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sm = moto.state_machine()
    cr.training_run.on_event(cfn_event("Create", http_server.url(), props(sm)), None)
    moto.training_job(JOB, status="InProgress")
    capsys.readouterr()

    cr.training_run.on_event(
        cfn_event("Delete", http_server.url(), props(sm), physical_resource_id=JOB), None
    )

    body = http_server.requests[1].json()
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == JOB
    exec_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:rl-training:{JOB}"
    assert moto.sfn.describe_execution(executionArn=exec_arn)["status"] == "ABORTED"
    assert stop_training_job_calls == [JOB]
    assert moto.training_job_status(JOB) == "Stopping"
    [released] = [
        r
        for r in json_logs(capsys.readouterr().out)
        if r["message"] == "training resources released"
    ]
    assert released["execution"] == "execution stopped"
    assert released["training_job"] == "training job stopped"


def test_delete_leaves_finished_work_alone(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    stop_training_job_calls: list[str],
) -> None:
    sm = moto.state_machine()
    name = "cartpole-ppo-2026-01-01-00-00-00-000"
    started = moto.sfn.start_execution(stateMachineArn=sm, name=name, input="{}")
    moto.set_execution_status(started["executionArn"], "SUCCEEDED")
    moto.training_job(name, status="Completed")

    cr.training_run.on_event(
        cfn_event("Delete", http_server.url(), props(sm), physical_resource_id=name), None
    )

    assert http_server.requests[0].json()["Status"] == "SUCCESS"
    assert (
        moto.sfn.describe_execution(executionArn=started["executionArn"])["status"] == "SUCCEEDED"
    )
    assert stop_training_job_calls == []


def test_delete_tolerates_missing_execution_and_job(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sm = moto.state_machine()
    cr.training_run.on_event(
        cfn_event("Delete", http_server.url(), props(sm), physical_resource_id="gone-job"), None
    )
    body = http_server.requests[0].json()
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == "gone-job"
    [released] = [
        r
        for r in json_logs(capsys.readouterr().out)
        if r["message"] == "training resources released"
    ]
    assert released["execution"] == "execution not found"
    assert released["training_job"] == "training job not found"


def test_delete_answers_success_even_when_stopping_fails(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.responses import SageMakerResponse

    def denied(self: Any) -> Any:
        raise JsonRESTError("AccessDeniedException", "not authorized to stop")

    monkeypatch.setattr(SageMakerResponse, "stop_training_job", denied, raising=False)
    sm = moto.state_machine()
    name = "cartpole-ppo-2026-01-01-00-00-00-000"
    moto.sfn.start_execution(stateMachineArn=sm, name=name, input="{}")
    moto.training_job(name, status="InProgress")

    cr.training_run.on_event(
        cfn_event("Delete", http_server.url(), props(sm), physical_resource_id=name), None
    )

    assert http_server.requests[0].json()["Status"] == "SUCCESS"
    [released] = [
        r
        for r in json_logs(capsys.readouterr().out)
        if r["message"] == "training resources released"
    ]
    assert released["execution"] == "execution stopped"  # the other step still ran
    assert "AccessDeniedException" in released["training_job"]


# --------------------------------------------------------------------------------------------
# The response PUT and the guarantees of run_custom_resource
# --------------------------------------------------------------------------------------------


def test_response_put_is_retried_on_server_errors_only(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    fixed_clock: None,
) -> None:
    sm = moto.state_machine()
    http_server.reply(503)
    http_server.reply(500)
    http_server.reply(200)
    cr.training_run.on_event(cfn_event("Create", http_server.url(), props(sm)), None)
    assert len(http_server.requests) == 3
    assert {r.body for r in http_server.requests} == {http_server.requests[0].body}

    http_server.requests.clear()
    http_server.reply(403)
    body = cr.training_run.on_event(
        cfn_event("Delete", http_server.url(), props(sm), physical_resource_id=JOB), None
    )
    assert len(http_server.requests) == 1  # an expired URL does not get better
    assert body is not None and body["Status"] == "SUCCESS"


def test_unreachable_response_url_is_logged_not_raised(
    cr: SimpleNamespace, cfn_event: Any, dead_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cr.attach.on_event(cfn_event("Delete", dead_url, {}, physical_resource_id="job"), None)
    errors = [r for r in json_logs(capsys.readouterr().out) if r["level"] == "ERROR"]
    assert any("could not deliver" in r["message"] for r in errors)


def test_reason_is_cut_to_fit_the_4kb_response_but_keeps_the_log_pointer(
    cr: SimpleNamespace, http_server: RecordingServer, cfn_event: Any, context: FakeContext
) -> None:
    def explode(request: Any) -> Any:
        raise cr.cfn.ResourceError('é"\n' * 5000)

    cr.cfn.run_custom_resource(
        cfn_event("Create", http_server.url(), {}),
        context,
        logger=cr.cfn.JsonLogger("t"),
        create=explode,
        update=explode,
        delete=explode,
    )
    [put] = http_server.requests
    assert len(put.body) <= cr.cfn.MAX_RESPONSE_BYTES
    reason = put.json()["Reason"]
    assert reason.startswith('é"\n') and "[...]" in reason
    assert reason.endswith(f"{context.log_group_name} {context.log_stream_name})")


def test_watchdog_answers_before_the_lambda_timeout_exactly_once(
    cr: SimpleNamespace,
    http_server: RecordingServer,
    cfn_event: Any,
    context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answered = threading.Event()

    def slow_create(request: Any) -> Any:  # returns once the watchdog's answer has arrived
        deadline = time.monotonic() + 60
        while not http_server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        answered.set()
        return cr.cfn.Outcome("late-id", {"A": "b"})

    context.remaining_ms = int((cr.cfn.TIMEOUT_MARGIN_SECONDS + 0.1) * 1000)
    sent = cr.cfn.run_custom_resource(
        cfn_event("Create", http_server.url(), {}),
        context,
        logger=cr.cfn.JsonLogger("t"),
        create=slow_create,
        update=slow_create,
        delete=slow_create,
    )
    assert answered.is_set()
    [put] = http_server.requests
    assert put.json()["Status"] == "FAILED"
    assert "did not finish before the Lambda timeout" in put.json()["Reason"]
    assert put.json()["PhysicalResourceId"] == "create-failed:req-0001"
    assert sent == put.json()
    messages = [r["message"] for r in json_logs(capsys.readouterr().out)]
    assert "CloudFormation response sent" in messages  # the watchdog's PUT finished in time
    assert "response already sent; dropping a later outcome" in messages


def test_an_unsupported_request_type_fails_and_a_non_cfn_event_raises(
    cr: SimpleNamespace, http_server: RecordingServer, cfn_event: Any
) -> None:
    cr.attach.on_event(cfn_event("Replace", http_server.url(), {}), None)
    assert "unsupported RequestType 'Replace'" in http_server.requests[0].json()["Reason"]
    with pytest.raises(ValueError, match="ResponseURL"):
        cr.attach.on_event({"RequestType": "Create"}, None)


def test_logs_are_json_lines_without_presigned_urls(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    cfn_event: Any,
    context: FakeContext,
    fixed_clock: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sm = moto.state_machine()
    cr.training_run.on_event(cfn_event("Create", http_server.url("/presigned"), props(sm)), context)
    out = capsys.readouterr().out
    records = json_logs(out)
    assert len(records) == len(out.splitlines())  # every line is JSON
    assert HANDLE_URL not in out and "/presigned" not in out
    request_log = next(r for r in records if r["message"] == "custom resource request")
    assert request_log["properties"]["WaitHandleUrl"] == "<redacted>"
    assert all(r["function_request_id"] == context.aws_request_id for r in records)
    assert request_log["cold_start"] is True


# --------------------------------------------------------------------------------------------
# signal
# --------------------------------------------------------------------------------------------


def signal_event(url: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"Status": status, "WaitHandleUrl": url, "TrainingJobName": JOB, **extra}


def test_signal_success_puts_the_wait_condition_document(
    cr: SimpleNamespace, moto: Moto, http_server: RecordingServer
) -> None:
    model = f"s3://rl-bucket/training/{JOB}/output/model.tar.gz"
    result = cr.training_run.signal(
        signal_event(http_server.url("/handle?sig=1"), "SUCCESS", ModelDataUrl=model), None
    )

    [put] = http_server.requests
    assert put.method == "PUT" and put.path == "/handle?sig=1"
    assert put.headers["content-type"] == ""
    body = put.json()
    assert body == {
        "Status": "SUCCESS",
        "Reason": f"Training job {JOB} completed",
        "UniqueId": JOB,
        "Data": body["Data"],
    }
    assert json.loads(body["Data"]) == {"TrainingJobName": JOB, "ModelDataUrl": model}
    assert result == {"Status": "SUCCESS", "Reason": body["Reason"], "TrainingJobName": JOB}


def test_signal_failure_explains_with_failure_reason_and_log_tail(
    cr: SimpleNamespace, moto: Moto, http_server: RecordingServer
) -> None:
    moto.training_job(JOB, status="Failed", failure_reason="AlgorithmError: reward is NaN")
    moto.log_stream(f"{JOB}/algo-1-1700000000", [f"step {i}" for i in range(30)])
    # Another job whose name starts the same must not leak in.
    moto.log_stream(f"{JOB}-2/algo-1-1700000000", ["other job line"])

    result = cr.training_run.signal(
        signal_event(
            http_server.url(),
            "FAILURE",
            Error={"Error": "SageMaker.AmazonSageMakerException", "Cause": "job failed"},
        ),
        None,
    )

    body = http_server.requests[0].json()
    reason = body["Reason"]
    assert body["Status"] == "FAILURE" and body["UniqueId"] == JOB
    assert json.loads(body["Data"]) == {"TrainingJobName": JOB}
    assert reason.startswith(
        f"Training job {JOB} ended with status Failed: AlgorithmError: reward is NaN"
    )
    assert f"/aws/sagemaker/TrainingJobs, log streams {JOB}/*" in reason
    lines = reason.splitlines()
    assert lines[-20:] == [f"step {i}" for i in range(10, 30)]
    assert "step 9" not in lines and "other job line" not in reason
    # SageMaker explained it: the Step Functions cause adds nothing.
    assert "job failed" not in reason
    assert result["Status"] == "FAILURE" and result["Reason"] == reason


def test_signal_failure_merges_hosts_and_stays_under_the_size_limit(
    cr: SimpleNamespace, moto: Moto, http_server: RecordingServer
) -> None:
    moto.training_job(JOB, status="Failed", failure_reason="x" * 5000)
    moto.log_stream(f"{JOB}/algo-1-1", ["a" * 1000 + f" host1 {i}" for i in range(20)])
    moto.log_stream(f"{JOB}/algo-2-1", ["host2 last words"], offset_ms=10_000)

    cr.training_run.signal(signal_event(http_server.url(), "FAILURE"), None)

    reason = http_server.requests[0].json()["Reason"]
    assert len(reason.encode()) <= cr.training_run.MAX_SIGNAL_REASON_BYTES
    assert reason.splitlines()[-1] == "[algo-2-1] host2 last words"
    assert "[algo-1-1] aaa" in reason  # long lines are cut, not dropped first
    assert "/aws/sagemaker/TrainingJobs" in reason


def test_signal_failure_without_a_job_uses_the_state_machine_error(
    cr: SimpleNamespace, moto: Moto, http_server: RecordingServer
) -> None:
    cr.training_run.signal(
        signal_event(
            http_server.url(),
            "FAILURE",
            Error={
                "Error": "SageMaker.ResourceLimitExceeded",
                "Cause": "The account-level service limit is 0 Instances",
            },
        ),
        None,
    )
    reason = http_server.requests[0].json()["Reason"]
    assert "SageMaker has no such training job" in reason
    assert (
        "SageMaker.ResourceLimitExceeded: The account-level service limit is 0 Instances" in reason
    )
    assert "No training logs in CloudWatch Logs group /aws/sagemaker/TrainingJobs" in reason


def test_signal_still_fails_the_wait_condition_when_aws_is_unreachable(
    cr: SimpleNamespace,
    moto: Moto,
    http_server: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        def __getattr__(self, name: str) -> Any:
            def call(**kwargs: Any) -> Any:
                raise EndpointConnectionError(endpoint_url="https://logs.example")

            return call

    moto.training_job(JOB, status="Failed", failure_reason="AlgorithmError: boom")
    real_client = cr.training_run.aws_client
    monkeypatch.setattr(
        cr.training_run,
        "aws_client",
        lambda service: Unreachable() if service == "logs" else real_client(service),
    )

    cr.training_run.signal(signal_event(http_server.url(), "FAILURE"), None)

    reason = http_server.requests[0].json()["Reason"]
    assert "AlgorithmError: boom" in reason
    assert "reading the logs failed: EndpointConnectionError" in reason

    http_server.requests.clear()
    monkeypatch.setattr(cr.training_run, "failure_reason", lambda parsed: 1 / 0)
    cr.training_run.signal(signal_event(http_server.url(), "FAILURE"), None)
    body = http_server.requests[0].json()
    assert body["Status"] == "FAILURE"
    assert "ZeroDivisionError while collecting details" in body["Reason"]


def test_signal_rejects_a_malformed_event_without_signalling(
    cr: SimpleNamespace, http_server: RecordingServer
) -> None:
    with pytest.raises(ValueError, match="Status"):
        cr.training_run.signal(signal_event(http_server.url(), "MAYBE"), None)
    with pytest.raises(ValueError, match="WaitHandleUrl"):
        cr.training_run.signal({"Status": "SUCCESS", "TrainingJobName": JOB}, None)
    assert http_server.requests == []


def test_signal_raises_when_the_handle_cannot_be_reached(
    cr: SimpleNamespace, http_server: RecordingServer
) -> None:
    for _ in range(3):
        http_server.reply(500)
    with pytest.raises(cr.cfn.ResponseDeliveryError, match="HTTP 500"):
        cr.training_run.signal(signal_event(http_server.url(), "SUCCESS"), None)
    assert len(http_server.requests) == 3
