"""The SageMaker training container's contract, as the script sees it.

A script-mode training script reads its inputs from the ``/opt/ml`` tree (config files, channel
directories), its hyperparameters from ``--key value`` arguments and its surroundings from the
``SM_*`` environment, and writes its model to ``model/``; the open-source ``sagemaker-training``
toolkit builds all of that. This module builds the same on the host, under a job's work
directory (:class:`Layout`) instead of ``/opt/ml``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .job import JobSpec
from .job_log import JobLog

__all__ = ["CURRENT_HOST", "Layout", "to_cmd_args", "training_env", "write_config"]

CURRENT_HOST = "algo-1"
_GROUP_NAME = "homogeneousCluster"


@dataclass
class Layout:
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


def to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
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


def write_config(job: JobSpec, layout: Layout, log: JobLog) -> None:
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


def _resource_config(job: JobSpec) -> dict[str, Any]:
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


def training_env(job: JobSpec, layout: Layout, args: list[str]) -> dict[str, str]:
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
