"""Deploy-time training: the ``Custom::RLTrainingRun`` handler and the wait-condition signal.

``on_event`` starts one execution of the training state machine per Create/Update (execution
name == training job name) and answers CloudFormation at once; the stack then waits on a
WaitCondition that ``signal`` (the state machine's last step) completes with the outcome.
Splitting it this way lets a training run for up to 12 hours, far beyond the 15 minutes a
Lambda invocation (and so a synchronous custom resource) may take.

See docs/architecture.md for the property, data and event contracts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from _shared.json_logger import JsonLogger
from custom_resources._cfn import (
    CustomResourceRequest,
    Outcome,
    ResourceError,
    aws_client,
    is_failed_create_placeholder,
    is_not_found,
    put_json,
    run_custom_resource,
    truncate_utf8,
)

#: SageMaker's training job name rule (also a valid Step Functions execution name).
JOB_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
#: Leaves room for "-" plus the 23-character timestamp within SageMaker's 63 characters.
MAX_JOB_NAME_BASE: Final = 39

TRAINING_LOG_GROUP: Final = "/aws/sagemaker/TrainingJobs"
#: A wait-condition Reason must stay well under 4 KB; this leaves room for the JSON around it.
MAX_SIGNAL_REASON_BYTES: Final = 3000
#: Of that, at most this much for status, FailureReason and the Step Functions error.
MAX_SUMMARY_BYTES: Final = 1200
MAX_LOG_LINE_BYTES: Final = 300
LOG_TAIL_LINES: Final = 20
MAX_LOG_STREAMS: Final = 5
#: How many recent executions a Create/Update inspects to find one it can reuse.
MAX_EXECUTIONS_SCANNED: Final = 50

logger = JsonLogger("cdk-sagemaker-rl.training-run")


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: Replaced in tests to get predictable job names.
clock: Callable[[], datetime] = _utc_now


# --------------------------------------------------------------------------------------------
# Names and ARNs
# --------------------------------------------------------------------------------------------


def job_name(base: str, now: datetime) -> str:
    """``<base>-<YYYY-MM-DD-HH-MM-SS-mmm>`` in UTC, the SageMaker SDK's naming scheme."""
    if len(base) > MAX_JOB_NAME_BASE:
        raise ResourceError(
            f"JobNameBase {base!r} is {len(base)} characters; at most {MAX_JOB_NAME_BASE} "
            "leave room for the timestamp in SageMaker's 63-character job names"
        )
    now = now.astimezone(UTC)
    name = f"{base}-{now:%Y-%m-%d-%H-%M-%S}-{now.microsecond // 1000:03d}"
    if not JOB_NAME_PATTERN.fullmatch(name):
        raise ResourceError(
            f"JobNameBase {base!r} gives the job name {name!r}, which SageMaker rejects: "
            "use letters, digits and single hyphens, starting with a letter or digit"
        )
    return name


def execution_arn(state_machine_arn: str, execution_name: str) -> str:
    """The ARN of the execution named ``execution_name`` of a state machine.

    ``arn:<p>:states:<region>:<account>:stateMachine:<name>[:<qualifier>]`` becomes
    ``arn:<p>:states:<region>:<account>:execution:<name>:<execution>``.
    """
    parts = state_machine_arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "stateMachine":
        raise ResourceError(f"StateMachineArn {state_machine_arn!r} is not a state machine ARN")
    return ":".join([*parts[:5], "execution", parts[6], execution_name])


def model_data_url(output_path: str, name: str) -> str:
    """Where SageMaker writes the model of job ``name`` under ``OutputPath``."""
    return f"{output_path.rstrip('/')}/{name}/output/model.tar.gz"


# --------------------------------------------------------------------------------------------
# Custom::RLTrainingRun
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingRunProperties:
    """The validated ResourceProperties of Custom::RLTrainingRun."""

    state_machine_arn: str
    job_name_base: str
    output_path: str
    wait_handle_url: str | None

    @classmethod
    def parse(cls, request: CustomResourceRequest) -> TrainingRunProperties:
        output_path = request.required("OutputPath")
        if not output_path.startswith("s3://"):
            raise ResourceError(f"OutputPath {output_path!r} must be an s3:// URI")
        props = cls(
            state_machine_arn=request.required("StateMachineArn"),
            job_name_base=request.required("JobNameBase"),
            output_path=output_path.rstrip("/"),
            wait_handle_url=request.optional("WaitHandleUrl"),
        )
        execution_arn(props.state_machine_arn, "check")  # raises on a malformed ARN
        return props


def _find_reusable_execution(props: TrainingRunProperties) -> tuple[str, str] | None:
    """An execution started earlier for the same wait handle: (execution name, ARN).

    The wait-condition handle is replaced whenever the training fingerprint changes, so an
    earlier execution with the same handle URL trained exactly what is asked for now. This is
    what happens on an UPDATE_ROLLBACK (CloudFormation sends Update with the old properties)
    or when the same request is delivered twice: reusing the run avoids hours of retraining
    and keeps the physical id, so CloudFormation sees no replacement. Without a handle URL
    there is nothing that identifies a training, so nothing is reused.
    """
    if props.wait_handle_url is None:
        return None
    sfn = aws_client("stepfunctions")
    scanned = 0
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=props.state_machine_arn, PaginationConfig={"PageSize": 50}
    ):
        for item in page.get("executions", []):
            if scanned >= MAX_EXECUTIONS_SCANNED:
                return None
            scanned += 1
            if item.get("status") not in ("RUNNING", "SUCCEEDED"):
                continue
            arn = str(item["executionArn"])
            described = sfn.describe_execution(executionArn=arn)
            try:
                previous = json.loads(described.get("input") or "{}")
            except json.JSONDecodeError:
                continue
            if not isinstance(previous, dict):
                continue
            if previous.get("WaitHandleUrl") == props.wait_handle_url:
                return str(item["name"]), arn
    return None


def _start_training(request: CustomResourceRequest) -> Outcome:
    """Create/Update: start (or reuse) the training execution and report the job's outputs."""
    props = TrainingRunProperties.parse(request)
    reused = _find_reusable_execution(props)
    if reused is not None:
        name, arn = reused
        logger.info(
            "reusing the execution started for this wait handle",
            training_job_name=name,
            execution_arn=arn,
        )
    else:
        name = job_name(props.job_name_base, clock())
        execution_input = (
            {} if props.wait_handle_url is None else {"WaitHandleUrl": props.wait_handle_url}
        )
        started = aws_client("stepfunctions").start_execution(
            stateMachineArn=props.state_machine_arn, name=name, input=json.dumps(execution_input)
        )
        arn = str(started["executionArn"])
        logger.info("training started", training_job_name=name, execution_arn=arn)
    return Outcome(
        physical_resource_id=name,
        data={
            "TrainingJobName": name,
            "ModelDataUrl": model_data_url(props.output_path, name),
            "ExecutionArn": arn,
        },
    )


def _stop_execution(request: CustomResourceRequest, name: str) -> str:
    """Stops the training execution if it is still running; returns what happened."""
    state_machine_arn = request.properties.get("StateMachineArn")
    if not isinstance(state_machine_arn, str) or not state_machine_arn:
        return "no StateMachineArn property"
    arn = execution_arn(state_machine_arn, name)
    sfn = aws_client("stepfunctions")
    try:
        status = str(sfn.describe_execution(executionArn=arn)["status"])
        if status != "RUNNING":
            return f"execution already {status}"
        sfn.stop_execution(
            executionArn=arn,
            error="StoppedByCloudFormation",
            cause=f"{request.logical_resource_id} deleted in stack {request.stack_id}",
        )
    except ClientError as err:
        if is_not_found(err):
            return "execution not found"
        raise
    return "execution stopped"


def _stop_training_job(name: str) -> str:
    """Stops the training job if it is in progress; returns what happened."""
    sagemaker = aws_client("sagemaker")
    try:
        status = str(sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"])
        if status != "InProgress":
            return f"training job already {status}"
        sagemaker.stop_training_job(TrainingJobName=name)
    except ClientError as err:
        if is_not_found(err):
            return "training job not found"
        raise
    return "training job stopped"


def _delete_training(request: CustomResourceRequest) -> Outcome:
    """Delete: stop what is still running. Never fails (see run_custom_resource).

    The execution is stopped first so that it cannot signal or start anything afterwards; the
    job is then stopped explicitly, because stopping a ``.sync`` task only asks SageMaker to.
    Each step runs even if the other one failed, and the log says what was done.
    """
    name = request.physical_resource_id
    if name is None or is_failed_create_placeholder(name) or not JOB_NAME_PATTERN.fullmatch(name):
        logger.info("nothing to stop: no training was started", physical_resource_id=name)
        return Outcome(request.fallback_physical_id())
    results: dict[str, str] = {}
    steps: tuple[tuple[str, Callable[[], str]], ...] = (
        ("execution", lambda: _stop_execution(request, name)),
        ("training_job", lambda: _stop_training_job(name)),
    )
    for step, action in steps:
        try:
            results[step] = action()
        except Exception as err:
            logger.exception(f"could not stop the {step.replace('_', ' ')}", training_job_name=name)
            results[step] = f"failed: {type(err).__name__}: {err}"
    logger.info("training resources released", training_job_name=name, **results)
    return Outcome(name)


def on_event(event: Mapping[str, Any], context: object | None) -> dict[str, Any] | None:
    """Lambda handler of Custom::RLTrainingRun; returns the response body sent to CloudFormation."""
    return run_custom_resource(
        event,
        context,
        logger=logger,
        create=_start_training,
        update=_start_training,
        delete=_delete_training,
    )


# --------------------------------------------------------------------------------------------
# Wait-condition signal (invoked by the training state machine)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalEvent:
    """The state machine's input to ``signal`` (docs/architecture.md, "Signal event")."""

    status: str
    wait_handle_url: str
    training_job_name: str
    model_data_url: str | None
    error: str | None
    cause: str | None

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> SignalEvent:
        status = event.get("Status")
        if status not in ("SUCCESS", "FAILURE"):
            raise ValueError(f"Status must be SUCCESS or FAILURE, got {status!r}")
        url = event.get("WaitHandleUrl")
        job = event.get("TrainingJobName")
        if not isinstance(url, str) or not url:
            raise ValueError("WaitHandleUrl is required")
        if not isinstance(job, str) or not job:
            raise ValueError("TrainingJobName is required")
        model = event.get("ModelDataUrl")
        error = event.get("Error")
        error_map: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
        return cls(
            status=status,
            wait_handle_url=url,
            training_job_name=job,
            model_data_url=model if isinstance(model, str) and model else None,
            error=_text(error_map.get("Error")),
            cause=_text(error_map.get("Cause")),
        )


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _describe_failed_job(name: str) -> tuple[str | None, str | None, str | None]:
    """(status, FailureReason, problem) of a training job; problem says why they are missing."""
    try:
        described = aws_client("sagemaker").describe_training_job(TrainingJobName=name)
    except Exception as err:  # the signal must go out whatever SageMaker says
        if isinstance(err, ClientError) and is_not_found(err):
            return None, None, "SageMaker has no such training job (it may never have started)"
        logger.exception("DescribeTrainingJob failed", training_job_name=name)
        return None, None, f"DescribeTrainingJob failed: {type(err).__name__}: {err}"
    status = described.get("TrainingJobStatus")
    reason = described.get("FailureReason")
    return (str(status) if status else None, str(reason) if reason else None, None)


def _tail_training_logs(name: str) -> tuple[list[str], str | None]:
    """The last lines logged by the job's hosts, oldest first, and a problem if any.

    A multi-host job has one stream per host (``<job>/algo-N-...``): events of a few streams are
    merged by time and prefixed with the host when there is more than one.
    """
    logs = aws_client("logs")
    try:
        streams = logs.describe_log_streams(
            logGroupName=TRAINING_LOG_GROUP,
            logStreamNamePrefix=f"{name}/",
            limit=MAX_LOG_STREAMS,
        ).get("logStreams", [])
        events: list[tuple[int, str, str]] = []
        for stream in streams:
            stream_name = str(stream["logStreamName"])
            page = logs.get_log_events(
                logGroupName=TRAINING_LOG_GROUP,
                logStreamName=stream_name,
                limit=LOG_TAIL_LINES,
                startFromHead=False,
            )
            host = stream_name[len(name) + 1 :]
            events.extend(
                (int(e.get("timestamp", 0)), host, str(e.get("message", "")).rstrip())
                for e in page.get("events", [])
            )
    except Exception as err:  # the signal must go out even without the logs
        if isinstance(err, ClientError):
            if is_not_found(err):
                return [], None
            problem = str(err.response.get("Error", {}).get("Code"))
        else:
            problem = type(err).__name__
        logger.exception("could not read the training logs", training_job_name=name)
        return [], f"reading the logs failed: {problem}"
    events.sort(key=lambda event: event[0])
    several_hosts = len(streams) > 1
    lines = [
        f"[{host}] {message}" if several_hosts else message
        for _, host, message in events[-LOG_TAIL_LINES:]
    ]
    return lines, None


def failure_reason(signal_event: SignalEvent) -> str:
    """A wait-condition Reason that explains a failed training without opening the console.

    Status and SageMaker's FailureReason come first, then (when SageMaker had nothing to say)
    the state machine's Error/Cause, the log location, and as many of the most recent log lines
    as fit in MAX_SIGNAL_REASON_BYTES.
    """
    name = signal_event.training_job_name
    status, sagemaker_reason, problem = _describe_failed_job(name)
    summary = f"Training job {name} " + (f"ended with status {status}" if status else "failed")
    if sagemaker_reason:
        summary += f": {sagemaker_reason}"
    else:
        if problem:
            summary += f" ({problem})"
        if signal_event.error or signal_event.cause:
            summary += (
                f". Step Functions error {signal_event.error or 'unknown'}: "
                f"{signal_event.cause or 'no cause given'}"
            )
    summary = truncate_utf8(summary, MAX_SUMMARY_BYTES)
    lines, log_problem = _tail_training_logs(name)
    where = f"CloudWatch Logs group {TRAINING_LOG_GROUP}, log streams {name}/*"
    if log_problem:
        return truncate_utf8(f"{summary}. Logs: {where} ({log_problem}).", MAX_SIGNAL_REASON_BYTES)
    if not lines:
        return truncate_utf8(f"{summary}. No training logs in {where}.", MAX_SIGNAL_REASON_BYTES)
    header = f"{summary}. Last log lines ({where}):"
    kept: list[str] = []
    size = len(header.encode("utf-8"))
    for line in reversed(lines):
        line = truncate_utf8(line, MAX_LOG_LINE_BYTES)
        cost = len(line.encode("utf-8")) + 1
        if size + cost > MAX_SIGNAL_REASON_BYTES:
            break
        kept.append(line)
        size += cost
    return "\n".join([header, *reversed(kept)])


def signal(event: Mapping[str, Any], context: object | None) -> dict[str, str]:
    """Signals the training's wait condition; invoked by the training state machine.

    Raises (so the state machine's task fails visibly) only when the event is malformed or the
    signal cannot be delivered: nothing else could tell CloudFormation about the training.
    """
    logger.inject_lambda_context(context)
    parsed = SignalEvent.parse(event)
    logger.append_keys(training_job_name=parsed.training_job_name)
    if parsed.status == "SUCCESS":
        reason = f"Training job {parsed.training_job_name} completed"
    else:
        try:
            reason = failure_reason(parsed)
        except Exception as err:  # a poorer reason beats a wait condition left hanging
            logger.exception("could not compose the failure reason")
            reason = truncate_utf8(
                f"Training job {parsed.training_job_name} failed ({type(err).__name__} while "
                f"collecting details); see CloudWatch Logs group {TRAINING_LOG_GROUP}, log "
                f"streams {parsed.training_job_name}/*",
                MAX_SIGNAL_REASON_BYTES,
            )
    data: dict[str, str] = {"TrainingJobName": parsed.training_job_name}
    if parsed.model_data_url:
        data["ModelDataUrl"] = parsed.model_data_url
    body = {
        "Status": parsed.status,
        "Reason": reason,
        "UniqueId": parsed.training_job_name,
        "Data": json.dumps(data, separators=(",", ":")),
    }
    http_status = put_json(parsed.wait_handle_url, body, logger=logger)
    logger.info(
        "wait condition signalled", status=parsed.status, reason=reason, http_status=http_status
    )
    return {"Status": parsed.status, "Reason": reason, "TrainingJobName": parsed.training_job_name}
