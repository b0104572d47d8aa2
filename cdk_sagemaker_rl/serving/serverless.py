"""Serverless inference: an endpoint without instances, for environments with little traffic.

A dev stack that answers a few requests a day should not pay for an instance around the clock.
SageMaker's serverless variants scale with requests (to zero between them) within a memory size
and a concurrency; what SageMaker refuses with them (GPUs, data capture, rolling updates,
instance autoscaling, an instance volume) is refused here at synth, by
:func:`~.options.endpoint_options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._limits import limit
from ..errors import invalid
from ._checks import bounded_int, limited_int

_SEE = "README.md#serverless-inference"


@dataclass(frozen=True)
class ServerlessInference:
    """A serverless variant: ``memory_size_in_mb`` (1024-6144 in 1 GB steps, default 2048),
    ``max_concurrency`` (1-200, default 5) and, optionally, ``provisioned_concurrency`` kept warm
    (1 to ``max_concurrency``)."""

    memory_size_in_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None

    def __post_init__(self) -> None:
        sizes = [int(s) for s in limit("serving", "serverless_memory_mb")]
        if isinstance(self.memory_size_in_mb, bool) or self.memory_size_in_mb not in sizes:
            raise invalid(
                "ServerlessInference memory_size_in_mb",
                self.memory_size_in_mb,
                "one of SageMaker's sizes: " + ", ".join(str(s) for s in sizes),
                see=_SEE,
            )
        limited_int(
            self.max_concurrency,
            "ServerlessInference max_concurrency",
            "serverless_max_concurrency",
            _SEE,
        )
        if self.provisioned_concurrency is not None:
            bounded_int(
                self.provisioned_concurrency,
                "ServerlessInference provisioned_concurrency",
                1,
                self.max_concurrency,
                _SEE,
            )

    def request(self) -> dict[str, Any]:
        """The variant's ``ServerlessConfig``."""
        config: dict[str, Any] = {
            "MemorySizeInMB": self.memory_size_in_mb,
            "MaxConcurrency": self.max_concurrency,
        }
        if self.provisioned_concurrency is not None:
            config["ProvisionedConcurrency"] = self.provisioned_concurrency
        return config
