"""Training jobs that really train: CreateTrainingJob runs the job, StopTrainingJob stops it.

moto completes every training job at once without running anything and lacks StopTrainingJob.
Here CreateTrainingJob's request goes through ``training_runner.run_training_job`` in a background
thread (work tree under ``<state>/training``): DescribeTrainingJob shows ``InProgress`` and then
``Completed``/``Failed``/``Stopped`` with FailureReason, ModelArtifacts, secondary status
transitions and timings; the log lines go to CloudWatch Logs (``/aws/sagemaker/TrainingJobs``,
stream ``<job>/algo-1-<epoch>``) and to ``<state>/training.log`` (``<job> | <line>``) for a
progress display to tail; StopTrainingJob sets the runner's stop event.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..runtime import LOG, context
from .role_s3 import s3_as

__all__ = ["TRAINING_LOG_NAME", "TrainingRun", "detach_all", "install", "snapshot"]

#: The combined training log in the state directory: one ``<job> | <line>`` per log line.
TRAINING_LOG_NAME = "training.log"

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclass
class TrainingRun:
    """One training job running in its thread, and how to stop it (StopTrainingJob)."""

    name: str
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    log_stream: str = ""


_runs: dict[tuple[str, str, str], TrainingRun] = {}
_log_lock = threading.Lock()
#: Guards ``_runs``: requests, job threads and the emulator's stop use it at once.
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
    run = TrainingRun(name, log_stream=f"{name}/algo-1-{int(time.time())}")
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


def _train(backend: Any, job: Any, request: dict[str, Any], run: TrainingRun) -> None:
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
            s3=s3_as(str(request.get("RoleArn") or "")),
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


def snapshot() -> list[dict[str, Any]]:
    """The training jobs this emulator started, and whether each still runs."""
    with _lock:
        return [
            {"TrainingJobName": run.name, "Running": bool(run.thread and run.thread.is_alive())}
            for run in _runs.values()
        ]


def detach_all() -> list[TrainingRun]:
    """Forget every run and return them, for the emulator's stop to stop and wait for."""
    with _lock:
        runs = list(_runs.values())
        _runs.clear()
    return runs


def install() -> None:
    """Patch moto's CreateTrainingJob and add StopTrainingJob (called once, by the package)."""
    from moto.sagemaker.responses import SageMakerResponse

    SageMakerResponse.create_training_job = _create_training_job_action(  # type: ignore[method-assign]
        SageMakerResponse.create_training_job
    )
    SageMakerResponse.stop_training_job = _stop_training_job_action  # type: ignore[attr-defined]
