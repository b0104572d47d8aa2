"""Run one SageMaker training job on this machine, under the contract of the training container.

Local mode has no Docker, so a ``CreateTrainingJob`` request cannot start the training image.
What the image does for a script-mode job is small and documented (the open-source
``sagemaker-training`` toolkit is that runner), so this module does the same on the host:

1. build the ``/opt/ml`` tree under ``work_root/<job name>/`` (never under ``/opt/ml``):
   ``input/config/{hyperparameters,resourceconfig,inputdataconfig}.json``,
   ``input/data/<channel>/`` with the channel's S3 objects, ``model/``, ``output/data/``, ``code/``;
2. fetch ``sagemaker_submit_directory`` (``sourcedir.tar.gz``) into ``code/``, refusing members that
   would land outside it;
3. run in the user's interpreter when it satisfies ``code/requirements.txt``, else in an
   environment of its own built with pip once per requirements hash (``..environments``): the
   container always installs, but here that would rewrite the user's venv, and two examples'
   pins may conflict;
4. run ``sagemaker_program`` in ``code/`` with the decoded hyperparameters as ``--key value``
   arguments and the ``SM_*`` environment, streaming every output line to ``on_log``;
5. upload ``model/`` as ``<S3OutputPath>/<job>/output/model.tar.gz`` and ``output/data/`` as
   ``<S3OutputPath>/<job>/output/output.tar.gz``, the keys SageMaker uses;
6. plot the reward metric (``MetricDefinitions``) over timesteps as ``reward_curve.png`` next to
   the tarballs in ``work_root/<job name>/`` (uploaded next to ``output.tar.gz`` with them), and
   log its path: local mode has no CloudWatch console to show the job's metrics.

A job of N hosts (``InstanceCount`` or ``InstanceGroups``) gets N trees (``algo-k/`` each, with
its own ``current_host``, group and channels) and N processes, run together in a private network
namespace where ``algo-k`` is ``127.0.0.(k+1)`` (:mod:`.host_network`); the first host to fail fails
the job with its error, and the model is every host's ``model/`` in one archive.

Statuses follow DescribeTrainingJob: a non-zero exit is ``Failed`` with a FailureReason in the
toolkit's ``AlgorithmError: ExecuteUserScriptError`` shape; a stop request is ``Stopped``
(secondary status ``Stopped``) and exceeding ``MaxRuntimeInSeconds`` is also ``Stopped``, with the
secondary status ``MaxRuntimeExceeded``, which is what SageMaker reports. In both stop cases the
script gets SIGTERM and a grace period (SageMaker: 120 s, here :data:`STOP_GRACE_SECONDS`) to save
its model, then SIGKILL, and whatever is in ``model/`` is uploaded, as SageMaker does.

The steps live in one module each: :mod:`.job` (the request), :mod:`.contract` (the ``/opt/ml``
tree and ``SM_*`` environment), :mod:`.inputs` (channels and source), :mod:`.processes` (pip and
the entry point, supervised), :mod:`.artifacts` (the upload), :mod:`.reward_curve`, :mod:`.control`
and :mod:`.job_log` (how a job ends, its log). This package imports only the standard library
(and matplotlib, lazily, for the curve).
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..archives import extract_tar_safely
from ..requirements import unsatisfied_requirements
from .artifacts import upload_artifacts
from .contract import Layout, host_layouts, write_config
from .control import Guard, JobFailed, JobStopped, truncate_reason
from .inputs import download_channels, fetch_source
from .job import JobSpec
from .job_log import JobLog
from .processes import install_requirements, run_entry_point, run_hosts
from .reward_curve import write as write_reward_curve

__all__ = [
    "STOP_GRACE_SECONDS",
    "TrainingJobResult",
    "extract_tar_safely",
    "run_training_job",
    "unsatisfied_requirements",
]

JobStatus = Literal["Completed", "Failed", "Stopped"]

#: Seconds between SIGTERM and SIGKILL when a job is stopped or runs out of time. SageMaker waits
#: 120 s; local mode is interactive, so it waits less. Read when a job starts (tests lower it).
STOP_GRACE_SECONDS = 10.0


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
    job = JobSpec.from_request(request)
    log = JobLog(on_log)
    guard = Guard(job.max_runtime, stop_event, STOP_GRACE_SECONDS)
    base = Path(work_root) / job.name
    if base.exists():
        shutil.rmtree(base)
    layouts = host_layouts(job, base)
    log.info(f"Starting training job {job.name} in {base}")
    curve: list[Path] = []
    try:
        for host, layout in zip(job.hosts, layouts, strict=True):
            layout.create()
            write_config(job, layout, log, host)
            download_channels(job, layout, s3, log, guard, host)
            fetch_source(job, layout, s3, log)
        guard.check()
        job_python = install_requirements(layouts[0], python, job.environment, log, guard)
        _train_and_plot(job, base, layouts, job_python, log, guard, curve)
        model_uri, output_uri = upload_artifacts(job, base, layouts, s3, log, extras=curve)
    except JobStopped as stopped:
        log.info(f"Training job stopped ({stopped.secondary_status}); uploading what it saved")
        try:
            model_uri, output_uri = upload_artifacts(job, base, layouts, s3, log, extras=curve)
        except JobFailed as failure:
            log.info(f"Could not upload the artifacts of the stopped job: {failure.reason}")
            return TrainingJobResult(
                "Stopped", None, None, None, log.lines, stopped.secondary_status
            )
        return TrainingJobResult(
            "Stopped", None, model_uri, output_uri, log.lines, stopped.secondary_status
        )
    except JobFailed as failure:
        reason = truncate_reason(failure.reason)
        log.info(f"Training job failed: {reason}")
        return TrainingJobResult("Failed", reason, None, None, log.lines, "Failed")
    log.info("Training job completed")
    return TrainingJobResult("Completed", None, model_uri, output_uri, log.lines, "Completed")


def _train_and_plot(
    job: JobSpec,
    base: Path,
    layouts: list[Layout],
    python: str,
    log: JobLog,
    guard: Guard,
    curve: list[Path],
) -> None:
    """Run the entry point (on every host), then plot its reward curve however it ended."""
    status = "Completed"
    try:
        if len(layouts) == 1:
            run_entry_point(job, layouts[0], python, log, guard)
        else:
            run_hosts(job, layouts, python, log, guard)
    except JobStopped:
        status = "Stopped"
        raise
    except JobFailed:
        status = "Failed"
        raise
    finally:
        path = write_reward_curve(job, base, log, status)
        if path is not None:
            curve.append(path)
