"""The CreateTrainingJob request as the runner reads it: validated, hyperparameters decoded.

Only the parts that change what runs on this machine are kept (:class:`JobSpec`); a request that
CreateTrainingJob itself would reject is a ``ValueError`` here, before anything is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Channel", "Host", "InstanceGroup", "JobSpec", "decode_hyperparameter", "split_s3_uri"]

_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_DEFAULT_MAX_RUNTIME = 86400
_DEFAULT_LOG_LEVEL = 20
_MAX_LOCAL_HOSTS = 254


#: The instance group name SageMaker reports for a job without ``InstanceGroups``.
HOMOGENEOUS_GROUP = "homogeneousCluster"


@dataclass
class Channel:
    """One InputDataConfig channel: where its data is and its ``inputdataconfig.json`` entry."""

    name: str
    s3_uri: str
    config: dict[str, str]
    #: ``S3DataSource.InstanceGroupNames``: only these groups' hosts get the data (None: all).
    instance_groups: tuple[str, ...] | None = None


@dataclass(frozen=True)
class InstanceGroup:
    """One ``ResourceConfig.InstanceGroups`` entry (or the whole job, without them)."""

    name: str
    instance_type: str
    count: int


@dataclass(frozen=True)
class Host:
    """One host of the job: ``algo-k``, numbered from 1 in group order."""

    name: str
    group: str
    instance_type: str


@dataclass
class JobSpec:
    """The parts of a CreateTrainingJob request that the runner acts on."""

    name: str
    raw_hyperparameters: dict[str, str]
    hyperparameters: dict[str, Any]
    channels: list[Channel]
    output_path: str
    instance_type: str
    instance_count: int
    max_runtime: int
    input_mode: str
    environment: dict[str, str]
    #: ``AlgorithmSpecification.MetricDefinitions``: ``{"Name": ..., "Regex": ...}`` each.
    metric_definitions: list[dict[str, str]] = field(default_factory=list)
    #: ``ResourceConfig.InstanceGroups``, or one group of InstanceCount hosts without them.
    instance_groups: list[InstanceGroup] = field(default_factory=list)

    @property
    def hosts(self) -> list[Host]:
        groups = self.instance_groups or [
            InstanceGroup(HOMOGENEOUS_GROUP, self.instance_type, self.instance_count)
        ]
        hosts: list[Host] = []
        for group in groups:
            for _ in range(group.count):
                hosts.append(Host(f"algo-{len(hosts) + 1}", group.name, group.instance_type))
        return hosts

    def channels_for(self, host: Host) -> list[Channel]:
        """The channels SageMaker delivers to ``host`` (InstanceGroupNames restricts them)."""
        return [
            c for c in self.channels if c.instance_groups is None or host.group in c.instance_groups
        ]

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
    def from_request(cls, request: Mapping[str, Any]) -> JobSpec:
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
            groups = s3_source.get("InstanceGroupNames")
            channels.append(
                Channel(
                    channel_name,
                    str(s3_source.get("S3Uri", "")),
                    config,
                    tuple(str(g) for g in groups) if groups else None,
                )
            )
        resources = request.get("ResourceConfig") or {}
        instance_groups = [
            InstanceGroup(
                str(g.get("InstanceGroupName", "")),
                str(g.get("InstanceType", "local")),
                int(g.get("InstanceCount", 1)),
            )
            for g in resources.get("InstanceGroups") or []
        ]
        if any(not g.name for g in instance_groups) or len(
            {g.name for g in instance_groups}
        ) != len(instance_groups):
            raise ValueError(
                "request['ResourceConfig']['InstanceGroups'] needs a distinct InstanceGroupName "
                "for every group"
            )
        hosts = (
            sum(g.count for g in instance_groups)
            if instance_groups
            else int(resources.get("InstanceCount", 1))
        )
        if not 1 <= hosts <= _MAX_LOCAL_HOSTS:
            # Each host gets a loopback address 127.0.0.(k+1) of its own.
            raise ValueError(
                f"request['ResourceConfig'] asks for {hosts} instances: local mode runs 1 to "
                f"{_MAX_LOCAL_HOSTS} hosts"
            )
        stopping = request.get("StoppingCondition") or {}
        return cls(
            name=name,
            raw_hyperparameters=raw,
            hyperparameters={k: decode_hyperparameter(v) for k, v in raw.items()},
            channels=channels,
            output_path=output_path.rstrip("/"),
            instance_type=str(
                resources.get("InstanceType")
                or (instance_groups[0].instance_type if instance_groups else "local")
            ),
            instance_count=(
                sum(g.count for g in instance_groups)
                if instance_groups
                else int(resources.get("InstanceCount", 1))
            ),
            max_runtime=int(stopping.get("MaxRuntimeInSeconds", _DEFAULT_MAX_RUNTIME)),
            input_mode=input_mode,
            environment={str(k): str(v) for k, v in (request.get("Environment") or {}).items()},
            metric_definitions=[
                {"Name": str(m.get("Name", "")), "Regex": str(m.get("Regex", ""))}
                for m in algorithm.get("MetricDefinitions") or []
                if isinstance(m, Mapping)
            ],
            instance_groups=instance_groups,
        )


def decode_hyperparameter(value: str) -> Any:
    """Undo the SDK's JSON encoding of a hyperparameter; a value that is not JSON stays a string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``; the request's URIs are all in this form."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key
