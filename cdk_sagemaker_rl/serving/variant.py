"""The production variant and endpoint config requests, written once for both serving modes.

CloudFormation's ``AWS::SageMaker::EndpointConfig`` properties have the shape of the
CreateEndpointConfig request, so :mod:`.cloudformation` and :mod:`.workflow` both send what these
functions return (validated against botocore's shapes by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .data_capture import BoundDataCapture
from .serverless import ServerlessInference


@dataclass(frozen=True)
class VariantSettings:
    """What one variant runs on: instances (type, count, volume) or a serverless config."""

    variant_name: str
    instance_type: str | None
    initial_instance_count: int
    serverless: ServerlessInference | None = None
    volume_size_gb: int | None = None
    model_data_download_timeout_seconds: int | None = None
    container_startup_health_check_timeout_seconds: int | None = None

    def request(self, model_name: dict[str, Any]) -> dict[str, Any]:
        """The ``ProductionVariant``; ``model_name`` is ``{"ModelName": ...}`` or a JSONPath."""
        variant: dict[str, Any] = {"VariantName": self.variant_name, **model_name}
        if self.serverless is not None:
            variant["ServerlessConfig"] = self.serverless.request()
        else:
            variant["InitialInstanceCount"] = self.initial_instance_count
            variant["InstanceType"] = self.instance_type
        variant["InitialVariantWeight"] = 1
        optional = {
            "VolumeSizeInGB": self.volume_size_gb,
            "ModelDataDownloadTimeoutInSeconds": self.model_data_download_timeout_seconds,
            "ContainerStartupHealthCheckTimeoutInSeconds": (
                self.container_startup_health_check_timeout_seconds
            ),
        }
        variant.update({k: v for k, v in optional.items() if v is not None})
        return variant


def endpoint_config_extras(capture: BoundDataCapture | None) -> dict[str, Any]:
    """What an endpoint config adds to its variants: data capture."""
    return {"DataCaptureConfig": capture.request()} if capture is not None else {}
