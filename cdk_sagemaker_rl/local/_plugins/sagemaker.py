"""SageMaker that trains and serves on this machine.

moto completes every training job at once without running anything and answers InvokeEndpoint
with canned results; it also lacks StopTrainingJob and UpdateEndpoint. This plugin:

- runs CreateTrainingJob's request through ``training_runner.run_training_job`` in a background
  thread (work tree under ``<state>/training``): DescribeTrainingJob shows
  ``InProgress`` and then ``Completed``/``Failed``/``Stopped`` with FailureReason, ModelArtifacts
  and timings; the log lines go to CloudWatch Logs (``/aws/sagemaker/TrainingJobs``, stream
  ``<job>/algo-1-<epoch>``) and to ``<state>/training.log`` (``<job> | <line>``) for a progress
  display to tail; StopTrainingJob sets the runner's stop event;
- starts a :class:`cdk_sagemaker_rl.local.model_server.LocalModelServer` for CreateEndpoint and
  UpdateEndpoint (endpoint config -> first production variant -> model -> primary container's
  ModelDataUrl, downloaded from the emulated S3, and Environment): ``Creating`` -> ``InService``,
  or ``Failed`` with the reason; an update swaps servers once the new one answers ``/ping``;
  DeleteEndpoint stops the server; CloudFormation endpoints wait for ``InService`` like
  CloudFormation does;
- forwards sagemaker-runtime InvokeEndpoint to the endpoint's server (Body, ContentType, Accept,
  custom attributes); an error status from the model is SageMaker's ``ModelError`` (424) with
  ``OriginalStatusCode`` and ``OriginalMessage``.

Stopping the emulator stops every job (the runner ends its processes) and every model server.

The S3 requests a training job or a model server makes are the ones SageMaker makes with the
job's ``RoleArn`` or the model's ``ExecutionRoleArn``: their User-Agent names that role
(``app/<id>``, see ``lambda_exec.app_id_for``), so a recording of the emulator's requests can be
checked against the role's policies.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from .lambda_exec import app_id_for
from .runtime import LOG, DummyCredentials, context

__all__ = ["TRAINING_LOG_NAME", "install", "snapshot", "stop_all"]

#: The combined training log in the state directory: one ``<job> | <line>`` per log line.
TRAINING_LOG_NAME = "training.log"

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"

#: How long a model server may take to answer ``/ping`` (loading torch alone takes seconds).
ENDPOINT_START_TIMEOUT = 300.0

#: SageMaker gives a model 60 s to answer an invocation.
INVOCATION_TIMEOUT = 60.0

#: How long CloudFormation waits for an endpoint to leave Creating/Updating.
CFN_ENDPOINT_TIMEOUT = 3600.0


def _s3_as(role_arn: str) -> Any:
    """An S3 client on the emulator whose requests name ``role_arn`` (User-Agent app id)."""
    import boto3
    from botocore.config import Config

    ctx = context()
    key, secret, token = DummyCredentials
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=ctx.region,
    )
    return session.client(
        "s3",
        endpoint_url=ctx.endpoint_url,
        config=Config(
            retries={"max_attempts": 2, "mode": "standard"},
            user_agent_appid=app_id_for(role_arn),
        ),
    )


# --- training jobs ------------------------------------------------------------------------------


@dataclass
class _TrainingRun:
    name: str
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    log_stream: str = ""


_runs: dict[tuple[str, str, str], _TrainingRun] = {}
_log_lock = threading.Lock()
_lock = threading.Lock()


def _now() -> datetime:
    return datetime.now(UTC)


def _transition(job: Any, status: str, message: str) -> None:
    """Close the open secondary status transition and open ``status`` (DescribeTrainingJob)."""
    now = _now()
    transitions = list(job.secondary_status_transitions or [])
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1] = {**transitions[-1], "EndTime": now}
    entry: dict[str, Any] = {"Status": status, "StartTime": now, "StatusMessage": message}
    if status in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
        entry["EndTime"] = now
    transitions.append(entry)
    job.secondary_status_transitions = transitions
    job.secondary_status = status
    job.last_modified_time = now


def _write_log(job_name: str, account_id: str, region: str, stream: str, line: str) -> None:
    from moto.logs.models import logs_backends

    ctx = context()
    try:
        logs_backends[account_id][region].put_log_events(
            TRAINING_LOG_GROUP, stream, [{"timestamp": int(time.time() * 1000), "message": line}]
        )
    except Exception:
        LOG.exception("could not write a training log line to CloudWatch Logs")
    with _log_lock, (ctx.state_dir / TRAINING_LOG_NAME).open("a", encoding="utf-8") as handle:
        handle.write(f"{job_name} | {line}\n")


def _start_training(backend: Any, request: dict[str, Any]) -> None:
    from moto.logs.models import logs_backends

    name = str(request["TrainingJobName"])
    job = backend.training_jobs[name]
    # moto fills in fake metric definitions and a finished job; start from the request instead.
    job.algorithm_specification = copy.deepcopy(request.get("AlgorithmSpecification") or {})
    if request.get("Environment"):
        job.environment = dict(request["Environment"])
    job.training_job_status = "InProgress"
    job.model_artifacts = None
    job.training_start_time = None
    job.training_end_time = None
    job.final_metric_data_list = None
    job.failure_reason = None
    job.secondary_status_transitions = []
    _transition(job, "Starting", "Launching requested ML instances")
    run = _TrainingRun(name, log_stream=f"{name}/algo-1-{int(time.time())}")
    logs = logs_backends[backend.account_id][backend.region_name]
    logs.ensure_log_group(TRAINING_LOG_GROUP)
    logs.create_log_stream(TRAINING_LOG_GROUP, run.log_stream)
    key = (backend.account_id, backend.region_name, name)
    with _lock:
        _runs[key] = run
    run.thread = threading.Thread(
        target=_train, args=(backend, job, request, run), name=f"training-{name}", daemon=True
    )
    run.thread.start()


def _train(backend: Any, job: Any, request: dict[str, Any], run: _TrainingRun) -> None:
    ctx = context()
    started = time.monotonic()
    seen_output = threading.Event()

    def on_log(line: str) -> None:
        if not seen_output.is_set():
            seen_output.set()
            job.training_start_time = _now()
            _transition(job, "Training", "Training image download completed. Training in progress.")
        _write_log(run.name, backend.account_id, backend.region_name, run.log_stream, line)

    try:
        from cdk_sagemaker_rl.local.training_runner import run_training_job

        result = run_training_job(
            request,
            s3=_s3_as(str(request.get("RoleArn") or "")),
            work_root=ctx.state_dir / "training",
            on_log=on_log,
            stop_event=run.stop_event,
        )
        status = result.status
        secondary = getattr(result, "secondary_status", "") or status
        reason = result.failure_reason
        model_uri = result.model_artifacts
    except ValueError as exc:
        status, secondary, reason, model_uri = "Failed", "Failed", f"ClientError: {exc}", None
    except Exception as exc:
        LOG.exception("training job %s crashed", run.name)
        status, secondary = "Failed", "Failed"
        reason, model_uri = f"InternalServerError: {type(exc).__name__}: {exc}", None
    now = _now()
    if job.training_start_time is None:
        job.training_start_time = now
    job.training_end_time = now
    seconds = max(1, int(time.monotonic() - started))
    job.training_time_in_seconds = seconds
    job.billable_time_in_seconds = seconds
    job.failure_reason = reason
    if model_uri:
        job.model_artifacts = {"S3ModelArtifacts": model_uri}
    messages = {
        "Completed": "Training job completed",
        "Failed": reason or "Training job failed",
        "Stopped": "Training job stopped",
        "MaxRuntimeExceeded": "Training job ran out of time (MaxRuntimeInSeconds)",
    }
    _transition(job, secondary, messages.get(secondary, secondary))
    job.training_job_status = status
    LOG.info("training job %s: %s%s", run.name, status, f" ({reason})" if reason else "")
    _write_log(run.name, backend.account_id, backend.region_name, run.log_stream, f"[{status}]")


def _create_training_job_action(original: Any) -> Any:
    def create_training_job(self: Any) -> Any:
        from moto.sagemaker.exceptions import ResourceInUseException

        request = json.loads(self.body or "{}")
        name = request.get("TrainingJobName", "")
        backend = self.sagemaker_backend
        if name in backend.training_jobs:
            raise ResourceInUseException(
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists ({backend.training_jobs[name].arn})"
            )
        result = original(self)
        _start_training(backend, request)
        return result

    return create_training_job


def _stop_training_job_action(self: Any) -> Any:
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ValidationError

    name = self._get_param("TrainingJobName")
    backend = self.sagemaker_backend
    job = backend.training_jobs.get(name)
    if job is None:
        raise ValidationError(message="Requested resource not found.")
    if job.training_job_status != "InProgress":
        raise ValidationError(
            message=f"The request was rejected because the training job is in status "
            f"{job.training_job_status}."
        )
    with _lock:
        run = _runs.get((backend.account_id, backend.region_name, name))
    job.training_job_status = "Stopping"
    _transition(job, "Stopping", "Stopping the training job")
    if run is not None:
        run.stop_event.set()
    return EmptyResult()


# --- endpoints --------------------------------------------------------------------------------


@dataclass
class _Serving:
    """The model server behind one endpoint, and the generation of its latest deployment."""

    server: Any = None
    generation: int = 0
    config_name: str = ""


_serving: dict[tuple[str, str, str], _Serving] = {}
#: Model servers whose start() is still running: stop_all() stops them too (no orphans).
_starting: set[Any] = set()


def _model_container(backend: Any, config_name: str) -> tuple[str, str, dict[str, Any]]:
    """The model name, its execution role and the container behind an endpoint config's first
    production variant."""
    config = backend.endpoint_configs[config_name]
    variants = config.production_variants or []
    if not variants:
        raise RuntimeError(f"endpoint config {config_name} has no production variants")
    model_name = variants[0]["ModelName"]
    model = backend._models.get(model_name)
    if model is None:
        raise RuntimeError(f"Could not find model {model_name!r}")
    container = model.primary_container or (model.containers[0] if model.containers else None)
    if not container:
        raise RuntimeError(f"model {model_name} has no container")
    return model_name, str(model.execution_role_arn or ""), dict(container)


def _start_server(backend: Any, endpoint_name: str, config_name: str, generation: int) -> Any:
    """Download the model data and start a model server; raises with a FailureReason."""
    from cdk_sagemaker_rl.local.model_server import LocalModelServer

    ctx = context()
    model_name, role_arn, container = _model_container(backend, config_name)
    s3 = _s3_as(role_arn)
    model_url = container.get("ModelDataUrl")
    if not model_url:
        raise RuntimeError(
            f"model {model_name} has no ModelDataUrl: local mode serves model.tar.gz artifacts only"
        )
    work = ctx.state_dir / "endpoints" / endpoint_name / str(generation)
    work.mkdir(parents=True, exist_ok=True)
    model_path = work / "model.tar.gz"
    bucket, _, key = str(model_url).removeprefix("s3://").partition("/")
    try:
        s3.download_file(bucket, key, str(model_path))
    except Exception as exc:
        raise RuntimeError(f"Failed to download model data from {model_url}: {exc}") from exc
    environment = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    server = LocalModelServer(
        model_data=Path(model_path),
        environment=environment,
        s3=s3,
        work_dir=work / "server",
    )
    with _lock:
        if ctx.shutdown.is_set():
            raise RuntimeError("the emulator is stopping")
        _starting.add(server)
    try:
        server.start(timeout=ENDPOINT_START_TIMEOUT)
    finally:
        with _lock:
            _starting.discard(server)
    return server


def _deploy(
    backend: Any, endpoint_name: str, config_name: str, generation: int, update: bool
) -> None:
    key = (backend.account_id, backend.region_name, endpoint_name)
    try:
        server = _start_server(backend, endpoint_name, config_name, generation)
    except Exception as exc:
        reason = f"{exc}"
        LOG.warning("endpoint %s: deployment of %s failed: %s", endpoint_name, config_name, reason)
        with _lock:
            serving = _serving.get(key)
            endpoint = backend.endpoints.get(endpoint_name)
            if serving is None or serving.generation != generation or endpoint is None:
                return
            endpoint.failure_reason = reason
            endpoint.endpoint_status = "InService" if update and serving.server else "Failed"
            endpoint.last_modified_time = _now()
        return
    old = None
    with _lock:
        serving = _serving.get(key)
        endpoint = backend.endpoints.get(endpoint_name)
        current = serving is not None and serving.generation == generation and endpoint is not None
        if current:
            assert serving is not None
            old, serving.server, serving.config_name = serving.server, server, config_name
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = None
            endpoint.endpoint_config_name = config_name
            endpoint.last_modified_time = _now()
    if not current:
        server.stop()  # the endpoint was deleted or redeployed meanwhile
        return
    LOG.info("endpoint %s: InService at %s (%s)", endpoint_name, server.url, config_name)
    if old is not None:
        old.stop()


def _launch(backend: Any, endpoint_name: str, config_name: str, update: bool) -> None:
    key = (backend.account_id, backend.region_name, endpoint_name)
    with _lock:
        serving = _serving.setdefault(key, _Serving())
        serving.generation += 1
        generation = serving.generation
    threading.Thread(
        target=_deploy,
        args=(backend, endpoint_name, config_name, generation, update),
        name=f"endpoint-{endpoint_name}",
        daemon=True,
    ).start()


def _create_endpoint(original: Any) -> Any:
    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.models import FakeEndpoint

        if endpoint_name in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        endpoint = original(self, endpoint_name, endpoint_config_name, tags)
        endpoint.endpoint_status = "Creating"
        _launch(self, endpoint_name, endpoint_config_name, update=False)
        return endpoint

    return create_endpoint


def _update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
    """``UpdateEndpoint``: deploy the new config next to the old one, then swap."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig

    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    if endpoint_config_name not in self.endpoint_configs:
        arn = FakeEndpointConfig.arn_formatter(
            endpoint_config_name, self.account_id, self.region_name
        )
        raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
    if endpoint.endpoint_status not in ("InService", "Failed"):
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
    update = endpoint.endpoint_status == "InService"
    endpoint.endpoint_status = "Updating"
    endpoint.last_modified_time = _now()
    _launch(self, endpoint_name, endpoint_config_name, update=update)
    return endpoint


def _update_endpoint_action(self: Any) -> Any:
    from moto.core.responses import ActionResult

    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _delete_endpoint(original: Any) -> Any:
    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        original(self, endpoint_name)
        with _lock:
            serving = _serving.pop((self.account_id, self.region_name, endpoint_name), None)
        if serving is not None and serving.server is not None:
            LOG.info("endpoint %s deleted: stopping its model server", endpoint_name)
            serving.server.stop()

    return delete_endpoint


def _wait_in_service(backend: Any, endpoint_name: str) -> None:
    """CloudFormation waits for an endpoint to be InService and fails when it is not."""
    from .cloudformation import ResourceFailedError, current_operation

    op = current_operation()
    endpoint = backend.endpoints[endpoint_name]
    context().wait_for(
        lambda: endpoint.endpoint_status not in ("Creating", "Updating"),
        CFN_ENDPOINT_TIMEOUT,
        cancelled=None if op is None else op.cancelled,
    )
    if endpoint.endpoint_status != "InService":
        raise ResourceFailedError(
            f'Resource handler returned message: "Endpoint {endpoint_name} is in '
            f'{endpoint.endpoint_status} status. Failure reason: {endpoint.failure_reason}"'
        )


def _cfn_create_endpoint(original: Any) -> Any:
    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        endpoint = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _wait_in_service(sagemaker_backends[account_id][region_name], endpoint.endpoint_name)
        return endpoint

    return classmethod(cast(Any, create_from_cloudformation_json))


def _cfn_update_endpoint(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """CloudFormation updates an endpoint in place (UpdateEndpoint), keeping its name."""
    from moto.sagemaker.models import sagemaker_backends

    from .cloudformation import ResourceFailedError

    backend = sagemaker_backends[account_id][region_name]
    config_name = cloudformation_json["Properties"]["EndpointConfigName"]
    name = original_resource.endpoint_name
    _update_endpoint(backend, name, config_name)
    _wait_in_service(backend, name)
    endpoint = backend.endpoints[name]
    if endpoint.endpoint_config_name != config_name:
        raise ResourceFailedError(
            f'Resource handler returned message: "Endpoint {name} update to {config_name} '
            f'failed: {endpoint.failure_reason}"'
        )
    return endpoint


# --- invocations ------------------------------------------------------------------------------


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], str]:
    body = {"message": message, "Message": message, **extra}
    # moto takes the HTTP status from the "status" header of a (status, headers, body) answer.
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "status": str(status)}
    return status, headers, json.dumps(body)


def _invoke_endpoint(self: Any) -> Any:
    """sagemaker-runtime InvokeEndpoint, forwarded to the endpoint's model server."""
    from moto.sagemaker.models import sagemaker_backends

    name = str(self._get_params().get("EndpointName") or self.path.split("/")[2])
    account, region = self.current_account, self.region
    endpoint = sagemaker_backends[account][region].endpoints.get(name)
    if endpoint is None:
        return _error(400, "ValidationError", f"Endpoint {name} of account {account} not found.")
    with _lock:
        serving = _serving.get((account, region, name))
        server = None if serving is None else serving.server
    if server is None:
        return _error(
            400,
            "ValidationError",
            f"Endpoint {name} of account {account} is not in service "
            f"(status {endpoint.endpoint_status}).",
        )
    headers = {
        "Content-Type": self.headers.get("Content-Type") or "application/octet-stream",
        "Accept": self.headers.get("Accept") or "*/*",
    }
    custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
    if custom:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
    body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.body or "").encode()
    request = urllib.request.Request(
        f"{server.url}/invocations", data=body, headers=headers, method="POST"
    )
    log_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"
    try:
        with urllib.request.urlopen(request, timeout=INVOCATION_TIMEOUT) as response:
            payload = response.read()
            answer = {"Content-Type": response.headers.get("Content-Type") or "application/json"}
            answer["x-Amzn-Invoked-Production-Variant"] = _variant_name(endpoint)
            attributes = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
            if attributes:
                answer["X-Amzn-SageMaker-Custom-Attributes"] = attributes
            return 200, answer, payload
    except urllib.error.HTTPError as exc:
        code = exc.code
        text = exc.read().decode("utf-8", "replace")
    except (TimeoutError, OSError) as exc:
        if "timed out" in str(exc):
            message = (
                "Your invocation timed out while waiting for a response from container primary."
            )
            return _error(
                424,
                "ModelError",
                message,
                OriginalStatusCode=0,
                OriginalMessage="",
                LogStreamArn=log_arn,
            )
        code, text = 500, f"the model server is unreachable: {exc}"
    kind = "server" if code >= 500 else "client"
    message = (
        f'Received {kind} error ({code}) from primary with message "{text}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
        f"group=/aws/sagemaker/Endpoints/{name} in account {account} for more information."
    )
    return _error(
        424,
        "ModelError",
        message,
        ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
        OriginalStatusCode=code,
        OriginalMessage=text,
        LogStreamArn=log_arn,
    )


def _variant_name(endpoint: Any) -> str:
    variants = endpoint.production_variants or []
    return str(variants[0].get("VariantName", "AllTraffic")) if variants else "AllTraffic"


# --- lifecycle --------------------------------------------------------------------------------


def snapshot() -> dict[str, Any]:
    """Training jobs and endpoints the emulator is running (for ``/_local/status``)."""
    with _lock:
        jobs = [
            {"TrainingJobName": run.name, "Running": bool(run.thread and run.thread.is_alive())}
            for run in _runs.values()
        ]
        endpoints = [
            {
                "EndpointName": key[2],
                "Url": serving.server.url if serving.server else None,
                "EndpointConfigName": serving.config_name,
            }
            for key, serving in _serving.items()
        ]
    return {"training_jobs": jobs, "endpoints": endpoints}


def stop_all(timeout: float = 60.0) -> None:
    """Stop every training job and model server (emulator stop): no process is left behind."""
    with _lock:
        runs = list(_runs.values())
        _runs.clear()
        servers = [serving.server for serving in _serving.values() if serving.server is not None]
        servers += list(_starting)
        for serving in _serving.values():
            serving.generation += 1  # deployments in flight stop their server themselves
            serving.server = None
        _serving.clear()
    for run in runs:
        run.stop_event.set()
    deadline = time.monotonic() + timeout
    for run in runs:
        if run.thread is not None:
            run.thread.join(max(0.0, deadline - time.monotonic()))
            if run.thread.is_alive():
                LOG.warning("training job %s did not stop in time", run.name)
    for server in servers:
        try:
            server.stop()
        except Exception:
            LOG.exception("could not stop a model server")


_installed = False


def install() -> None:
    """Patch moto's SageMaker and SageMaker Runtime (once per process)."""
    global _installed
    if _installed:
        return
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, Model, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    SageMakerResponse.create_training_job = _create_training_job_action(  # type: ignore[method-assign]
        SageMakerResponse.create_training_job
    )
    SageMakerResponse.stop_training_job = _stop_training_job_action  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = _update_endpoint_action  # type: ignore[attr-defined]
    SageMakerModelBackend.create_endpoint = _create_endpoint(  # type: ignore[method-assign]
        SageMakerModelBackend.create_endpoint
    )
    SageMakerModelBackend.update_endpoint = _update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.delete_endpoint = _delete_endpoint(  # type: ignore[method-assign]
        SageMakerModelBackend.delete_endpoint
    )
    FakeEndpoint.create_from_cloudformation_json = _cfn_create_endpoint(  # type: ignore[method-assign]
        FakeEndpoint.create_from_cloudformation_json
    )
    FakeEndpoint.update_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _cfn_update_endpoint
    )
    # moto ignores the name properties, so an explicit EndpointName/ModelName was not honoured.
    FakeEndpoint.cloudformation_name_type = staticmethod(lambda: "EndpointName")  # type: ignore[method-assign]
    FakeEndpointConfig.cloudformation_name_type = staticmethod(  # type: ignore[method-assign]
        lambda: "EndpointConfigName"
    )
    Model.cloudformation_name_type = staticmethod(lambda: "ModelName")  # type: ignore[method-assign]
    SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint  # type: ignore[method-assign]
    _installed = True
