"""Distributed RL: a Ray cluster across a training job's instances.

``ray_cluster`` (what the estimator wires: the launcher in the bundle, the environment it reads)
and ``launcher`` (the script that runs inside the container, standard library only). Names are
imported on first use, so that importing the launcher module never starts the jsii runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ray_cluster import LAUNCHER_NAME as LAUNCHER_NAME
    from .ray_cluster import RayCluster as RayCluster
    from .ray_cluster import launcher_files as launcher_files
    from .ray_cluster import ray_cluster as ray_cluster

_EXPORTS = ("LAUNCHER_NAME", "RayCluster", "launcher_files", "ray_cluster")

__all__ = ["LAUNCHER_NAME", "RayCluster", "launcher_files", "ray_cluster"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(".ray_cluster", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
