"""Plugins that turn moto's server into the local-mode emulator (see :mod:`..emulator`).

Each plugin patches one service in this process only; :func:`install_all` applies them once.
"""

from __future__ import annotations

from . import cloudformation, cloudtrail, lambda_exec, recording, sagemaker, stepfunctions

__all__ = ["install_all"]


def install_all() -> None:
    """Apply every plugin (idempotent: a second emulator in the same process reuses them)."""
    lambda_exec.install()
    cloudformation.install()
    stepfunctions.install()
    sagemaker.install()
    recording.install()
    cloudtrail.install()
