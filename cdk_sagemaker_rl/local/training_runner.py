"""Run one SageMaker training job on this machine, under the contract of the training container.

Local mode has no Docker, so a ``CreateTrainingJob`` request cannot start the training image.
What the image does for a script-mode job is small and documented (the open-source
``sagemaker-training`` toolkit is that runner), so this module does the same on the host:

1. build the ``/opt/ml`` tree under ``work_root/<job name>/`` (never under ``/opt/ml``):
   ``input/config/{hyperparameters,resourceconfig,inputdataconfig}.json``,
   ``input/data/<channel>/`` with the channel's S3 objects, ``model/``, ``output/data/``, ``code/``;
2. fetch ``sagemaker_submit_directory`` (``sourcedir.tar.gz``) into ``code/``, refusing members that
   would land outside it;
3. ``pip install -r code/requirements.txt`` only when the interpreter does not already satisfy it
   (the container always installs; doing it here every time would rewrite the user's venv);
4. run ``sagemaker_program`` in ``code/`` with the decoded hyperparameters as ``--key value``
   arguments and the ``SM_*`` environment, streaming every output line to ``on_log``;
5. upload ``model/`` as ``<S3OutputPath>/<job>/output/model.tar.gz`` and ``output/data/`` as
   ``<S3OutputPath>/<job>/output/output.tar.gz``, the keys SageMaker uses.

Statuses follow DescribeTrainingJob: a non-zero exit is ``Failed`` with a FailureReason in the
toolkit's ``AlgorithmError: ExecuteUserScriptError`` shape; a stop request is ``Stopped``
(secondary status ``Stopped``) and exceeding ``MaxRuntimeInSeconds`` is also ``Stopped``, with the
secondary status ``MaxRuntimeExceeded``, which is what SageMaker reports. In both stop cases the
script gets SIGTERM and a grace period (SageMaker: 120 s, here :data:`STOP_GRACE_SECONDS`) to save
its model, then SIGKILL, and whatever is in ``model/`` is uploaded, as SageMaker does.

This module imports only the standard library at import time: it is also run as a script, by the
job's interpreter, to check a requirements file (``--check-requirements``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

__all__ = [
    "STOP_GRACE_SECONDS",
    "TrainingJobResult",
    "extract_tar_safely",
    "run_training_job",
    "unsatisfied_requirements",
]

JobStatus = Literal["Completed", "Failed", "Stopped"]

#: Seconds between SIGTERM and SIGKILL when a job is stopped or runs out of time. SageMaker waits
#: 120 s; local mode is interactive, so it waits less. Read at stop time (tests lower it).
STOP_GRACE_SECONDS = 10.0

#: DescribeTrainingJob's FailureReason holds at most 1024 characters.
FAILURE_REASON_MAX_CHARS = 1024

CURRENT_HOST = "algo-1"
_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_GROUP_NAME = "homogeneousCluster"
_DEFAULT_MAX_RUNTIME = 86400
_DEFAULT_LOG_LEVEL = 20
_STDERR_TAIL_LINES = 200
_ERROR_MESSAGE_LINES = 20
_POLL_SECONDS = 0.1


@dataclass
class TrainingJobResult:
    """How a job ended, in DescribeTrainingJob's terms.

    ``secondary_status`` is DescribeTrainingJob's ``SecondaryStatus`` of the finished job
    (``Completed``, ``Failed``, ``Stopped`` or ``MaxRuntimeExceeded``): a job that ran out of time
    is ``Stopped`` like one stopped on request, and only the secondary status tells them apart.
    """

    status: JobStatus
    failure_reason: str | None
    model_artifacts: str | None
    output_artifacts: str | None
    log_lines: list[str]
    secondary_status: str = field(default="")


class _JobFailed(Exception):
    """The job fails with ``reason`` as its FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _JobStopped(Exception):
    """The job was stopped; ``secondary_status`` is ``Stopped`` or ``MaxRuntimeExceeded``."""

    def __init__(self, secondary_status: str) -> None:
        super().__init__(secondary_status)
        self.secondary_status = secondary_status


class _JobLog:
    """Collects the job's log lines and forwards each one to the caller as it arrives.

    Lines come from two reader threads (stdout, stderr) and the runner itself, hence the lock. A
    callback that raises is ignored: a broken log consumer must not stall the pipe and hang the job.
    """

    def __init__(self, on_log: Callable[[str], None] | None) -> None:
        self._on_log = on_log
        self._lock = threading.Lock()
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        with self._lock:
            self.lines.append(text)
            if self._on_log is not None:
                with contextlib.suppress(Exception):  # see the class docstring
                    self._on_log(text)

    def info(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
        self.line(f"{stamp} local-training-runner INFO     {message}")


class _Guard:
    """The job's deadline (MaxRuntimeInSeconds, counted from the start) and stop request."""

    def __init__(self, max_runtime: float, stop_event: threading.Event | None) -> None:
        self.deadline = time.monotonic() + max_runtime
        self.stop_event = stop_event

    def reason_to_stop(self) -> str | None:
        if self.stop_event is not None and self.stop_event.is_set():
            return "Stopped"
        if time.monotonic() >= self.deadline:
            return "MaxRuntimeExceeded"
        return None

    def check(self) -> None:
        reason = self.reason_to_stop()
        if reason is not None:
            raise _JobStopped(reason)


@dataclass
class _Layout:
    """The ``/opt/ml`` tree of one job, rooted at ``base`` (what SAGEMAKER_BASE_DIR points at)."""

    base: Path

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def config_dir(self) -> Path:
        return self.base / "input" / "config"

    @property
    def data_dir(self) -> Path:
        return self.base / "input" / "data"

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.base / "output" / "data"

    @property
    def intermediate_dir(self) -> Path:
        return self.base / "output" / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.base / "output" / "failure"

    @property
    def code_dir(self) -> Path:
        return self.base / "code"

    def create(self) -> None:
        for path in (
            self.config_dir,
            self.data_dir,
            self.model_dir,
            self.output_data_dir,
            self.intermediate_dir,
            self.code_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)


@dataclass
class _Channel:
    name: str
    s3_uri: str
    config: dict[str, str]


@dataclass
class _JobSpec:
    """The parts of a CreateTrainingJob request that the runner acts on."""

    name: str
    raw_hyperparameters: dict[str, str]
    hyperparameters: dict[str, Any]
    channels: list[_Channel]
    output_path: str
    instance_type: str
    instance_count: int
    max_runtime: int
    input_mode: str
    environment: dict[str, str]

    @property
    def user_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters the script receives: everything but the toolkit's ``sagemaker_*``."""
        return {k: v for k, v in self.hyperparameters.items() if not k.startswith("sagemaker_")}

    @property
    def program(self) -> str | None:
        value = self.hyperparameters.get("sagemaker_program")
        return str(value) if value not in (None, "") else None

    @property
    def submit_directory(self) -> str | None:
        value = self.hyperparameters.get("sagemaker_submit_directory")
        return str(value) if value not in (None, "") else None

    @property
    def log_level(self) -> int:
        try:
            return int(
                self.hyperparameters.get("sagemaker_container_log_level", _DEFAULT_LOG_LEVEL)
            )
        except (TypeError, ValueError):
            return _DEFAULT_LOG_LEVEL

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> _JobSpec:
        name = request.get("TrainingJobName")
        if not isinstance(name, str) or not _JOB_NAME.fullmatch(name):
            # Also what keeps work_root/<name> inside work_root.
            raise ValueError(
                f"request['TrainingJobName']={name!r} is not a training job name: "
                "1-63 letters, digits and hyphens, starting with a letter or digit"
            )
        output_path = (request.get("OutputDataConfig") or {}).get("S3OutputPath")
        if not isinstance(output_path, str) or not output_path.startswith("s3://"):
            raise ValueError(
                "request['OutputDataConfig']['S3OutputPath'] must be an s3:// URI, "
                f"got {output_path!r}"
            )
        algorithm = request.get("AlgorithmSpecification") or {}
        input_mode = str(algorithm.get("TrainingInputMode", "File"))
        raw = {str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()}
        channels = []
        for channel in request.get("InputDataConfig") or []:
            channel_name = channel.get("ChannelName")
            if not isinstance(channel_name, str) or not channel_name:
                raise ValueError("every InputDataConfig channel needs a ChannelName")
            source = channel.get("DataSource") or {}
            s3_source = source.get("S3DataSource") or {}
            config = {
                "TrainingInputMode": str(channel.get("InputMode", input_mode)),
                "S3DistributionType": str(
                    s3_source.get("S3DataDistributionType", "FullyReplicated")
                ),
                "RecordWrapperType": str(channel.get("RecordWrapperType", "None")),
            }
            if "ContentType" in channel:
                config["ContentType"] = str(channel["ContentType"])
            if "CompressionType" in channel:
                config["CompressionType"] = str(channel["CompressionType"])
            data_type = str(s3_source.get("S3DataType", "S3Prefix"))
            config["S3DataType"] = data_type
            channels.append(_Channel(channel_name, str(s3_source.get("S3Uri", "")), config))
        resources = request.get("ResourceConfig") or {}
        stopping = request.get("StoppingCondition") or {}
        return cls(
            name=name,
            raw_hyperparameters=raw,
            hyperparameters={k: _decode_hyperparameter(v) for k, v in raw.items()},
            channels=channels,
            output_path=output_path.rstrip("/"),
            instance_type=str(resources.get("InstanceType", "local")),
            instance_count=int(resources.get("InstanceCount", 1)),
            max_runtime=int(stopping.get("MaxRuntimeInSeconds", _DEFAULT_MAX_RUNTIME)),
            input_mode=input_mode,
            environment={str(k): str(v) for k, v in (request.get("Environment") or {}).items()},
        )


def run_training_job(
    request: Mapping[str, Any],
    *,
    s3: Any,
    work_root: Path,
    on_log: Callable[[str], None] | None = None,
    stop_event: threading.Event | None = None,
    python: str = sys.executable,
) -> TrainingJobResult:
    """Run the training job that ``request`` (a boto3 CreateTrainingJob request) describes.

    Blocks until the job ends and returns how it ended; problems of the job itself (bad input
    data, a failing script, a timeout) are part of the result, not exceptions. Raises
    ``ValueError`` only for a request that CreateTrainingJob itself would have rejected. No process
    started for the job outlives this call.

    Args:
        request: the CreateTrainingJob request, hyperparameter values JSON-encoded (as boto3
            sends them).
        s3: a boto3 S3 client, used for the channels, the source archive and the artifacts.
        work_root: the job's ``/opt/ml`` tree is built in ``work_root/<TrainingJobName>``
            (replaced if it exists: a job name is used once).
        on_log: called with each log line (the script's stdout and stderr, and the runner's own
            lines) as it is produced, like the job's CloudWatch stream.
        stop_event: set it to stop the job (StopTrainingJob).
        python: the interpreter that runs the entry point and pip.
    """
    job = _JobSpec.from_request(request)
    log = _JobLog(on_log)
    guard = _Guard(job.max_runtime, stop_event)
    layout = _Layout(Path(work_root) / job.name)
    if layout.base.exists():
        shutil.rmtree(layout.base)
    layout.create()
    log.info(f"Starting training job {job.name} in {layout.base}")
    try:
        _write_config(job, layout, log)
        _download_channels(job, layout, s3, log, guard)
        _fetch_source(job, layout, s3, log)
        guard.check()
        _install_requirements(layout, python, job.environment, log, guard)
        _run_entry_point(job, layout, python, log, guard)
        model_uri, output_uri = _upload_artifacts(job, layout, s3, log)
    except _JobStopped as stopped:
        log.info(f"Training job stopped ({stopped.secondary_status}); uploading what it saved")
        try:
            model_uri, output_uri = _upload_artifacts(job, layout, s3, log)
        except _JobFailed as failure:
            log.info(f"Could not upload the artifacts of the stopped job: {failure.reason}")
            return TrainingJobResult(
                "Stopped", None, None, None, log.lines, stopped.secondary_status
            )
        return TrainingJobResult(
            "Stopped", None, model_uri, output_uri, log.lines, stopped.secondary_status
        )
    except _JobFailed as failure:
        reason = _truncate_reason(failure.reason)
        log.info(f"Training job failed: {reason}")
        return TrainingJobResult("Failed", reason, None, None, log.lines, "Failed")
    log.info("Training job completed")
    return TrainingJobResult("Completed", None, model_uri, output_uri, log.lines, "Completed")


# --- configuration ------------------------------------------------------------------------------


def _decode_hyperparameter(value: str) -> Any:
    """Undo the SDK's JSON encoding of a hyperparameter; a value that is not JSON stays a string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``--key value`` pairs in key order, as the toolkit builds them.

    A one-letter key becomes ``-k``; a mapping value becomes ``k1=v1,k2=v2``; any other value is
    passed as Python's ``str()`` of the decoded JSON (so ``true`` arrives as ``True``).
    """
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"-{key}" if len(key) == 1 else f"--{key}")
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(str(value))
    return args


def _env_value(value: Any) -> str:
    """An ``SM_*`` value: strings as they are, ``None`` as empty, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _write_config(job: _JobSpec, layout: _Layout, log: _JobLog) -> None:
    if job.instance_count > 1:
        log.info(
            f"ResourceConfig.InstanceCount={job.instance_count}: local mode runs one host "
            f"({CURRENT_HOST}); the script sees a single-host cluster"
        )
    for name, content in (
        ("hyperparameters.json", job.raw_hyperparameters),
        ("resourceconfig.json", _resource_config(job)),
        ("inputdataconfig.json", {c.name: c.config for c in job.channels}),
    ):
        (layout.config_dir / name).write_text(json.dumps(content, indent=2, sort_keys=True))


def _resource_config(job: _JobSpec) -> dict[str, Any]:
    return {
        "current_host": CURRENT_HOST,
        "current_instance_type": job.instance_type,
        "current_group_name": _GROUP_NAME,
        "hosts": [CURRENT_HOST],
        "instance_groups": [
            {
                "instance_group_name": _GROUP_NAME,
                "instance_type": job.instance_type,
                "hosts": [CURRENT_HOST],
            }
        ],
        "network_interface_name": "eth0",
    }


def _training_env(job: _JobSpec, layout: _Layout, args: list[str]) -> dict[str, str]:
    """The ``SM_*`` variables (and ``SM_TRAINING_ENV``, all of them as one JSON document)."""
    program = job.program or ""
    channel_dirs = {c.name: str(layout.data_dir / c.name) for c in job.channels}
    hps = job.user_hyperparameters
    framework_module = job.environment.get("SAGEMAKER_TRAINING_MODULE")
    summary: dict[str, Any] = {
        "additional_framework_parameters": {},
        "channel_input_dirs": channel_dirs,
        "current_host": CURRENT_HOST,
        "current_instance_group": _GROUP_NAME,
        "current_instance_type": job.instance_type,
        "framework_module": framework_module,
        "hosts": [CURRENT_HOST],
        "hyperparameters": hps,
        "input_config_dir": str(layout.config_dir),
        "input_data_config": {c.name: c.config for c in job.channels},
        "input_dir": str(layout.input_dir),
        "is_master": True,
        "job_name": job.name,
        "log_level": job.log_level,
        "master_hostname": CURRENT_HOST,
        "model_dir": str(layout.model_dir),
        "module_dir": job.submit_directory,
        "module_name": program.removesuffix(".py"),
        "network_interface_name": "eth0",
        "num_cpus": _cpu_count(),
        "num_gpus": 0,
        "output_data_dir": str(layout.output_data_dir),
        "output_dir": str(layout.output_dir),
        "output_intermediate_dir": str(layout.intermediate_dir),
        "resource_config": _resource_config(job),
        "user_entry_point": program,
    }
    env = {
        "SM_" + key.upper(): _env_value(value)
        for key, value in summary.items()
        if key not in ("additional_framework_parameters", "channel_input_dirs", "hyperparameters")
    }
    env.update(
        {
            "SM_CHANNELS": _env_value(sorted(channel_dirs)),
            "SM_HPS": _env_value(hps),
            "SM_FRAMEWORK_PARAMS": _env_value({}),
            "SM_USER_ARGS": _env_value(args),
            "SM_TRAINING_ENV": _env_value(summary),
        }
    )
    env.update({f"SM_CHANNEL_{name.upper()}": path for name, path in channel_dirs.items()})
    env.update({f"SM_HP_{key.upper()}": _env_value(value) for key, value in hps.items()})
    return env


# --- S3 -----------------------------------------------------------------------------------------


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def _relative_key(prefix: str, key: str) -> str:
    """Where an object of an S3Prefix channel lands, relative to the channel directory.

    The object named by the prefix itself lands under its base name; objects below the prefix keep
    their path below it.
    """
    if key == prefix:
        return PurePosixPath(key).name
    if prefix == "" or prefix.endswith("/"):
        return key[len(prefix) :]
    if key[len(prefix)] == "/":
        return key[len(prefix) + 1 :]
    return key[prefix.rfind("/") + 1 :]


def _safe_destination(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that would escape ``root``."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{relative!r} would be written outside {root}")
    return root.joinpath(*pure.parts)


def _download_channels(
    job: _JobSpec, layout: _Layout, s3: Any, log: _JobLog, guard: _Guard
) -> None:
    if job.input_mode == "Pipe" or any(
        c.config["TrainingInputMode"] == "Pipe" for c in job.channels
    ):
        raise _JobFailed(
            "ClientError: TrainingInputMode Pipe is not supported in local mode; "
            "use File or FastFile"
        )
    for channel in job.channels:
        data_type = channel.config["S3DataType"]
        if data_type != "S3Prefix" or not channel.s3_uri:
            raise _JobFailed(
                f"ClientError: channel {channel.name!r}: local mode downloads S3DataSource "
                "channels "
                f"with S3DataType S3Prefix only (got {data_type!r}, S3Uri {channel.s3_uri!r})"
            )
        target = layout.data_dir / channel.name
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        try:
            bucket, prefix = _split_s3_uri(channel.s3_uri)
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    guard.check()
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue
                    destination = _safe_destination(target, _relative_key(prefix, key))
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(destination))
                    count += 1
        except (_JobStopped, _JobFailed):
            raise
        except Exception as error:
            raise _JobFailed(
                f"ClientError: Data download failed: channel {channel.name!r} "
                f"({channel.s3_uri}): {error}"
            ) from error
        if count == 0:
            raise _JobFailed(
                f"ClientError: Data download failed: no objects under {channel.s3_uri} "
                f"(channel {channel.name!r})"
            )
        log.info(f"Downloaded {count} object(s) of channel {channel.name!r} to {target}")


def _fetch_source(job: _JobSpec, layout: _Layout, s3: Any, log: _JobLog) -> None:
    """Put ``sagemaker_submit_directory`` (s3:// or local tar.gz, or a local dir) into ``code/``."""
    if job.program is None or job.submit_directory is None:
        raise _JobFailed(
            "ClientError: local mode runs script-mode jobs only: the hyperparameters must hold "
            "sagemaker_program and sagemaker_submit_directory (the training image "
            "itself is not run on this machine)"
        )
    source = job.submit_directory
    try:
        if source.startswith("s3://"):
            bucket, key = _split_s3_uri(source)
            archive = layout.base / "sourcedir.tar.gz"
            s3.download_file(bucket, key, str(archive))
            extract_tar_safely(archive, layout.code_dir)
        else:
            local = Path(source.removeprefix("file://"))
            if local.is_dir():
                shutil.copytree(local, layout.code_dir, dirs_exist_ok=True)
            else:
                extract_tar_safely(local, layout.code_dir)
    except Exception as error:
        raise _JobFailed(
            f"AlgorithmError: could not fetch sagemaker_submit_directory {source}: {error}"
        ) from error
    if not (layout.code_dir / job.program).is_file():
        present = sorted(p.name for p in layout.code_dir.iterdir())
        raise _JobFailed(
            f"AlgorithmError: entry point {job.program!r} is not in {source} "
            f"(it holds: {', '.join(present) or 'nothing'})"
        )
    log.info(f"Extracted {source} to {layout.code_dir}")


def extract_tar_safely(archive: Path, destination: Path) -> None:
    """Extract a (gzipped) tar into ``destination``, refusing anything that would land outside it.

    Rejects absolute names, ``..`` components, links that point outside, and device files, before
    extracting anything: an archive from S3 is input, not trusted code layout.
    """
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _safe_destination(destination, member.name)
            if member.issym() or member.islnk():
                target = PurePosixPath(member.linkname)
                if member.issym():
                    target = PurePosixPath(member.name).parent / target
                if target.is_absolute() or ".." in PurePosixPath(os.path.normpath(target)).parts:
                    raise ValueError(
                        f"link {member.name!r} -> {member.linkname!r} leaves the archive"
                    )
            elif not (member.isfile() or member.isdir()):
                raise ValueError(f"{member.name!r} is not a regular file or directory")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4; members were checked above
            tar.extractall(destination, members=members)


def _add_tree(tar: tarfile.TarFile, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)


def _upload_artifacts(job: _JobSpec, layout: _Layout, s3: Any, log: _JobLog) -> tuple[str, str]:
    """Upload ``model/`` and ``output/data/`` as SageMaker does; return their S3 URIs."""
    bucket, prefix = _split_s3_uri(job.output_path)
    base_key = f"{prefix}/{job.name}/output" if prefix else f"{job.name}/output"
    uris = []
    for source, name in (
        (layout.model_dir, "model.tar.gz"),
        (layout.output_data_dir, "output.tar.gz"),
    ):
        archive = layout.base / name
        with tarfile.open(archive, "w:gz") as tar:
            _add_tree(tar, source)
        key = f"{base_key}/{name}"
        try:
            s3.upload_file(str(archive), bucket, key)
        except Exception as error:
            raise _JobFailed(
                f"ClientError: could not upload s3://{bucket}/{key}: {error}"
            ) from error
        uris.append(f"s3://{bucket}/{key}")
        log.info(f"Uploaded {source} to s3://{bucket}/{key}")
    return uris[0], uris[1]


# --- requirements -------------------------------------------------------------------------------


def _requirement_lines(text: str) -> Iterable[str]:
    """Logical lines of a requirements file: continuations joined, comments and blanks dropped."""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        if line.lstrip().startswith("#"):
            continue
        line = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if line:
            yield line


# Options that change where packages come from but name none: they cannot be unsatisfied.
_NEUTRAL_OPTIONS = (
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--no-binary",
    "--only-binary",
)


def unsatisfied_requirements(requirements_file: Path) -> list[str]:
    """The lines of ``requirements_file`` that the running interpreter does not satisfy.

    A line is satisfied when its distribution is installed at a version its specifier allows
    (and so are the requirements its extras add). Lines that cannot be checked this way (URLs,
    paths, ``-r``/``-e``/``-c`` options) count as unsatisfied, so pip gets to decide.
    """
    try:
        from importlib import metadata

        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        return ["packaging is not installed: cannot check " + str(requirements_file)]

    def satisfied(requirement: Requirement, seen: set[tuple[str, str]]) -> bool:
        if requirement.url:
            return False
        if requirement.marker is not None and not requirement.marker.evaluate():
            return True
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(dist.version, prereleases=True):
            return False
        for extra in requirement.extras:
            if (requirement.name, extra) in seen:
                continue
            seen.add((requirement.name, extra))
            for text in dist.requires or []:
                sub = Requirement(text)
                if sub.marker is None or not sub.marker.evaluate({"extra": extra}):
                    continue
                if sub.marker.evaluate({"extra": ""}):
                    continue  # not specific to this extra: already a plain dependency
                sub.marker = None
                if not satisfied(sub, seen):
                    return False
        return True

    missing = []
    for line in _requirement_lines(requirements_file.read_text(encoding="utf-8")):
        if line.startswith("-"):
            if not line.startswith(_NEUTRAL_OPTIONS):
                missing.append(line)
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if not satisfied(requirement, set()):
            missing.append(line)
    return missing


def _check_requirements_with(
    python: str, requirements_file: Path, env: Mapping[str, str]
) -> list[str]:
    """Ask ``python`` (the job's interpreter, maybe not this one) what it does not satisfy."""
    try:
        completed = subprocess.run(
            [python, str(Path(__file__).resolve()), "--check-requirements", str(requirements_file)],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return [f"could not check with {python}: {error}"]
    if completed.returncode not in (0, 1):
        return [f"could not check with {python}: {completed.stderr.strip()[-500:]}"]
    return [line for line in completed.stdout.splitlines() if line.strip()]


def _install_requirements(
    layout: _Layout, python: str, environment: Mapping[str, str], log: _JobLog, guard: _Guard
) -> None:
    """pip install code/requirements.txt unless satisfied, with the job's Environment applied
    (it may point pip at a private index, as it would in the container)."""
    requirements = layout.code_dir / "requirements.txt"
    if not requirements.is_file():
        return
    env = {**os.environ, **environment}
    missing = _check_requirements_with(python, requirements, env)
    if not missing:
        log.info(f"requirements.txt is already satisfied by {python}: nothing to install")
        return
    log.info(f"Installing requirements.txt with pip (not satisfied: {'; '.join(missing)})")
    command = [python, "-m", "pip", "install", "-r", "requirements.txt"]
    code, stderr = _run_process(command, cwd=layout.code_dir, env=env, log=log, guard=guard)
    if code != 0:
        raise _JobFailed(
            "AlgorithmError: " + _process_error("InstallRequirementsError", code, stderr, command)
        )


# --- processes ----------------------------------------------------------------------------------


def _entry_point_command(program: str, python: str, args: list[str]) -> list[str]:
    """A ``.py`` entry point runs with the interpreter; anything else as a shell command."""
    if program.endswith(".py"):
        return [python, program, *args]
    return ["/bin/sh", "-c", shlex.join([f"./{program}", *args])]


def _run_entry_point(
    job: _JobSpec, layout: _Layout, python: str, log: _JobLog, guard: _Guard
) -> None:
    assert job.program is not None  # checked by _fetch_source
    args = _to_cmd_args(job.user_hyperparameters)
    env = dict(os.environ)
    env.update(_training_env(job, layout, args))
    env.update(
        {
            "SAGEMAKER_BASE_DIR": str(layout.base),
            "TRAINING_JOB_NAME": job.name,
            "PYTHONUNBUFFERED": "1",  # the images set it: log lines arrive as they are printed
        }
    )
    env.update(job.environment)
    command = _entry_point_command(job.program, python, args)
    if (layout.code_dir / "setup.py").is_file():
        log.info("setup.py found: local mode runs the entry point in place, without installing it")
    log.info(f"Invoking user script: {shlex.join(command)}")
    code, stderr = _run_process(command, cwd=layout.code_dir, env=env, log=log, guard=guard)
    if code == 0:
        return
    if layout.failure_file.is_file() and layout.failure_file.read_text(errors="replace").strip():
        # The script explained its own failure: SageMaker reports that file, as the toolkit
        # writes its message only when the script left none.
        raise _JobFailed(
            "AlgorithmError: " + layout.failure_file.read_text(errors="replace").strip()
        )
    message = _process_error("ExecuteUserScriptError", code, stderr, command)
    layout.failure_file.write_text(message)
    raise _JobFailed("AlgorithmError: " + message)


def _process_error(kind: str, code: int, stderr: list[str], command: list[str]) -> str:
    """The toolkit's message for a failed process: kind, exit code, the error, the command."""
    lines = [line for line in stderr if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("Traceback (most recent call last)"):
            lines = lines[index:]
            break
    error = "\n".join(lines[-_ERROR_MESSAGE_LINES:])
    head = f'{kind}:\nExitCode {code}\nErrorMessage "'
    tail = f'"\nCommand "{shlex.join(command)}", exit code: {code}'
    room = FAILURE_REASON_MAX_CHARS - len("AlgorithmError: ") - len(head) - len(tail)
    if len(error) > room:
        error = "..." + error[-max(room - 3, 0) :]
    return head + error + tail


def _truncate_reason(reason: str) -> str:
    if len(reason) <= FAILURE_REASON_MAX_CHARS:
        return reason
    return reason[: FAILURE_REASON_MAX_CHARS - 3] + "..."


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _run_process(
    command: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: _JobLog,
    guard: _Guard,
) -> tuple[int, list[str]]:
    """Run ``command`` in its own process group; return its exit code and the tail of its stderr.

    Every line of stdout and stderr goes to the log as it arrives. A stop request or the deadline
    sends SIGTERM to the whole group, then SIGKILL after the grace period, and raises _JobStopped.
    On every way out, whatever is left of the group is killed.
    """
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)

    def pump(stream: IO[str], keep: deque[str] | None) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            log.line(line)
            if keep is not None:
                keep.append(line)

    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    readers = [
        threading.Thread(target=pump, args=(process.stdout, None), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, stderr_tail), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        while True:
            try:
                code = process.wait(timeout=_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            reason = guard.reason_to_stop()
            if reason is not None:
                log.info(f"{reason}: sending SIGTERM to the job's processes")
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    log.info(f"Still running after {STOP_GRACE_SECONDS:g} s: sending SIGKILL")
                raise _JobStopped(reason)
    finally:
        _signal_group(process, signal.SIGKILL)
        process.wait()
        for reader in readers:
            reader.join(timeout=5)
        process.stdout.close()
        process.stderr.close()
    return code, list(stderr_tail)


def _main(argv: list[str]) -> int:
    """``training_runner.py --check-requirements FILE``: print unsatisfied lines; exit 1 if any."""
    if len(argv) != 2 or argv[0] != "--check-requirements":
        print("usage: training_runner.py --check-requirements REQUIREMENTS_FILE", file=sys.stderr)
        return 2
    missing = unsatisfied_requirements(Path(argv[1]))
    for line in missing:
        print(line)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
