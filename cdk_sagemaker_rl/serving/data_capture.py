"""Data capture: the served policy's requests and responses, written to S3 as JSON Lines.

For an RL policy this is its experience log in production: the observations it was shown and the
actions it chose. :attr:`~.endpoint.RLEndpoint.data_capture_uri` names where SageMaker writes them
(``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``), so that a later
``fit(inputs={"experience": endpoint.data_capture_uri})`` can train on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from .._iam import acknowledge_wildcard
from .._kms import KmsKeyRef, kms_key
from .._s3 import S3Location, s3_location
from ..errors import invalid
from ._checks import limited_int

_SEE = "README.md#data-capture"
JSON_CONTENT_TYPES = ("application/json",)


@dataclass(frozen=True)
class DataCapture:
    """Capture ``sampling_percentage`` (0-100, default 100) of the requests and responses.

    ``destination`` is an ``s3.IBucket`` (with ``prefix``, default ``data-capture``) or an
    ``s3://bucket/prefix`` URI; ``None`` means the estimator's artifact bucket (an ``RLEndpoint``
    built on its own needs one). ``kms_key`` encrypts the captured objects.
    """

    destination: s3.IBucket | str | None = None
    prefix: str | None = None
    sampling_percentage: int = 100
    kms_key: kms.IKey | str | None = None
    capture_requests: bool = True
    capture_responses: bool = True

    def __post_init__(self) -> None:
        limited_int(
            self.sampling_percentage,
            "DataCapture sampling_percentage",
            "capture_sampling_percent",
            _SEE,
        )
        for name in ("capture_requests", "capture_responses"):
            if not isinstance(getattr(self, name), bool):
                raise invalid(f"DataCapture {name}", getattr(self, name), "True or False", see=_SEE)
        if not (self.capture_requests or self.capture_responses):
            raise invalid(
                "DataCapture capture_requests/capture_responses",
                False,
                "at least one of them True (SageMaker captures Input, Output or both)",
                see=_SEE,
            )


@dataclass(frozen=True)
class BoundDataCapture:
    """A :class:`DataCapture` resolved in a stack: its location and key."""

    location: S3Location
    key: KmsKeyRef | None
    settings: DataCapture

    def request(self) -> dict[str, Any]:
        """The endpoint config's ``DataCaptureConfig``."""
        options = []
        if self.settings.capture_requests:
            options.append({"CaptureMode": "Input"})
        if self.settings.capture_responses:
            options.append({"CaptureMode": "Output"})
        config: dict[str, Any] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": self.settings.sampling_percentage,
            "DestinationS3Uri": self.location.uri,
            "CaptureOptions": options,
            # Observations and actions are JSON: captured as JSON, not base64 blobs.
            "CaptureContentTypeHeader": {"JsonContentTypes": list(JSON_CONTENT_TYPES)},
        }
        if self.key is not None:
            config["KmsKeyId"] = self.key.request_value
        return config

    def uri_for(self, endpoint_name: str, variant_name: str) -> str:
        """Where SageMaker writes this endpoint variant's capture files."""
        return f"{self.location.uri.rstrip('/')}/{endpoint_name}/{variant_name}/"

    def grant_write(self, role: iam.IRole, endpoint_name: str) -> None:
        """SageMaker writes capture files as the model's role: only under this endpoint."""
        objects = self.location.objects_arn(f"{endpoint_name}/*")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteDataCapture", actions=["s3:PutObject"], resources=[objects]
            )
        )
        acknowledge_wildcard(
            role,
            objects,
            "SageMaker names the capture files (<endpoint>/<variant>/yyyy/mm/dd/hh/<id>.jsonl) "
            "at run time; the prefix is this endpoint's own.",
        )
        key_arn = self.key.key_arn if self.key is not None else None
        bucket_key = self.location.encryption_key
        for arn in {a for a in (key_arn, bucket_key.key_arn if bucket_key else None) if a}:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="EncryptDataCapture" if arn == key_arn else "EncryptDataCaptureBucket",
                    actions=["kms:Encrypt", "kms:GenerateDataKey"],
                    resources=[arn],
                )
            )


def bind_data_capture(
    scope: IConstruct, capture: object, default_bucket: s3.IBucket | None
) -> BoundDataCapture | None:
    """``deploy(data_capture=...)`` resolved: the S3 location (``default_bucket`` when none was
    given) and the key, each checked."""
    if capture is None:
        return None
    if not isinstance(capture, DataCapture):
        raise invalid("data_capture", capture, "a DataCapture(...) or None", see=_SEE)
    destination = capture.destination
    prefix = capture.prefix
    if destination is None:
        if default_bucket is None:
            raise invalid(
                "DataCapture destination",
                None,
                "an s3.IBucket or an s3://bucket/prefix URI (an RLEndpoint has no artifact "
                "bucket to default to)",
                see=_SEE,
            )
        destination = default_bucket
    if not isinstance(destination, str) and prefix is None:
        prefix = "data-capture"
    if isinstance(destination, str) and not destination.startswith("s3://"):
        raise invalid(
            "DataCapture destination",
            destination,
            "an s3://bucket/prefix URI or an s3.IBucket: SageMaker captures to S3 only",
            see=_SEE,
        )
    location = s3_location(destination, prefix, "DataCapture destination")
    assert location is not None
    key = kms_key(scope, capture.kms_key, "DataCapture kms_key")
    return BoundDataCapture(location, key, capture)
