"""The CreateTrainingJob request, exactly as the SDK's ``fit()`` sent it for the same arguments.

Kept as one pure function of checked inputs so that the parity tests can compare it with the
requests recorded from the SDK, and so that every way of running a job (the estimator's state
machine, a step in a user's workflow) sends the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import aws_iam as iam

from .._kms import KmsKeyRef
from .._s3 import S3Location
from .._tokens import REGION
from ..images import BoundImage
from ..source import TrainingSource
from .arguments import encode_hyperparameters
from .config import TrainingConfig
from .inputs import TrainingInput
from .network import TrainingNetwork

if TYPE_CHECKING:
    from ..distributed.ray_cluster import RayCluster

#: Where the training container finds the code when network isolation forbids S3 downloads.
ISOLATED_SUBMIT_DIRECTORY = "/opt/ml/input/data/code/sourcedir.tar.gz"


@dataclass(frozen=True)
class TrainingJobParts:
    """What a request needs besides the config: the pieces bound to one stack."""

    config: TrainingConfig
    image: BoundImage
    role: iam.IRole
    source: TrainingSource
    output: S3Location
    output_kms_key: KmsKeyRef | None = None
    checkpoint: S3Location | None = None
    network: TrainingNetwork | None = None
    #: False where SageMaker offers no Debugger/profiler (some regions): none is configured.
    debugger_supported: bool = True
    #: The jobs' name base the role's grants were made for (``training_job_parts`` sets it).
    job_name_base: str | None = None
    #: Set when the job starts through the Ray launcher (README.md#distributed-rl).
    ray_cluster: RayCluster | None = None

    @property
    def program(self) -> str:
        """``sagemaker_program``: the user's entry point, or the Ray launcher that runs it."""
        if self.ray_cluster is not None:
            return self.ray_cluster.program
        return self.source.entry_point

    def environment(self) -> dict[str, str]:
        """The container environment: the user's, plus what the Ray launcher reads."""
        environment = dict(self.config.environment)
        if self.ray_cluster is not None:
            environment.update(self.ray_cluster.environment(self.source.entry_point))
        return environment


def input_data_config(
    parts: TrainingJobParts, inputs: Mapping[str, str | TrainingInput]
) -> list[dict[str, Any]]:
    """The channels, each ``S3Prefix`` / ``FullyReplicated`` as the SDK sent them (plus the
    instance groups a ``TrainingInput`` names)."""
    channels = {
        name: item if isinstance(item, TrainingInput) else TrainingInput(item)
        for name, item in inputs.items()
    }
    if parts.config.enable_network_isolation:
        # The container may not reach S3: SageMaker delivers the code as a channel.
        channels["code"] = TrainingInput(parts.source.s3_url)
    return [
        {"ChannelName": name, "DataSource": {"S3DataSource": item.s3_data_source()}}
        for name, item in channels.items()
    ]


def stopping_condition(config: TrainingConfig) -> dict[str, int]:
    stopping = {"MaxRuntimeInSeconds": config.max_run_seconds}
    if config.max_wait_seconds is not None:
        stopping["MaxWaitTimeInSeconds"] = config.max_wait_seconds
    return stopping


def _hyperparameters(parts: TrainingJobParts, job_name_path: str) -> dict[str, str]:
    config = parts.config
    encoded = encode_hyperparameters(config.hyperparameters)
    encoded.update(
        {
            "sagemaker_program": json.dumps(parts.program),
            "sagemaker_submit_directory": json.dumps(
                ISOLATED_SUBMIT_DIRECTORY
                if config.enable_network_isolation
                else parts.source.s3_url
            ),
            "sagemaker_container_log_level": json.dumps(config.container_log_level),
            "sagemaker_region": json.dumps(REGION),
            "sagemaker_s3_output": json.dumps(parts.output.uri),
            "sagemaker_estimator": json.dumps("RLEstimator"),
        }
    )
    # The job name is only known when the execution runs: JSON-encode it there.
    encoded["sagemaker_job_name.$"] = f"States.Format('\"{{}}\"', {job_name_path})"
    return encoded


def training_request(
    parts: TrainingJobParts,
    *,
    job_name_path: str = "$$.Execution.Name",
    inputs: Mapping[str, str | TrainingInput] | None = None,
    tags: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The request the Task state sends (JSONPath keys end in ``.$``)."""
    config = parts.config
    output_path = parts.output.uri
    algorithm: dict[str, Any] = {
        "TrainingImage": parts.image.image_uri,
        "TrainingInputMode": config.input_mode.value,
    }
    metrics = config.metric_definitions(parts.image)
    if metrics:
        algorithm["MetricDefinitions"] = metrics
    output: dict[str, Any] = {"S3OutputPath": output_path}
    if parts.output_kms_key is not None:
        output["KmsKeyId"] = parts.output_kms_key.request_value
    request: dict[str, Any] = {
        "TrainingJobName.$": job_name_path,
        "AlgorithmSpecification": algorithm,
        "RoleArn": parts.role.role_arn,
        "OutputDataConfig": output,
        "ResourceConfig": config.resource_config(),
        "StoppingCondition": stopping_condition(config),
        "HyperParameters": _hyperparameters(parts, job_name_path),
    }
    channels = input_data_config(parts, inputs or {})
    if channels:
        request["InputDataConfig"] = channels
    environment = parts.environment()
    if environment:
        request["Environment"] = environment
    if config.use_spot_instances:
        request["EnableManagedSpotTraining"] = True
    if parts.checkpoint is not None:
        checkpoint: dict[str, Any] = {"S3Uri": parts.checkpoint.uri}
        if config.checkpoint_local_path:
            checkpoint["LocalPath"] = config.checkpoint_local_path
        request["CheckpointConfig"] = checkpoint
    debugger = config.debugger_hook_config and parts.debugger_supported
    if debugger:
        request["DebugHookConfig"] = {"S3OutputPath": output_path, "CollectionConfigurations": []}
    request["ProfilerConfig"] = (
        {"DisableProfiler": True}
        if config.disable_profiler or not parts.debugger_supported
        else {"S3OutputPath": output_path, "DisableProfiler": False}
    )
    if parts.network is not None:
        request["VpcConfig"] = parts.network.vpc_config()
    all_tags = [*config.tags, *(tags or [])]
    if all_tags:
        request["Tags"] = all_tags
    if config.max_retry_attempts is not None:
        request["RetryStrategy"] = {"MaximumRetryAttempts": config.max_retry_attempts}
    if config.enable_network_isolation:
        request["EnableNetworkIsolation"] = True
    if config.encrypt_inter_container_traffic:
        request["EnableInterContainerTrafficEncryption"] = True
    return request
