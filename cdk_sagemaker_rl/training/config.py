"""What one training job is, checked: instance, budget, code settings, metrics, tags.

A :class:`TrainingConfig` holds the request settings that do not depend on where the job runs
(bucket, role, image, network), so that the same checked settings feed the estimator facade and a
:class:`~cdk_sagemaker_rl.training.step.RLTrainingStep` in a user's own state machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from aws_cdk import Duration, Size

from .._limits import limit
from ..errors import invalid
from ..images import BoundImage, RLToolkit
from ..instance_types import validate_training_instance_type
from . import arguments
from .instance_groups import InstanceGroup, refuse_with_groups
from .instance_groups import instance_groups as check_instance_groups

DEFAULT_VOLUME_SIZE_GB = 30
DEFAULT_MAX_RUN_SECONDS = 24 * 3600
DEFAULT_CONTAINER_LOG_LEVEL = 20

#: The toolkits' metrics, as the SDK defined them (custom images get none).
DEFAULT_METRIC_DEFINITIONS: Mapping[RLToolkit, tuple[tuple[str, str], ...]] = {
    RLToolkit.COACH: (
        ("reward-training", "^Training>.*Total reward=(.*?),"),
        ("reward-testing", "^Testing>.*Total reward=(.*?),"),
    ),
    RLToolkit.RAY: (
        ("episode_reward_mean", "episode_reward_mean: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)"),
        ("episode_reward_max", "episode_reward_max: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)"),
    ),
}


class InputMode(str, Enum):  # noqa: UP042 - str() of a member stays as it was released
    """How the training container receives its channels (CreateTrainingJob TrainingInputMode)."""

    FILE = "File"
    PIPE = "Pipe"
    FAST_FILE = "FastFile"

    @classmethod
    def parse(cls, value: InputMode | str) -> InputMode:
        if isinstance(value, InputMode):
            return value
        for mode in cls:
            if str(value).lower() == mode.value.lower():
                return mode
        raise invalid("input_mode", value, [m.value for m in cls])


class TrainingConfig:
    """The checked settings of a training job (SDK v2 argument names; see the README table).

    Defaults follow the SDK: 30 GB volume, 24 h ``max_run``, log level 20, the Debugger hook and
    profiler on. With ``use_spot_instances`` and no ``max_wait``, ``max_wait`` = ``max_run``
    (SageMaker requires it; it means "no extra wait for spot capacity").
    """

    def __init__(
        self,
        *,
        instance_type: str | None = None,
        instance_count: int | None = None,
        instance_groups: Sequence[InstanceGroup] | None = None,
        volume_size: int | Size | None = None,
        max_run: int | Duration | None = None,
        input_mode: InputMode | str = InputMode.FILE,
        hyperparameters: Mapping[str, Any] | None = None,
        metric_definitions: Sequence[Mapping[str, str]] | None = None,
        environment: Mapping[str, str] | None = None,
        container_log_level: int = DEFAULT_CONTAINER_LOG_LEVEL,
        use_spot_instances: bool = False,
        max_wait: int | Duration | None = None,
        checkpoint_local_path: str | None = None,
        max_retry_attempts: int | None = None,
        enable_network_isolation: bool = False,
        encrypt_inter_container_traffic: bool = False,
        debugger_hook_config: bool = True,
        disable_profiler: bool = False,
        tags: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        self.instance_groups: tuple[InstanceGroup, ...] = ()
        if instance_groups is not None:
            refuse_with_groups(
                {"train_instance_type": instance_type, "train_instance_count": instance_count}
            )
            self.instance_groups = check_instance_groups(instance_groups)
            # The first group's type stands for the job where one type is asked for (the image's
            # processor, the training fingerprint); the request sends the groups instead.
            instance_type = self.instance_groups[0].instance_type
        if instance_type is None:
            raise invalid(
                "train_instance_type",
                None,
                "a SageMaker training instance type such as ml.m5.large, or instance_groups",
            )
        self.instance_type = validate_training_instance_type(instance_type, "train_instance_type")
        self.instance_count = (
            sum(group.instance_count for group in self.instance_groups)
            if self.instance_groups
            else arguments.integer(
                1 if instance_count is None else instance_count, "train_instance_count", 1
            )
        )
        self.volume_size_gb = arguments.volume_gb(volume_size, DEFAULT_VOLUME_SIZE_GB)
        most = limit("max_run_seconds", "max")
        self.max_run_seconds = arguments.seconds(max_run, "train_max_run", DEFAULT_MAX_RUN_SECONDS)
        self.max_run_given = max_run is not None
        if not 1 <= self.max_run_seconds <= most:
            raise invalid(
                "train_max_run", max_run, f"1 to {most} seconds (SageMaker's 28-day MaxRuntime)"
            )
        self.use_spot_instances = arguments.boolean(use_spot_instances, "use_spot_instances")
        self.max_wait_seconds: int | None = None
        self.max_wait_given = max_wait is not None
        if use_spot_instances:
            self.max_wait_seconds = arguments.seconds(max_wait, "max_wait", self.max_run_seconds)
            if not self.max_run_seconds <= self.max_wait_seconds <= most:
                raise invalid(
                    "max_wait",
                    max_wait,
                    f"train_max_run ({self.max_run_seconds}) to {most} seconds",
                )
        elif max_wait is not None:
            raise invalid("max_wait", max_wait, "None unless use_spot_instances=True")
        self.input_mode = InputMode.parse(input_mode)
        self.hyperparameters = arguments.hyperparameters(hyperparameters)
        self.given_metric_definitions = arguments.metric_definitions(metric_definitions)
        self.environment = arguments.environment(environment)
        self.container_log_level = arguments.integer(container_log_level, "container_log_level", 0)
        if checkpoint_local_path is not None and not isinstance(checkpoint_local_path, str):
            raise invalid("checkpoint_local_path", checkpoint_local_path, "a path string")
        self.checkpoint_local_path = checkpoint_local_path
        self.max_retry_attempts = (
            None
            if max_retry_attempts is None
            else arguments.integer(
                max_retry_attempts,
                "max_retry_attempts",
                limit("max_retry_attempts", "min"),
                limit("max_retry_attempts", "max"),
            )
        )
        self.enable_network_isolation = arguments.boolean(
            enable_network_isolation, "enable_network_isolation"
        )
        self.encrypt_inter_container_traffic = arguments.boolean(
            encrypt_inter_container_traffic, "encrypt_inter_container_traffic"
        )
        self.debugger_hook_config = arguments.boolean(debugger_hook_config, "debugger_hook_config")
        self.disable_profiler = arguments.boolean(disable_profiler, "disable_profiler")
        self.tags = arguments.tags(tags)

    @property
    def job_window_seconds(self) -> int:
        """How long a job may take from start to end: MaxWait with spot, else MaxRuntime."""
        return self.max_wait_seconds or self.max_run_seconds

    def resource_config(self) -> dict[str, Any]:
        """``ResourceConfig``: one instance type and count, or the instance groups."""
        if self.instance_groups:
            return {
                "InstanceGroups": [group.request() for group in self.instance_groups],
                "VolumeSizeInGB": self.volume_size_gb,
            }
        return {
            "InstanceCount": self.instance_count,
            "InstanceType": self.instance_type,
            "VolumeSizeInGB": self.volume_size_gb,
        }

    def cap_default_max_run(self, seconds: int) -> bool:
        """Lower the SDK's default run time to what a deploy can wait for; False if it was given."""
        if self.max_run_given or self.max_run_seconds <= seconds:
            return False
        self.max_run_seconds = seconds
        if self.max_wait_seconds is not None and not self.max_wait_given:
            # max_wait defaults to max_run (no extra wait for spot capacity): it follows.
            self.max_wait_seconds = seconds
        return True

    def metric_definitions(self, image: BoundImage) -> list[dict[str, str]]:
        """The given definitions, else the toolkit's (none for custom images, as in the SDK)."""
        if self.given_metric_definitions is not None:
            return [dict(m) for m in self.given_metric_definitions]
        if image.is_custom or image.toolkit is None:
            return []
        return [
            {"Name": name, "Regex": regex}
            for name, regex in DEFAULT_METRIC_DEFINITIONS.get(image.toolkit, ())
        ]
