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
  or ``Failed`` with the reason; an update swaps servers once the new one answers ``/ping``, and
  one whose model does not load leaves the endpoint ``InService`` on the old config with the
  container's error as FailureReason; DeleteEndpoint stops the server; CloudFormation endpoints
  wait for ``InService`` like CloudFormation does;
- keeps what SageMaker keeps of an endpoint: ``DeploymentConfig`` (reported, not executed),
  instance counts changed by UpdateEndpointWeightsAndCapacities and kept by an update with
  ``RetainAllVariantProperties``, serverless variants, data capture settings;
- forwards sagemaker-runtime InvokeEndpoint to the endpoint's server (Body, ContentType, Accept,
  custom attributes); an error status from the model is SageMaker's ``ModelError`` (424) with
  ``OriginalStatusCode`` and ``OriginalMessage``; with data capture on, the sampled invocations
  are written to S3 in SageMaker's capture format;
- takes ``AWS::ApplicationAutoScaling::ScalableTarget``/``ScalingPolicy`` in templates (moto has
  no model for them); nothing scales;
- replaces a template's models and endpoint configs as CloudFormation does (the old one is
  deleted once the update succeeded, and is what a rollback returns to);
- keeps the model registry as SageMaker does: versions numbered per group, approval status,
  idempotent ``ClientToken``, groups' resource policies, only empty groups deleted; and tags
  one value per key, ``ValidationException`` for an ARN that names nothing.

Stopping the emulator writes the captured records and stops every job (the runner ends its
processes) and every model server.

The S3 requests a training job or a model server makes are the ones SageMaker makes with the
job's ``RoleArn`` or the model's ``ExecutionRoleArn``: their User-Agent names that role
(``app/<id>``, see ``lambda_exec.app_id_for``), so a recording of the emulator's requests can be
checked against the role's policies.

One module per part: :mod:`.training_jobs`, :mod:`.endpoints` (deployments and the servers),
:mod:`.endpoint_api` (the endpoint calls and resources), :mod:`.variants` (what an endpoint
reports and keeps), :mod:`.replacements`, :mod:`.invocations`, :mod:`.capture`,
:mod:`.autoscaling`, :mod:`.model_packages` (the model registry), :mod:`.tags`, and
:mod:`.role_s3` (the S3 client a job or a server acts with); this package installs them.
"""

from __future__ import annotations

import time
from typing import Any

from ..runtime import LOG
from . import (
    autoscaling,
    capture,
    endpoint_api,
    endpoints,
    invocations,
    model_packages,
    replacements,
    tags,
    training_jobs,
)
from .training_jobs import TRAINING_LOG_NAME

__all__ = ["TRAINING_LOG_NAME", "install", "snapshot", "stop_all"]


def snapshot() -> dict[str, Any]:
    """Training jobs and endpoints the emulator is running (for ``/_local/status``)."""
    return {"training_jobs": training_jobs.snapshot(), "endpoints": endpoints.snapshot()}


def stop_all(timeout: float = 60.0) -> None:
    """Write the captured records, then stop every training job and model server (emulator
    stop): nothing captured is lost and no process is left behind."""
    try:
        capture.stop()
    except Exception:
        LOG.exception("could not write the captured records")
    runs = training_jobs.detach_all()
    servers = endpoints.detach_all()
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
    training_jobs.install()
    endpoint_api.install()
    replacements.install()
    invocations.install()
    autoscaling.install()
    model_packages.install()
    tags.install()
    _installed = True
