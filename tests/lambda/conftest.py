"""Fixtures for the Lambda handler tests.

The handlers run in-process exactly as Lambda loads them (the handler tree ``lambda/``, their
asset and task root, on ``sys.path``; modules imported afresh for each test by their package
names, e.g. ``custom_resources.training_run``), against moto's in-process AWS (``mock_aws``) with
real boto3 clients, so botocore validates every request. Whatever moto cannot play
(CloudFormation's response URL, the wait-condition handle, SageMaker runtime errors) is a tiny
HTTP server on 127.0.0.1 that records what it receives and answers from a script.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

REPO = Path(__file__).resolve().parents[2]
#: The handler tree: the task root of every bundled function.
HANDLER_ROOT = REPO / "lambda"
REGION = "us-east-1"
ACCOUNT = DEFAULT_ACCOUNT_ID


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no configured endpoints: nothing can reach real AWS."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("LOG_LEVEL", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-process AWS for the duration of a test."""
    with mock_aws():
        yield


# --------------------------------------------------------------------------------------------
# A recording HTTP server on 127.0.0.1
# --------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RecordingServer:
    """Records every request; answers with the scripted replies in order, then 200 empty."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[Reply] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.requests.append(
                        Recorded(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    reply = outer.script.pop(0) if outer.script else Reply()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_PUT = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        """Queues the answer to the next request (header names: ``_`` becomes ``-``)."""
        self.script.append(
            Reply(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def module_http_server() -> Iterator[RecordingServer]:
    """One recording server for a whole test module: stopping one costs up to its 50 ms poll.

    A module that overrides ``http_server`` with it must clear ``requests`` and ``script``
    before each test.
    """
    server = RecordingServer()
    yield server
    server.close()


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens any more (connection refused)."""
    server = RecordingServer()
    url = server.url("/gone")
    server.close()
    return url


# --------------------------------------------------------------------------------------------
# Handler modules, loaded fresh for every test (no client or logger state survives a test)
# --------------------------------------------------------------------------------------------


@dataclass
class FakeContext:
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    function_name: str = "rl-handler"
    log_group_name: str = "/aws/lambda/rl-handler"
    log_stream_name: str = "2026/01/01/[$LATEST]abcdef"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


def forget_handler_modules() -> None:
    """Drops every module of the handler tree, so that the next import is a cold start."""
    packages = {path.name for path in HANDLER_ROOT.iterdir() if path.is_dir()}
    for name in [name for name in sys.modules if name.partition(".")[0] in packages]:
        del sys.modules[name]


@pytest.fixture
def import_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ModuleType]]:
    """Imports a module of the handler tree (``custom_resources.attach``) as Lambda would.

    The tree is put on ``sys.path`` (Lambda's task root) and its modules, the shared logger
    included, are forgotten before the test and after it: no client, logger or cold-start state
    survives a test.
    """
    forget_handler_modules()
    monkeypatch.syspath_prepend(str(HANDLER_ROOT))
    yield importlib.import_module
    forget_handler_modules()


@pytest.fixture
def cr(
    import_handler: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> SimpleNamespace:
    """The custom-resource handlers' modules: ``cr.cfn``, ``cr.training_run``, ``cr.attach``."""
    cfn = import_handler("custom_resources._cfn")
    modules = SimpleNamespace(
        cfn=cfn,
        training_run=import_handler("custom_resources.training_run"),
        attach=import_handler("custom_resources.attach"),
    )
    # Keep retries instant; the number of attempts stays as shipped.
    monkeypatch.setattr(cfn, "RETRY_BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(cfn, "PUT_TIMEOUT_SECONDS", 2.0)
    return modules


@pytest.fixture
def load_predict(
    import_handler: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ModuleType]:
    """Imports ``predict.index`` afresh (a cold start) with the given environment."""

    def load(**env: str) -> ModuleType:
        for key in ("ENDPOINT_NAME", "CONTENT_TYPE", "ACCEPT", "MAX_PAYLOAD_BYTES"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        forget_handler_modules()
        return import_handler("predict.index")

    return load


# --------------------------------------------------------------------------------------------
# CloudFormation events and moto resources
# --------------------------------------------------------------------------------------------


def make_cfn_event(
    request_type: str,
    response_url: str,
    properties: dict[str, Any],
    *,
    resource_type: str = "Custom::RLTrainingRun",
    physical_resource_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:handler",
        "ResponseURL": response_url,
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/rl-stack/guid",
        "RequestId": "req-0001",
        "LogicalResourceId": "TrainingRun",
        "ResourceType": resource_type,
        "ResourceProperties": {"ServiceToken": "token", **properties},
    }
    if physical_resource_id is not None:
        event["PhysicalResourceId"] = physical_resource_id
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    return event


@pytest.fixture
def cfn_event() -> Callable[..., dict[str, Any]]:
    return make_cfn_event


@pytest.fixture
def cfn_call(http_server: RecordingServer, context: FakeContext) -> Callable[..., dict[str, Any]]:
    """Sends one CloudFormation request to a custom-resource handler's ``on_event``.

    The response URL is ``http_server`` (a test module's override of it included). Checks that
    exactly one response was PUT there, that ``on_event`` returned it and that it answers this
    request; returns its body.
    """

    def call(
        handler: ModuleType,
        properties: dict[str, Any],
        request_type: str = "Create",
        physical_resource_id: str | None = None,
        *,
        old_properties: dict[str, Any] | None = None,
        resource_type: str = "Custom::RLTrainingRun",
    ) -> dict[str, Any]:
        event = make_cfn_event(
            request_type,
            http_server.url("/cfn?sig=1"),
            properties,
            resource_type=resource_type,
            physical_resource_id=physical_resource_id,
            old_properties=old_properties,
        )
        before = len(http_server.requests)
        returned = handler.on_event(event, context)
        assert len(http_server.requests) == before + 1
        put = http_server.requests[-1]
        assert put.method == "PUT" and put.path == "/cfn?sig=1"
        body: dict[str, Any] = put.json()
        assert returned == body
        assert body["RequestId"] == "req-0001" and body["StackId"] == event["StackId"]
        return body

    return call


class Moto:
    """Helpers that create moto resources and set states moto would never reach by itself."""

    account = ACCOUNT
    region = REGION

    # Clients are created on first use: each costs tens of milliseconds.
    @functools.cached_property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)

    @functools.cached_property
    def sagemaker(self) -> Any:
        return boto3.client("sagemaker", region_name=REGION)

    @functools.cached_property
    def logs(self) -> Any:
        return boto3.client("logs", region_name=REGION)

    def state_machine(self, name: str = "rl-training") -> str:
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        created = self.sfn.create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn-role",
        )
        return str(created["stateMachineArn"])

    def set_execution_status(self, execution_arn: str, status: str) -> None:
        from moto.stepfunctions.models import stepfunctions_backends

        backend = stepfunctions_backends[ACCOUNT][REGION]
        backend.describe_execution(execution_arn).status = status

    def training_job(
        self, name: str, status: str = "Completed", failure_reason: str | None = None
    ) -> None:
        self.sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={
                "TrainingImage": "111122223333.dkr.ecr.us-east-1.amazonaws.com/rl:latest",
                "TrainingInputMode": "File",
            },
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker-role",
            OutputDataConfig={"S3OutputPath": "s3://bucket/output"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )
        job = self._training_job(name)
        job.training_job_status = status
        if failure_reason is not None:
            job.failure_reason = failure_reason

    def training_job_status(self, name: str) -> str:
        return str(self._training_job(name).training_job_status)

    @staticmethod
    def _training_job(name: str) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][REGION].training_jobs[name]

    def log_stream(self, stream: str, messages: list[str], offset_ms: int = 0) -> None:
        """Puts ``messages`` 1 ms apart, starting a minute ago plus ``offset_ms``.

        Recent timestamps: CloudWatch Logs (and moto) reject events older than 14 days.
        """
        start_ms = int(time.time() * 1000) - 60_000 + offset_ms
        group = "/aws/sagemaker/TrainingJobs"
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=group)
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self.logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[
                {"timestamp": start_ms + i, "message": message}
                for i, message in enumerate(messages)
            ],
        )


@pytest.fixture
def moto(aws: None) -> Moto:
    return Moto()


@pytest.fixture
def stop_training_job_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Adds StopTrainingJob to moto (5.2.5 lacks it): records the name, sets status Stopping.

    It is added to moto's response class, so the handler's request still goes through botocore
    (serialisation and validation) and moto's dispatch like any other call.
    """
    from moto.core.responses import EmptyResult
    from moto.sagemaker.responses import SageMakerResponse

    calls: list[str] = []

    def stop_training_job(self: Any) -> Any:
        name = self._get_param("TrainingJobName")
        calls.append(name)
        self.sagemaker_backend.training_jobs[name].training_job_status = "Stopping"
        return EmptyResult()

    monkeypatch.setattr(SageMakerResponse, "stop_training_job", stop_training_job, raising=False)
    return calls


# --------------------------------------------------------------------------------------------
# The reward gate and the model registry (tests/lambda/test_gate.py, test_approved_version.py)
# --------------------------------------------------------------------------------------------


class RegistryMoto(Moto):
    """Moto plus what the gate reads and writes: job metrics, output archives, registry groups."""

    @functools.cached_property
    def s3(self) -> Any:
        return boto3.client("s3", region_name=REGION)

    def final_metrics(self, job_name: str, metrics: dict[str, float]) -> None:
        """Sets the job's FinalMetricDataList (moto fills in a fixed ``train:progress`` one)."""
        self._training_job(job_name).final_metric_data_list = [
            {"MetricName": name, "Value": value, "Timestamp": datetime.now(UTC)}
            for name, value in metrics.items()
        ]

    def output_archive(self, job_name: str, members: dict[str, bytes]) -> str:
        """Uploads ``<S3OutputPath>/<job>/output/output.tar.gz`` holding ``members``.

        ``S3OutputPath`` is the job's own (``s3://bucket/output`` for :meth:`training_job`); the
        bucket is created when missing. Returns the archive's S3 URI.
        """
        output = self._training_job(job_name).output_data_config["S3OutputPath"]
        bucket, _, prefix = output.removeprefix("s3://").rstrip("/").partition("/")
        key = "/".join(p for p in (prefix, job_name, "output/output.tar.gz") if p)
        with contextlib.suppress(self.s3.exceptions.BucketAlreadyOwnedByYou):
            self.s3.create_bucket(Bucket=bucket)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        self.s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        return f"s3://{bucket}/{key}"

    def model_package_group(self, name: str) -> str:
        created = self.sagemaker.create_model_package_group(
            ModelPackageGroupName=name, ModelPackageGroupDescription="policies"
        )
        return str(created["ModelPackageGroupArn"])

    def model_package(
        self,
        group: str,
        status: str,
        *,
        image: str = "111122223333.dkr.ecr.us-east-1.amazonaws.com/rl-serve:1",
        model_data_url: str = "s3://bucket/output/job/output/model.tar.gz",
        created: datetime | None = None,
    ) -> str:
        """A version of ``group`` with ``status``; ``created`` overrides its CreationTime.

        moto stamps versions to the millisecond and keeps ties in insertion order, so tests
        that depend on "newest" set the times themselves.
        """
        arn = str(
            self.sagemaker.create_model_package(
                ModelPackageGroupName=group,
                ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [{"Image": image, "ModelDataUrl": model_data_url}],
                    "SupportedContentTypes": ["application/json"],
                    "SupportedResponseMIMETypes": ["application/json"],
                },
            )["ModelPackageArn"]
        )
        if created is not None:
            from moto.sagemaker.models import sagemaker_backends

            package = sagemaker_backends[ACCOUNT][REGION].model_packages[arn]
            # moto keeps naive UTC datetimes (its utcnow()).
            package.creation_time = created.astimezone(UTC).replace(tzinfo=None)
        return arn

    def endpoint(self, name: str, tags: dict[str, str] | None = None) -> str:
        """An endpoint (model and config included) with ``tags``; returns its ARN."""
        self.sagemaker.create_model(
            ModelName=f"{name}-model",
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker-role",
            PrimaryContainer={"Image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/rl:1"},
        )
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{name}-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        arn = str(
            self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")[
                "EndpointArn"
            ]
        )
        if tags:
            self.sagemaker.add_tags(
                ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        return arn


@pytest.fixture
def registry_moto(aws: None) -> RegistryMoto:
    return RegistryMoto()
