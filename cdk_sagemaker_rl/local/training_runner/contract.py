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

from .job import Host, JobSpec
from .job_log import JobLog

__all__ = [
    "Layout",
    "host_address",
    "host_layouts",
    "to_cmd_args",
    "training_env",
    "write_config",
]


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


def host_layouts(job: JobSpec, base: Path) -> list[Layout]:
    """One ``/opt/ml`` tree per host: ``base`` itself for one host (as it always was), else
    ``base/algo-k`` for each, since every SageMaker host has a tree of its own."""
    hosts = job.hosts
    if len(hosts) == 1:
        return [Layout(base)]
    return [Layout(base / host.name) for host in hosts]


def host_address(host: Host) -> str:
    """``algo-k`` on ``127.0.0.(k+1)``: every emulated host has a loopback address of its own."""
    return f"127.0.0.{int(host.name.rsplit('-', 1)[1]) + 1}"


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


def write_config(job: JobSpec, layout: Layout, log: JobLog, host: Host | None = None) -> None:
    host = host or job.hosts[0]
    for name, content in (
        ("hyperparameters.json", job.raw_hyperparameters),
        ("resourceconfig.json", _resource_config(job, host)),
        ("inputdataconfig.json", {c.name: c.config for c in job.channels_for(host)}),
    ):
        (layout.config_dir / name).write_text(json.dumps(content, indent=2, sort_keys=True))


def _resource_config(job: JobSpec, host: Host) -> dict[str, Any]:
    hosts = job.hosts
    groups: dict[str, dict[str, Any]] = {}
    for member in hosts:
        group = groups.setdefault(
            member.group,
            {
                "instance_group_name": member.group,
                "instance_type": member.instance_type,
                "hosts": [],
            },
        )
        group["hosts"].append(member.name)
    return {
        "current_host": host.name,
        "current_instance_type": host.instance_type,
        "current_group_name": host.group,
        "hosts": [h.name for h in hosts],
        "instance_groups": list(groups.values()),
        "network_interface_name": "eth0" if len(hosts) == 1 else "lo",
    }


def training_env(
    job: JobSpec, layout: Layout, args: list[str], host: Host | None = None
) -> dict[str, str]:
    """The ``SM_*`` variables (and ``SM_TRAINING_ENV``, all of them as one JSON document)."""
    hosts = job.hosts
    host = host or hosts[0]
    program = job.program or ""
    channel_dirs = {c.name: str(layout.data_dir / c.name) for c in job.channels_for(host)}
    hps = job.user_hyperparameters
    framework_module = job.environment.get("SAGEMAKER_TRAINING_MODULE")
    summary: dict[str, Any] = {
        "additional_framework_parameters": {},
        "channel_input_dirs": channel_dirs,
        "current_host": host.name,
        "current_instance_group": host.group,
        "current_instance_type": host.instance_type,
        "framework_module": framework_module,
        "hosts": [h.name for h in hosts],
        "hyperparameters": hps,
        "input_config_dir": str(layout.config_dir),
        "input_data_config": {c.name: c.config for c in job.channels_for(host)},
        "input_dir": str(layout.input_dir),
        "is_master": host.name == hosts[0].name,
        "job_name": job.name,
        "log_level": job.log_level,
        "master_hostname": hosts[0].name,
        "model_dir": str(layout.model_dir),
        "module_dir": job.submit_directory,
        "module_name": program.removesuffix(".py"),
        "network_interface_name": "eth0" if len(hosts) == 1 else "lo",
        # The hosts share this machine's cores: each gets its share, as each instance has its own.
        "num_cpus": max(1, _cpu_count() // len(hosts)),
        "num_gpus": 0,
        "output_data_dir": str(layout.output_data_dir),
        "output_dir": str(layout.output_dir),
        "output_intermediate_dir": str(layout.intermediate_dir),
        "resource_config": _resource_config(job, host),
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
