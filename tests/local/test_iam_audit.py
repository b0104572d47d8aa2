"""The IAM audit of the local end-to-end test, tested on requests it must judge.

The requests are built by botocore itself (serialized and signed as a client would send them,
captured before sending), so the mapping is tested on the real wire format; nothing is sent.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import iam_audit
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from iam_audit import (
    Deployment,
    Permission,
    Principal,
    RecordedRequest,
    UnmappedOperation,
    audit_requests,
    is_allowed,
    parse_recording,
    permissions_for,
    sibling,
)

from cdk_sagemaker_rl.local._plugins.lambda_exec import app_id_for

ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT = "us-east-1", "123456789012"
PREDICT_FUNCTION = "RLCartPole-dev-CartPoleServingPredictFunctionD2798DFF-QG7R7MKOLM0R"
PREDICT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/RLCartPole-dev-PredictFunctionRole-AAAA"
STARTER_FUNCTION = "RLCartPole-dev-CartPoleDeployTimeFunction4D66FF8E-RAZG4LVXYQ6R"
STARTER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/RLCartPole-dev-DeployTimeFunctionRole-BBBB"
MACHINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/RLCartPole-dev-StateMachineRole-CCCC"
TRAINING_ROLE = f"arn:aws:iam::{ACCOUNT}:role/RLCartPole-dev-ExecutionRole-DDDD"
ENDPOINT = "RLCartPole-dev-Endpoint-E7XO1I6ECATX"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT.lower()}"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Training-ZQ3I"
JOB = "cartpole-dev-2026-11-25-16-36-06-666"


class _Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


def captured(
    service: str,
    operation: str,
    *,
    app_id: str | None = None,
    access_key: str = "testing",
    **params: Any,
) -> RecordedRequest:
    """The request a boto3 client would send for ``operation`` (signed, with its User-Agent)."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key="testing", region_name=REGION
    )
    client = session.client(
        service,
        endpoint_url="http://localhost:4599",
        config=Config(user_agent_appid=app_id, retries={"total_max_attempts": 1}),
    )

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured) as caught:
        getattr(client, operation)(**params)
    prepared = caught.value.request
    body = prepared.body
    if hasattr(body, "read"):
        body = body.read()
    headers = {
        str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in prepared.headers.items()
    }
    raw = body.encode() if isinstance(body, str) else bytes(body or b"")
    return RecordedRequest(str(prepared.method), str(prepared.url), headers, raw)


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | list[str], resources: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


PASS_TRAINING_ROLE = allow(
    "iam:PassRole",
    TRAINING_ROLE,
    Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
)


def deployment(policies: dict[str, list[dict[str, Any]]]) -> Deployment:
    """Principals named after their role, acting as the reference app's do."""
    labels = {
        PREDICT_ROLE: "PredictFunctionRole",
        STARTER_ROLE: "DeployTimeFunctionRole",
        MACHINE_ROLE: "StateMachineRole",
        TRAINING_ROLE: "ExecutionRole",
    }
    return Deployment(
        principals={
            arn: Principal(label, arn, policies.get(label, [])) for arn, label in labels.items()
        },
        app_ids={
            app_id_for(PREDICT_FUNCTION): (PREDICT_ROLE, "Lambda PredictFunction"),
            app_id_for(STARTER_FUNCTION): (STARTER_ROLE, "Lambda DeployTimeFunction"),
            app_id_for(TRAINING_ROLE): (TRAINING_ROLE, "SageMaker"),
        },
        interpreter=(MACHINE_ROLE, "Step Functions Training"),
    )


def invoke_endpoint(name: str = ENDPOINT) -> RecordedRequest:
    return captured(
        "sagemaker-runtime",
        "invoke_endpoint",
        app_id=app_id_for(PREDICT_FUNCTION),
        EndpointName=name,
        Body=b"{}",
        ContentType="application/json",
    )


# ------------------------------------------------------------------------ the audit's verdicts
def test_a_recorded_call_the_policy_does_not_allow_is_reported() -> None:
    create = captured(
        "sagemaker",
        "create_training_job",
        app_id=app_id_for(PREDICT_FUNCTION),
        TrainingJobName=JOB,
        RoleArn=TRAINING_ROLE,
        AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://bucket/training"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    report = audit_requests(
        [invoke_endpoint(), create],
        deployment(
            {"PredictFunctionRole": [policy(allow("sagemaker:InvokeEndpoint", ENDPOINT_ARN))]}
        ),
        open_gaps=False,
    )
    job_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{JOB}"
    assert report.findings == [
        "NOT ALLOWED: PredictFunctionRole (Lambda PredictFunction) calls CreateTrainingJob: "
        f"sagemaker:CreateTrainingJob on {job_arn}",
        "NOT ALLOWED: PredictFunctionRole (Lambda PredictFunction) calls CreateTrainingJob: "
        f"iam:PassRole on {TRAINING_ROLE} [iam:PassedToService=sagemaker.amazonaws.com]",
    ]
    verdicts = {(c.operation, c.permission.action): c.allowed for c in report.call_checks}
    assert verdicts[("InvokeEndpoint", "sagemaker:InvokeEndpoint")] is True
    assert "NOT ALLOWED" in report.render()


def test_a_policy_that_allows_another_endpoint_is_too_broad() -> None:
    broad = policy(allow("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:*:endpoint/*"))
    report = audit_requests(
        [invoke_endpoint()], deployment({"PredictFunctionRole": [broad]}), open_gaps=False
    )
    another = ENDPOINT_ARN.replace("endpoint/", "endpoint/another-")
    assert report.findings == [
        f"TOO BROAD: PredictFunctionRole may sagemaker:InvokeEndpoint on {another} "
        "(another resource)"
    ]


def test_another_role_that_may_do_a_principals_job_is_too_broad() -> None:
    start = captured(
        "stepfunctions",
        "start_execution",
        app_id=app_id_for(STARTER_FUNCTION),
        stateMachineArn=MACHINE_ARN,
        name=JOB,
    )
    starter = policy(allow("states:StartExecution", MACHINE_ARN))
    report = audit_requests(
        [invoke_endpoint(), start],
        deployment(
            {
                "DeployTimeFunctionRole": [starter],
                # The predict function may also start the training: not its job.
                "PredictFunctionRole": [
                    policy(allow(["sagemaker:InvokeEndpoint", "states:StartExecution"], "*"))
                ],
            }
        ),
        open_gaps=False,
    )
    assert (
        "TOO BROAD: PredictFunctionRole may states:StartExecution on "
        f"{MACHINE_ARN} (the job of DeployTimeFunctionRole)"
    ) in report.findings
    # The other roles were probed with the same calls, and are denied them.
    probed = {(who, str(p)) for who, _, p, allowed in report.probes if not allowed}
    assert ("ExecutionRole", f"states:StartExecution on {MACHINE_ARN}") in probed
    assert ("DeployTimeFunctionRole", f"sagemaker:InvokeEndpoint on {ENDPOINT_ARN}") in probed


def test_an_unmapped_operation_and_an_unknown_principal_are_findings() -> None:
    delete = captured(
        "sagemaker",
        "delete_model",
        app_id=app_id_for(PREDICT_FUNCTION),
        ModelName="model",
    )
    stranger = captured(
        "sagemaker-runtime",
        "invoke_endpoint",
        app_id="somebody-else",
        EndpointName=ENDPOINT,
        Body=b"{}",
    )
    deployer = captured("cloudformation", "describe_stacks", StackName="RLCartPole-dev")
    report = audit_requests([delete, stranger, deployer], deployment({}), open_gaps=False)
    assert len(report.findings) == 2
    assert "cannot map to IAM (sagemaker DeleteModel)" in report.findings[0]
    assert "unknown principal (User-Agent app/somebody-else)" in report.findings[1]
    assert sum(report.deployer_requests.values()) == 1


def test_interpreter_requests_are_the_state_machines_and_pass_role_needs_the_service() -> None:
    describe = captured(
        "sagemaker", "describe_training_job", access_key="ak", TrainingJobName=JOB.upper()
    )
    invoke = captured(
        "lambda",
        "invoke",
        access_key="ak",
        FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Signal-IZIU",
        Payload=b"{}",
    )
    job_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/cartpole-dev-*"
    machine = [
        policy(
            allow("sagemaker:DescribeTrainingJob", job_arn),
            allow("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Signal-*"),
        )
    ]
    report = audit_requests(
        [describe, invoke], deployment({"StateMachineRole": machine}), open_gaps=False
    )
    assert report.findings == []
    assert {c.via for c in report.call_checks} == {"Step Functions Training"}

    # With no single state machine, the interpreter's requests cannot be attributed.
    unattributed = deployment({"StateMachineRole": machine})
    unattributed.interpreter = None
    report = audit_requests([describe], unattributed, open_gaps=False)
    assert "Step Functions interpreter" in report.findings[0]

    # iam:PassRole is evaluated with iam:PassedToService (moto evaluates StringEquals).
    to_sagemaker = Permission(
        "iam:PassRole", TRAINING_ROLE, (("iam:PassedToService", "sagemaker.amazonaws.com"),)
    )
    to_lambda = Permission(
        "iam:PassRole", TRAINING_ROLE, (("iam:PassedToService", "lambda.amazonaws.com"),)
    )
    assert is_allowed([policy(PASS_TRAINING_ROLE)], to_sagemaker)
    assert not is_allowed([policy(PASS_TRAINING_ROLE)], to_lambda)


def test_an_explicit_deny_wins_and_nothing_allowed_is_denied() -> None:
    permission = Permission("s3:GetObject", "arn:aws:s3:::bucket/key")
    allowing = policy(allow("s3:GetObject", "arn:aws:s3:::bucket/*"))
    denying = policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    assert is_allowed([allowing], permission)
    assert not is_allowed([allowing, denying], permission)
    assert not is_allowed([], permission)


def test_an_open_gap_is_reported_apart_and_must_be_removed_once_fixed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listing = captured(
        "stepfunctions",
        "list_executions",
        app_id=app_id_for(STARTER_FUNCTION),
        stateMachineArn=MACHINE_ARN,
    )
    starter = {"DeployTimeFunctionRole": [policy(allow("states:StartExecution", MACHINE_ARN))]}
    # Unlisted, the missing permission is a finding.
    report = audit_requests([listing], deployment(starter))
    assert any("states:ListExecutions" in f for f in report.findings)

    monkeypatch.setitem(
        iam_audit.OPEN_GAPS,
        ("DeployTimeFunctionRole", "states:ListExecutions"),
        "a known gap, fixed in a later change",
    )
    report = audit_requests([listing], deployment(starter))
    assert report.findings == []
    assert len(report.open_gaps) == 1
    assert "states:ListExecutions" in report.open_gaps[0]

    fixed = {"DeployTimeFunctionRole": [policy(allow("states:*", MACHINE_ARN))]}
    report = audit_requests([listing], deployment(fixed))
    assert any("no longer finds it: remove the entry" in f for f in report.findings)


# ------------------------------------------------------------------- request -> (action, ARN)
BUCKET_ARN = "arn:aws:s3:::artifacts"
OBJECT_ARN = "arn:aws:s3:::artifacts/training/job/output/model.tar.gz"
KEY = "training/job/output/model.tar.gz"
MULTIPART = {"Bucket": "artifacts", "Key": KEY, "UploadId": "u1"}


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("s3", "head_object", {"Bucket": "artifacts", "Key": KEY}, [("s3:GetObject", OBJECT_ARN)]),
        ("s3", "get_object", {"Bucket": "artifacts", "Key": KEY}, [("s3:GetObject", OBJECT_ARN)]),
        (
            "s3",
            "put_object",
            {"Bucket": "artifacts", "Key": KEY, "Body": b"x"},
            [("s3:PutObject", OBJECT_ARN)],
        ),
        (
            "s3",
            "create_multipart_upload",
            {"Bucket": "artifacts", "Key": KEY},
            [("s3:PutObject", OBJECT_ARN)],
        ),
        (
            "s3",
            "upload_part",
            {**MULTIPART, "PartNumber": 1, "Body": b"x"},
            [("s3:PutObject", OBJECT_ARN)],
        ),
        (
            "s3",
            "complete_multipart_upload",
            {**MULTIPART, "MultipartUpload": {"Parts": [{"ETag": "e", "PartNumber": 1}]}},
            [("s3:PutObject", OBJECT_ARN)],
        ),
        ("s3", "abort_multipart_upload", MULTIPART, [("s3:AbortMultipartUpload", OBJECT_ARN)]),
        (
            "s3",
            "list_objects_v2",
            {"Bucket": "artifacts", "Prefix": "training/"},
            [("s3:ListBucket", BUCKET_ARN)],
        ),
        (
            "sagemaker",
            "stop_training_job",
            {"TrainingJobName": "CartPole-Dev-1"},
            [
                (
                    "sagemaker:StopTrainingJob",
                    f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/cartpole-dev-1",
                )
            ],
        ),
        (
            "stepfunctions",
            "describe_execution",
            {"executionArn": f"{MACHINE_ARN.replace('stateMachine', 'execution')}:{JOB}"},
            [
                (
                    "states:DescribeExecution",
                    f"{MACHINE_ARN.replace('stateMachine', 'execution')}:{JOB}",
                )
            ],
        ),
        (
            "logs",
            "describe_log_streams",
            {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": JOB},
            [
                (
                    "logs:DescribeLogStreams",
                    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
                    ":log-stream:",
                )
            ],
        ),
        (
            "logs",
            "get_log_events",
            {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": f"{JOB}/algo-1"},
            [
                (
                    "logs:GetLogEvents",
                    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
                    f":log-stream:{JOB}/algo-1",
                )
            ],
        ),
        (
            "lambda",
            "invoke",
            {"FunctionName": "Signal", "Qualifier": "live", "Payload": b"{}"},
            [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Signal:live")],
        ),
        (
            "sagemaker-runtime",
            "invoke_endpoint",
            {"EndpointName": ENDPOINT, "Body": b"{}"},
            [("sagemaker:InvokeEndpoint", ENDPOINT_ARN)],
        ),
    ],
)
def test_requests_map_to_the_action_and_resource_iam_evaluates(
    service: str, operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    _, permissions = permissions_for(captured(service, operation, **params))
    assert [(p.action, p.resource) for p in permissions] == expected


def test_an_object_operation_the_table_does_not_know_is_unmapped() -> None:
    with pytest.raises(UnmappedOperation):
        permissions_for(captured("s3", "get_object_tagging", Bucket="artifacts", Key=KEY))


def test_a_recording_line_is_parsed_as_moto_writes_it() -> None:
    request = invoke_endpoint()
    line = json.dumps(
        {
            "headers": dict(request.headers),
            "method": request.method,
            "url": request.url,
            "body": base64.b64encode(request.body).decode(),
            "body_encoded": True,
        }
    )
    (parsed,) = parse_recording(line + "\n\n")
    assert parsed == request
    assert parsed.app_id == app_id_for(PREDICT_FUNCTION)
    assert parsed.access_key == "testing"


# Records requests with moto's own recorder, as the emulator does (its plugin installed), from
# several threads: the emulator serves requests on many. Bodies of 20 kB outgrow moto's 8 KiB
# text buffer, which is what used to split a line in two writes.
CONCURRENT_RECORDER = """
import os, sys, threading
from types import SimpleNamespace
from moto.moto_api._internal.recorder.models import Recorder
from cdk_sagemaker_rl.local._plugins import recording

recording.install()
recorder = Recorder()  # reads MOTO_ENABLE_RECORDING and MOTO_RECORDER_FILEPATH
writer = sys.argv[1]

def record(thread):
    for i in range(25):
        path = f"/{writer}/{thread}/{i}"
        request = SimpleNamespace(
            headers={"Content-Type": "application/octet-stream"}, method="PUT",
            raw_path=path, raw_url="http://localhost" + path,
        )
        recorder._record_request(request, body=bytes(20_000 if i % 2 else 100))

threads = [threading.Thread(target=record, args=(t,)) for t in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_concurrent_writers_record_one_whole_request_per_line(tmp_path: Path) -> None:
    recording = tmp_path / "requests.jsonl"
    env = {**os.environ, **iam_audit.recording_environment(recording)}
    writers = [  # two processes, as two emulators recording into one file would be
        subprocess.Popen([sys.executable, "-c", CONCURRENT_RECORDER, name], env=env, cwd=ROOT)
        for name in ("a", "b")
    ]
    assert [writer.wait(120) for writer in writers] == [0, 0]
    requests = parse_recording(recording.read_text())  # raises on a line with two objects
    expected = [f"/{w}/{t}/{i}" for w in ("a", "b") for t in range(6) for i in range(25)]
    assert sorted(urlsplit(r.url).path for r in requests) == sorted(expected)
    assert {len(r.body) for r in requests} == {100, 20_000}
    assert "\n\n" not in recording.read_text()


def test_sibling_names_another_resource_of_the_same_kind() -> None:
    assert sibling("arn:aws:s3:::bucket/key") == "arn:aws:s3:::another-bucket/key"
    assert sibling(ENDPOINT_ARN) == ENDPOINT_ARN.replace("endpoint/", "endpoint/another-")
    assert sibling(MACHINE_ARN) == MACHINE_ARN.replace(":Training", ":another-Training")
    assert sibling(TRAINING_ROLE) == TRAINING_ROLE.replace("role/", "role/another-")
    assert sibling("*") is None


def test_sagemaker_arns_are_read_as_sagemaker_returns_them() -> None:
    moto_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
    assert iam_audit.sagemaker_arn_as_aws_returns_it(moto_arn) == ENDPOINT_ARN


# ------------------------------------------------------------------------ attribution ids
def test_app_ids_fit_botocore_and_tell_principals_apart(caplog: pytest.LogCaptureFixture) -> None:
    assert app_id_for("short-function") == "short-function"
    long_ids = {app_id_for(name) for name in (PREDICT_FUNCTION, STARTER_FUNCTION, TRAINING_ROLE)}
    assert len(long_ids) == 3
    assert all(len(i) <= 50 for i in long_ids)
    with caplog.at_level(logging.WARNING, logger="botocore"):
        request = invoke_endpoint()
    assert request.app_id == app_id_for(PREDICT_FUNCTION)
    assert "user_agent_appid" not in caplog.text  # no "exceeds the maximum length" warning
