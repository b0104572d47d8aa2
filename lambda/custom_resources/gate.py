"""The reward gate and the model registry: judge a trained policy, record it, say if it may serve.

One rule, two callers. After ``fit(wait=True)`` CloudFormation calls :func:`on_event`
(``Custom::RLPolicyGate``) once the training has completed and before the model is created; a
FAILED answer rolls the update back, so the endpoint keeps its policy. After ``fit(wait=False)``
the TrainAndServe workflow calls :func:`evaluate` between training and ``CreateModel`` and fails
the execution on a failed verdict; with manual approval it then polls :func:`check_approval`.

Evaluation:

1. the metric of the new job: SageMaker's final value of a metric definition
   (``FinalMetricDataList``), or the top-level number under the metric's name in an evaluation
   file the training script wrote to ``/opt/ml/output/data/`` (read from ``output.tar.gz``);
2. the champion: the job named by the endpoint's ``cdk-sagemaker-rl:training-job`` tag (the
   policy it serves now), read the same way, when the gate has ``MaxRegression``;
3. a version in the model package group with the verdict and the metrics: ``Approved`` (or
   ``PendingManualApproval``) when the gate passed, ``Rejected`` when it did not.

Properties / payload: ``TrainingJobName``, ``ModelPackageGroupName``, ``ApprovalStatus`` (what a
passing policy gets), ``Container`` (``Image``, ``Environment``: how the version is served),
optional ``EndpointArn`` and ``ChampionTag`` (the endpoint tag naming the job it serves),
``ApprovalTimeoutSeconds``, ``CreateGroup`` (``Description``: create
the group on first use) and ``Gate`` (``Metric``, ``Comparison``,
``Threshold``, ``MaxRegression``, ``Source`` {``Kind``: ``FinalMetric`` | ``EvaluationFile``,
``File``}).
Result (Data): ``Verdict`` (``passed``/``failed``), ``Message``, ``Value``, ``ModelPackageArn``,
``ApprovalStatus``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from _shared.json_logger import JsonLogger
from custom_resources._cfn import (
    CustomResourceRequest,
    Outcome,
    ResourceError,
    aws_client,
    is_not_found,
    run_custom_resource,
)

logger = JsonLogger("cdk-sagemaker-rl.gate")

#: The evaluation file is read from this archive, as SageMaker uploads /opt/ml/output/data/.
OUTPUT_ARCHIVE: Final = "output/output.tar.gz"
#: An evaluation file larger than this is not a metrics file; refuse rather than read it.
MAX_EVALUATION_BYTES: Final = 1024 * 1024
_OPERATORS: Final = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


class GateError(ResourceError):
    """The gate could not be evaluated; the message is for the person reading the deploy."""


@dataclass(frozen=True)
class Gate:
    metric: str
    comparison: str
    threshold: float
    max_regression: float | None
    source: str
    file: str | None

    @classmethod
    def parse(cls, raw: object) -> Gate:
        if not isinstance(raw, Mapping):
            raise GateError("Gate must be an object with Metric, Comparison and Threshold")
        comparison = str(raw.get("Comparison", ""))
        if comparison not in _OPERATORS:
            raise GateError(f"Gate Comparison {comparison!r} is not one of >=, >, <=, <")
        source = raw.get("Source") if isinstance(raw.get("Source"), Mapping) else {}
        assert isinstance(source, Mapping)
        regression = raw.get("MaxRegression")
        return cls(
            metric=str(raw.get("Metric", "")),
            comparison=comparison,
            threshold=float(raw.get("Threshold", "nan")),
            max_regression=None if regression in (None, "") else float(str(regression)),
            source=str(source.get("Kind", "FinalMetric")),
            file=str(source["File"]) if source.get("File") else None,
        )

    @property
    def higher_is_better(self) -> bool:
        return self.comparison in (">=", ">")

    def bar(self) -> str:
        return f"{self.comparison} {self.threshold:.10g}"


def _describe_job(name: str) -> Mapping[str, Any]:
    try:
        job: Mapping[str, Any] = aws_client("sagemaker").describe_training_job(TrainingJobName=name)
    except ClientError as err:
        if is_not_found(err):
            raise GateError(f"Training job {name} was not found") from None
        raise
    return job


def _final_metric(job: Mapping[str, Any], metric: str) -> float | None:
    for item in job.get("FinalMetricDataList") or []:
        if item.get("MetricName") == metric and item.get("Value") is not None:
            return float(item["Value"])
    return None


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _evaluation_file(job: Mapping[str, Any], file: str) -> Mapping[str, Any] | None:
    """The training script's evaluation JSON from the job's output.tar.gz (None: not there)."""
    output = str((job.get("OutputDataConfig") or {}).get("S3OutputPath", "")).rstrip("/")
    bucket, prefix = _split_s3(output)
    key = "/".join(p for p in (prefix, str(job["TrainingJobName"]), OUTPUT_ARCHIVE) if p)
    try:
        body = aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code")
        if is_not_found(err) or code == "NoSuchKey":
            return None
        if code in ("AccessDenied", "403"):
            # Without s3:ListBucket, S3 answers a missing object with AccessDenied too.
            raise GateError(
                f"s3://{bucket}/{key} could not be read (AccessDenied): the job wrote no output "
                "data, or the gate function may not read it"
            ) from None
        raise
    # Streamed: the archive is read once, front to back, and only the one member is kept.
    with tarfile.open(fileobj=body, mode="r|gz") as archive:
        for member in archive:
            # removeprefix, not lstrip("./"): that strips characters, so "..evaluation.json"
            # was taken for evaluation.json and ".metrics.json" (a valid File) never matched.
            if member.isfile() and member.name.removeprefix("./") == file:
                if member.size > MAX_EVALUATION_BYTES:
                    raise GateError(
                        f"{file} in s3://{bucket}/{key} is {member.size} bytes; an evaluation "
                        f"file holds metrics and must be at most {MAX_EVALUATION_BYTES} bytes"
                    )
                handle = archive.extractfile(member)
                assert handle is not None  # a regular file
                data = handle.read()
                try:
                    parsed = json.load(io.BytesIO(data))
                except ValueError as err:
                    name = job["TrainingJobName"]
                    raise GateError(f"{file} of job {name} is not JSON: {err}") from None
                if not isinstance(parsed, Mapping):
                    raise GateError(f"{file} of job {job['TrainingJobName']} is not a JSON object")
                return parsed
    return None


def metric_value(job: Mapping[str, Any], gate: Gate) -> float:
    """The gate's metric for ``job``; GateError naming what is missing and where it looked."""
    name = str(job["TrainingJobName"])
    if gate.source == "EvaluationFile" and gate.file:
        document = _evaluation_file(job, gate.file)
        if document is None:
            raise GateError(
                f"Reward gate cannot judge training job {name}: its output has no {gate.file} "
                f"(the training script must write /opt/ml/output/data/{gate.file})"
            )
        value = document.get(gate.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GateError(
                f"Reward gate cannot judge training job {name}: {gate.file} has no number "
                f"under {gate.metric!r} (found keys: {', '.join(sorted(document))[:300]})"
            )
        return float(value)
    value = _final_metric(job, gate.metric)
    if value is None:
        raise GateError(
            f"Reward gate cannot judge training job {name}: SageMaker recorded no final value "
            f"of the metric {gate.metric} (its regex never matched the job's log)"
        )
    return value


#: Why there is no champion to compare with (then the threshold alone applies).
NO_CHAMPION = "no policy serves yet"


def _champion(
    endpoint_arn: str | None, tag_key: str | None, gate: Gate, job_name: str
) -> tuple[tuple[str, float] | None, str]:
    """The serving policy's job and score, or None and why there is none.

    A serving policy whose score cannot be read (its output expired, say, or it predates an
    evaluation-file gate) must not block every later deploy: the threshold alone applies then,
    and the verdict says why.
    """
    if gate.max_regression is None or not endpoint_arn or not tag_key:
        return None, NO_CHAMPION
    try:
        tags = aws_client("sagemaker").list_tags(ResourceArn=endpoint_arn).get("Tags", [])
    except ClientError as err:
        if is_not_found(err) or err.response.get("Error", {}).get("Code") == "ValidationException":
            return None, NO_CHAMPION
        raise
    serving = next((t["Value"] for t in tags if t.get("Key") == tag_key), None)
    if not serving:
        return None, NO_CHAMPION
    if serving == job_name:
        return None, "the endpoint already serves this policy"
    try:
        return (serving, metric_value(_describe_job(serving), gate)), ""
    except GateError as err:
        logger.warning("champion not scored", serving_job=serving, error=str(err))
        return None, f"the serving policy's score could not be read: {err}"


def judge(
    gate: Gate, value: float, champion: tuple[str, float] | None, why_none: str = NO_CHAMPION
) -> tuple[bool, str]:
    """The verdict and the sentence that explains it (metric, value, bar)."""
    if math.isnan(value):
        return False, f"{gate.metric} = nan, required {gate.bar()}"
    passed = bool(_OPERATORS[gate.comparison](value, gate.threshold))
    # 10 significant digits: with :g (6), 499.9996 against ">= 500" read "= 500, required >= 500".
    text = f"{gate.metric} = {value:.10g}, required {gate.bar()}"
    if champion is not None and gate.max_regression is not None:
        serving_job, serving_value = champion
        floor = (
            serving_value - gate.max_regression
            if gate.higher_is_better
            else serving_value + gate.max_regression
        )
        within = value >= floor if gate.higher_is_better else value <= floor
        text += (
            f" and {'>=' if gate.higher_is_better else '<='} {floor:.10g} (the serving policy, "
            f"job {serving_job}, scores {serving_value:.10g}; max regression "
            f"{gate.max_regression:.10g})"
        )
        passed = passed and within
    elif gate.max_regression is not None:
        text += f" ({why_none}: the threshold alone applies)"
    return passed, text


def _metadata(job: Mapping[str, Any], verdict: str, value: float | None) -> dict[str, str]:
    """CustomerMetadataProperties: the job's final metrics and the verdict, as strings."""
    properties = {"TrainingJobName": str(job["TrainingJobName"]), "GateVerdict": verdict}
    if value is not None:
        properties["GateValue"] = repr(value)
    for item in (job.get("FinalMetricDataList") or [])[:40]:
        key = "metric:" + "".join(
            c if c.isalnum() or c in "_.:/=+-@" else "_" for c in str(item.get("MetricName", ""))
        )
        properties[key[:128]] = repr(float(item.get("Value", 0.0)))
    return properties


def ensure_group(group: str, create: object) -> None:
    """The estimator's own group is created on its first registration (``CreateGroup``)."""
    if not isinstance(create, Mapping):
        return
    sagemaker = aws_client("sagemaker")
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        return
    except ClientError as err:
        if not (is_not_found(err) or "does not exist" in str(err)):
            raise
    try:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=str(create.get("Description", ""))[:1024],
        )
        logger.info("model package group created", model_package_group=group)
    except ClientError as err:
        # Another evaluation created it in the meantime: that is the group we want.
        if "already exists" not in str(err) and err.response.get("Error", {}).get("Code") not in (
            "ConflictException",
            "ResourceInUse",
        ):
            raise


def register(
    job: Mapping[str, Any],
    group: str,
    container: Mapping[str, Any],
    status: str,
    description: str,
    metadata: Mapping[str, str],
) -> str:
    """A version in ``group``; idempotent per job and status (ClientToken)."""
    image = str(container.get("Image", ""))
    environment = container.get("Environment") or {}
    inference: dict[str, Any] = {
        "Image": image,
        "ModelDataUrl": str(job["ModelArtifacts"]["S3ModelArtifacts"]),
    }
    if environment:
        inference["Environment"] = dict(environment)
    token = hashlib.sha256(f"{group}/{job['TrainingJobName']}/{status}".encode()).hexdigest()
    try:
        response = aws_client("sagemaker").create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=description[:1024],
            InferenceSpecification={
                "Containers": [inference],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=status,
            MetadataProperties={"GeneratedBy": str(job["TrainingJobArn"])},
            CustomerMetadataProperties=dict(metadata),
            ClientToken=token[:36],
        )
    except ClientError as err:
        if "does not exist" in str(err) or is_not_found(err):
            raise GateError(
                f"Model package group {group} does not exist, so training job "
                f"{job['TrainingJobName']} cannot be registered: create it (a ModelPackageGroup "
                "construct) or leave ModelRegistry(group=...) unset for the estimator's own"
            ) from None
        raise
    return str(response["ModelPackageArn"])


def evaluate_job(properties: Mapping[str, Any]) -> dict[str, str]:
    """Judge, register, and report; raises nothing for a failed verdict (that is a result)."""
    job_name = str(properties.get("TrainingJobName") or "")
    group = str(properties.get("ModelPackageGroupName") or "")
    if not job_name or not group:
        raise GateError("TrainingJobName and ModelPackageGroupName are required")
    passing_status = str(properties.get("ApprovalStatus") or "Approved")
    container = properties.get("Container") or {}
    job = _describe_job(job_name)
    if job.get("TrainingJobStatus") != "Completed":
        raise GateError(f"Training job {job_name} is {job.get('TrainingJobStatus')}, not Completed")
    value: float | None = None
    if properties.get("Gate"):
        gate = Gate.parse(properties["Gate"])
        value = metric_value(job, gate)
        champion, why_none = _champion(
            _str(properties.get("EndpointArn")), _str(properties.get("ChampionTag")), gate, job_name
        )
        passed, text = judge(gate, value, champion, why_none)
    else:
        passed, text = True, "no gate: every trained policy is registered"
    verdict = "passed" if passed else "failed"
    status = passing_status if passed else "Rejected"
    if passed:
        message = f"Reward gate passed for training job {job_name}: {text}."
        if status == "PendingManualApproval":
            message += f" Version waits for manual approval in model package group {group}."
    else:
        message = (
            f"Reward gate failed for training job {job_name}: {text}. The policy is not served "
            f"(registered as Rejected in model package group {group}); the endpoint keeps "
            "serving the previous policy."
        )
    ensure_group(group, properties.get("CreateGroup"))
    arn = register(job, group, container, status, message, _metadata(job, verdict, value))
    logger.info(
        "gate verdict", verdict=verdict, value=value, model_package_arn=arn, explanation=message
    )
    result = {
        "Verdict": verdict,
        "Message": message,
        "Value": "" if value is None else repr(value),
        "ModelPackageArn": arn,
        "ApprovalStatus": status,
        "TrainingJobName": job_name,
        "ApprovalDeadline": "",
    }
    timeout = properties.get("ApprovalTimeoutSeconds")
    if status == "PendingManualApproval" and timeout:
        result["ApprovalDeadline"] = repr(time.time() + float(str(timeout)))
    return result


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------- CloudFormation (fit(wait=True))
def _verdict_of(arn: str, package: Mapping[str, Any]) -> dict[str, str]:
    """The Data a registered version was first answered with (evaluate_job's keys)."""
    metadata = package.get("CustomerMetadataProperties") or {}
    return {
        "Verdict": str(metadata.get("GateVerdict", "passed")),
        "Message": str(package.get("ModelPackageDescription", "")),
        "Value": str(metadata.get("GateValue", "")),
        "ModelPackageArn": arn,
        "ApprovalStatus": str(package.get("ModelApprovalStatus", "")),
        "TrainingJobName": str(metadata.get("TrainingJobName", "")),
        "ApprovalDeadline": "",
    }


#: How many of a group's newest versions a rollback looks through for its job's version.
ROLLBACK_SEARCH = 20


def _rolling_back(request: CustomResourceRequest) -> bool:
    """An Update from a newer job to an older one of the same estimator: CloudFormation rolling
    the deploy back. Job names end in their start time and a new training always has a newer
    name, so nothing else goes back in time."""
    old = str(request.old_properties.get("TrainingJobName") or "")
    new = str(request.properties.get("TrainingJobName") or "")
    return request.request_type == "Update" and bool(old) and bool(new) and new < old


def _version_of(job: str, arns: list[str]) -> dict[str, str] | None:
    sagemaker = aws_client("sagemaker")
    for arn in arns:
        try:
            package = sagemaker.describe_model_package(ModelPackageName=arn)
        except ClientError as err:
            if is_not_found(err):
                continue
            raise
        if (package.get("CustomerMetadataProperties") or {}).get("TrainingJobName") == job:
            return _verdict_of(arn, package)
    return None


def _previous_verdict(request: CustomResourceRequest, rolling_back: bool) -> dict[str, str] | None:
    """The version already registered for this Update's job: a job is judged once.

    The physical id names it when only other properties changed; on a rollback the older job's
    version is one of the group's newest.
    """
    if request.request_type != "Update":
        return None
    job = str(request.properties.get("TrainingJobName") or "")
    hint = request.physical_resource_id or ""
    arns = [hint] if ":model-package/" in hint else []
    if rolling_back:
        listed = (
            aws_client("sagemaker")
            .list_model_packages(
                ModelPackageGroupName=str(request.properties.get("ModelPackageGroupName") or ""),
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=ROLLBACK_SEARCH,
            )
            .get("ModelPackageSummaryList", [])
        )
        arns += [str(v["ModelPackageArn"]) for v in listed]
    return _version_of(job, arns) if job and arns else None


def _withdraw_rolled_back(request: CustomResourceRequest) -> None:
    """The version a rolled-back deploy was to serve never served: it is marked Rejected.

    It passed the gate, but a later resource failed (the model did not load, say), so that no
    promotion serves it, its approval is withdrawn.
    """
    arn = request.physical_resource_id or ""
    old = str(request.old_properties.get("TrainingJobName") or "")
    if ":model-package/" not in arn:
        return
    sagemaker = aws_client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    metadata = package.get("CustomerMetadataProperties") or {}
    if metadata.get("TrainingJobName") != old or package.get("ModelApprovalStatus") != "Approved":
        return
    new = request.properties.get("TrainingJobName")
    sagemaker.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus="Rejected",
        ApprovalDescription=(
            f"The deploy that was to serve training job {old} failed and was rolled back to "
            f"{new}; this version never served."
        )[:1024],
    )
    logger.info("rolled-back version rejected", model_package_arn=arn, training_job_name=old)


def _gate(request: CustomResourceRequest) -> Outcome:
    rolling_back = _rolling_back(request)
    if rolling_back:
        _withdraw_rolled_back(request)
    result = _previous_verdict(request, rolling_back) or evaluate_job(request.properties)
    if result["Verdict"] != "passed":
        return Outcome.failed(request.fallback_physical_id(), result["Message"])
    return Outcome(physical_resource_id=result["ModelPackageArn"], data=result)


def _delete(request: CustomResourceRequest) -> Outcome:
    """Versions are records of what was trained and judged: they stay in the registry."""
    return Outcome(request.fallback_physical_id())


def on_event(event: Mapping[str, Any], context: object | None) -> dict[str, Any] | None:
    """Lambda handler of Custom::RLPolicyGate."""
    return run_custom_resource(
        event, context, logger=logger, create=_gate, update=_gate, delete=_delete
    )


# --------------------------------------------------------------- Step Functions (fit(wait=False))
def evaluate(event: Mapping[str, Any], context: object | None) -> dict[str, str]:
    """TrainAndServe's ``Gate`` task: the same judgement; the workflow fails on ``failed``."""
    logger.inject_lambda_context(context)
    return evaluate_job(event)


def check_approval(event: Mapping[str, Any], context: object | None) -> dict[str, str]:
    """TrainAndServe's approval poll: ``Approved``, ``Rejected``, ``Pending`` or ``Expired``.

    ``Deadline`` (the evaluation's ``ApprovalDeadline``) is the epoch second after which a
    version still pending is given up on.
    """
    logger.inject_lambda_context(context)
    arn = str(event.get("ModelPackageArn") or "")
    package = aws_client("sagemaker").describe_model_package(ModelPackageName=arn)
    status = str(package.get("ModelApprovalStatus", ""))
    if status == "Approved":
        return {"Status": "Approved", "Message": f"{arn} was approved"}
    if status == "Rejected":
        return {"Status": "Rejected", "Message": f"{arn} was rejected: it is not served"}
    if time.time() > float(event.get("Deadline") or 0):
        return {
            "Status": "Expired",
            "Message": f"{arn} was not approved within the approval timeout: it is not served",
        }
    return {"Status": "Pending", "Message": f"{arn} waits for manual approval"}


def on_task(event: Mapping[str, Any], context: object | None) -> dict[str, str]:
    """Lambda handler of TrainAndServe's gate tasks (``Gate``, ``CheckApproval``)."""
    if event.get("Action") == "CheckApproval":
        return check_approval(event, context)
    return evaluate(event, context)
