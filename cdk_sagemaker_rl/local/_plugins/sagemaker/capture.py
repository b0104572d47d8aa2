"""Data capture: an endpoint's requests and responses written to S3 as SageMaker writes them.

With ``DataCaptureConfig.EnableCapture`` an endpoint samples ``InitialSamplingPercentage`` of its
invocations and writes one JSON Lines record per invocation under
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-fff>-<uuid>.jsonl``, as the model's
execution role (that role needs ``s3:PutObject`` there, and the IAM audit checks it), encrypted
with ``KmsKeyId`` when one is given. The record is SageMaker's: ``captureData.endpointInput`` and
``endpointOutput`` (``observedContentType``, ``mode``, ``data``, ``encoding``: JSON or CSV for the
content types the config lists in ``CaptureContentTypeHeader``, BASE64 otherwise),
``eventMetadata`` (``eventId``, ``inferenceTime``, ``inferenceId`` when the caller gave one) and
``eventVersion``.

SageMaker buffers records and writes a file every few seconds, not one per request; so does this
module: records wait in memory and a writer thread flushes them at most every
:data:`FLUSH_INTERVAL` seconds, and at once when the endpoint is updated or deleted or the
emulator stops, so that nothing captured is lost. A write that fails is logged; the invocation it
came from has been answered long before and never fails because of it.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..runtime import LOG
from .role_s3 import s3_as
from .variants import flag

__all__ = ["FLUSH_INTERVAL", "CaptureSettings", "flush", "record", "stop"]

#: Seconds a captured record may wait in memory before its file is written.
FLUSH_INTERVAL = 2.0


@dataclass(frozen=True)
class CaptureSettings:
    """One endpoint deployment's capture settings, with the role that writes the files."""

    destination: str
    sampling_percentage: float
    capture_input: bool
    capture_output: bool
    json_types: frozenset[str]
    csv_types: frozenset[str]
    kms_key_id: str | None
    role_arn: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, role_arn: str) -> CaptureSettings | None:
        """The settings of an endpoint config's ``DataCaptureConfig``; None when it captures
        nothing."""
        if not config or not flag(config.get("EnableCapture", False)):
            return None
        modes = {str(o.get("CaptureMode", "")) for o in config.get("CaptureOptions") or []}
        if not modes:
            modes = {"InputAndOutput"}
        headers = config.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=str(config.get("DestinationS3Uri", "")).rstrip("/"),
            sampling_percentage=float(config.get("InitialSamplingPercentage", 0)),
            capture_input=bool(modes & {"Input", "InputAndOutput"}),
            capture_output=bool(modes & {"Output", "InputAndOutput"}),
            json_types=frozenset(_media(t) for t in headers.get("JsonContentTypes") or []),
            csv_types=frozenset(_media(t) for t in headers.get("CsvContentTypes") or []),
            kms_key_id=str(config["KmsKeyId"]) if config.get("KmsKeyId") else None,
            role_arn=role_arn,
        )

    def sampled(self) -> bool:
        """Whether this invocation is captured (``InitialSamplingPercentage`` of them are)."""
        return self.sampling_percentage >= 100 or random.uniform(0, 100) < self.sampling_percentage

    def encode(self, data: bytes, content_type: str, mode: str) -> dict[str, str]:
        media = _media(content_type)
        if media in self.json_types or media in self.csv_types:
            text, encoding = (
                data.decode("utf-8", "replace"),
                ("JSON" if media in self.json_types else "CSV"),
            )
        else:
            text, encoding = base64.b64encode(data).decode("ascii"), "BASE64"
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": text,
            "encoding": encoding,
        }


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class _Stream:
    """Where a group of records goes: one file per flush."""

    settings: CaptureSettings
    endpoint_name: str
    variant_name: str


_buffers: dict[_Stream, list[tuple[datetime, str]]] = {}
_lock = threading.Lock()
#: Serialises flushes: the writer thread and an update, delete or stop may flush at once.
_flush_lock = threading.Lock()
_wake = threading.Event()
_stopping = threading.Event()
_writer: threading.Thread | None = None


def record(
    settings: CaptureSettings,
    endpoint_name: str,
    variant_name: str,
    request: tuple[bytes, str],
    response: tuple[bytes, str],
    inference_id: str | None = None,
) -> None:
    """Capture one invocation (``(body, content type)`` each way), if it is sampled."""
    if not settings.sampled():
        return
    now = datetime.now(UTC)
    data: dict[str, Any] = {}
    if settings.capture_input:
        data["endpointInput"] = settings.encode(*request, "INPUT")
    if settings.capture_output:
        data["endpointOutput"] = settings.encode(*response, "OUTPUT")
    metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id:
        metadata["inferenceId"] = inference_id
    line = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})
    global _writer
    with _lock:
        _buffers.setdefault(_Stream(settings, endpoint_name, variant_name), []).append((now, line))
        if _writer is None or not _writer.is_alive():
            _stopping.clear()
            _writer = threading.Thread(target=_write_periodically, name="data-capture", daemon=True)
            _writer.start()


def _write_periodically() -> None:
    while not _stopping.is_set():
        _wake.wait(FLUSH_INTERVAL)
        _wake.clear()
        flush()


def flush(endpoint_name: str | None = None) -> None:
    """Write the buffered records now: all of them, or one endpoint's."""
    with _flush_lock:
        with _lock:
            streams = [s for s in _buffers if endpoint_name in (None, s.endpoint_name)]
            batches = [(stream, _buffers.pop(stream)) for stream in streams]
        for stream, lines in batches:
            _write(stream, lines)


def _write(stream: _Stream, lines: list[tuple[datetime, str]]) -> None:
    settings = stream.settings
    first = lines[0][0]
    bucket, _, prefix = settings.destination.removeprefix("s3://").partition("/")
    key = "/".join(
        part
        for part in (
            prefix,
            stream.endpoint_name,
            stream.variant_name,
            first.strftime("%Y/%m/%d/%H"),
            f"{first.strftime('%M-%S')}-{first.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl",
        )
        if part
    )
    extra: dict[str, str] = {}
    if settings.kms_key_id:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id}
    body = "".join(line + "\n" for _, line in lines).encode("utf-8")
    try:
        s3_as(settings.role_arn).put_object(Bucket=bucket, Key=key, Body=body, **extra)
    except Exception as exc:
        LOG.warning(
            "endpoint %s: could not write %d captured record(s) to s3://%s/%s: %s",
            stream.endpoint_name,
            len(lines),
            bucket,
            key,
            exc,
        )
        return
    LOG.info(
        "endpoint %s: %d captured record(s) in s3://%s/%s",
        stream.endpoint_name,
        len(lines),
        bucket,
        key,
    )


def stop() -> None:
    """Write every buffered record and end the writer thread (the emulator stops)."""
    global _writer
    _stopping.set()
    _wake.set()
    with _lock:
        writer, _writer = _writer, None
    if writer is not None:
        writer.join(10)
    flush()
