"""Plumbing shared by the custom-resource handlers of cdk-sagemaker-rl.

CloudFormation waits (up to an hour) for a custom resource to PUT its outcome to a presigned
S3 URL. Whatever happens inside a handler, that PUT has to be sent exactly once, or a deploy,
a rollback or a destroy hangs. This module owns that guarantee, so that the handlers only
describe their work:

* :class:`CustomResourceRequest`: the parsed CloudFormation event.
* :class:`Outcome`: what a handler decided (status, physical id, data, reason).
* :func:`run_custom_resource`: parses, dispatches, turns exceptions into FAILED responses,
  never lets a Delete fail, answers before the Lambda timeout and PUTs the response.
* :func:`put_json`: the HTTP PUT (stdlib ``urllib``) with a few retries on network errors; the
  wait-condition signal of ``training_run.signal`` uses it too.

What it logs goes through the logger every bundled handler uses, ``_shared.json_logger``.
Only the standard library and boto3/botocore (both in the Lambda Python runtime) are used.
"""

from __future__ import annotations

import functools
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from _shared.json_logger import JsonLogger

SUCCESS: Final = "SUCCESS"
FAILED: Final = "FAILED"
Status = Literal["SUCCESS", "FAILED"]

#: CloudFormation rejects custom-resource responses larger than this.
MAX_RESPONSE_BYTES: Final = 4096

#: Physical ids of resources whose Create failed start with this. It contains a ':' so that it
#: can never be a SageMaker job name; Delete handlers treat it as "nothing was created".
FAILED_CREATE_PREFIX: Final = "create-failed:"

#: Seconds before the Lambda timeout at which the watchdog answers CloudFormation itself.
TIMEOUT_MARGIN_SECONDS: float = 5.0

#: Attempts and base backoff of :func:`put_json` (module attributes so tests can shorten them).
PUT_ATTEMPTS: int = 3
RETRY_BACKOFF_SECONDS: float = 0.5
PUT_TIMEOUT_SECONDS: float = 10.0


class ResourceError(Exception):
    """A failure whose message is already written for the person reading the stack events.

    Raised by handlers for invalid properties and similar; the message becomes the Reason
    verbatim (other exceptions are prefixed with their type name).
    """


class ResponseDeliveryError(Exception):
    """The HTTP PUT (CloudFormation response or wait-condition signal) could not be delivered."""


def truncate_utf8(text: str, max_bytes: int, marker: str = " [...]") -> str:
    """Cuts ``text`` to at most ``max_bytes`` UTF-8 bytes, ending with ``marker`` when cut.

    CloudFormation limits are in bytes, and cutting a multi-byte character in half would make
    the body invalid UTF-8, hence the decode with ``errors="ignore"``.
    """
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    room = max(max_bytes - len(marker.encode("utf-8")), 0)
    return encoded[:room].decode("utf-8", errors="ignore") + marker[: max_bytes - room]


def put_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    logger: JsonLogger,
    attempts: int | None = None,
    timeout: float | None = None,
) -> int:
    """PUTs ``payload`` as JSON to a presigned URL and returns the HTTP status.

    The Content-Type header is sent empty because CloudFormation presigns its URLs for an
    empty content type (S3 rejects the signature otherwise). Network errors and 5xx answers are
    retried with exponential backoff; a 4xx (expired or malformed URL) is not, since repeating
    it cannot help. Raises :class:`ResponseDeliveryError` when every attempt failed.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http"):
        raise ResponseDeliveryError(f"refusing to PUT to a {scheme or 'scheme-less'} URL")
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    total = attempts if attempts is not None else PUT_ATTEMPTS
    last_error = "no attempt made"
    for attempt in range(1, total + 1):
        request = urllib.request.Request(
            url,
            data=body,
            method="PUT",
            headers={"Content-Type": "", "Content-Length": str(len(body))},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=timeout if timeout is not None else PUT_TIMEOUT_SECONDS
            ) as response:
                status = int(response.status)
            logger.debug("PUT delivered", http_status=status, attempt=attempt)
            return status
        except urllib.error.HTTPError as err:
            last_error = f"HTTP {err.code} {err.reason}"
            err.close()
            if err.code < 500:
                break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            last_error = f"{type(err).__name__}: {err}"
        logger.warning("PUT failed", attempt=attempt, of=total, error=last_error)
        if attempt < total:
            time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise ResponseDeliveryError(f"PUT failed after {total} attempt(s): {last_error}")


@functools.cache
def aws_client(service: str) -> Any:
    """Returns a boto3 client shared by the invocations of this execution environment.

    Created on first use, not at import: a failure at import time (a bad region setting, say)
    would crash the function before it could answer CloudFormation, while inside the handler
    it becomes a FAILED response. Timeouts and attempts are bounded (worst case about a
    minute) so a stuck call ends before the Lambda timeout.
    """
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="cdk-sagemaker-rl",
    )
    return boto3.client(service, config=config)


def is_not_found(err: ClientError) -> bool:
    """True when an AWS error says the named resource does not exist.

    SageMaker answers a missing training job with a ValidationException ("Could not find ...",
    "Requested resource not found"), other services with a ...NotFound / ...DoesNotExist code.
    """
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).lower()
    if code.endswith(("NotFound", "NotFoundException", "DoesNotExist")):
        return True
    return code.startswith("Validation") and ("could not find" in message or "not found" in message)


@dataclass(frozen=True)
class CustomResourceRequest:
    """The fields of a CloudFormation custom-resource event that the handlers use."""

    request_type: str
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None
    properties: Mapping[str, Any]
    old_properties: Mapping[str, Any]

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> CustomResourceRequest:
        """Builds the request; only a missing ResponseURL is fatal (nobody could be answered)."""
        response_url = event.get("ResponseURL")
        if not isinstance(response_url, str) or not response_url:
            raise ValueError("not a CloudFormation custom resource event: no ResponseURL")
        physical = event.get("PhysicalResourceId")
        props = event.get("ResourceProperties")
        old = event.get("OldResourceProperties")
        return cls(
            request_type=str(event.get("RequestType", "")),
            response_url=response_url,
            stack_id=str(event.get("StackId", "")),
            request_id=str(event.get("RequestId", "")),
            logical_resource_id=str(event.get("LogicalResourceId", "")),
            resource_type=str(event.get("ResourceType", "")),
            physical_resource_id=physical if isinstance(physical, str) and physical else None,
            properties=props if isinstance(props, Mapping) else {},
            old_properties=old if isinstance(old, Mapping) else {},
        )

    def required(self, name: str) -> str:
        """A mandatory non-empty string property; a readable ResourceError otherwise."""
        value = self.properties.get(name)
        if not isinstance(value, str) or not value:
            raise ResourceError(
                f"{self.resource_type or 'custom resource'} property {name} "
                f"is required and must be a non-empty string"
            )
        return value

    def optional(self, name: str) -> str | None:
        """An optional string property (None when absent or empty)."""
        value = self.properties.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ResourceError(f"property {name} must be a string")
        return value

    def fallback_physical_id(self) -> str:
        """The physical id to report when the handler could not decide one.

        Keeps the existing id on Update/Delete (a new id would make CloudFormation believe the
        resource was replaced); on Create a recognisable placeholder, see FAILED_CREATE_PREFIX.
        """
        return self.physical_resource_id or f"{FAILED_CREATE_PREFIX}{self.request_id}"


def is_failed_create_placeholder(physical_id: str | None) -> bool:
    """True for the physical id reported by a Create that failed (nothing exists to delete)."""
    return physical_id is not None and physical_id.startswith(FAILED_CREATE_PREFIX)


@dataclass(frozen=True)
class Outcome:
    """What a handler decided; :func:`run_custom_resource` turns it into the response body."""

    physical_resource_id: str
    data: Mapping[str, str] = field(default_factory=dict)
    status: Status = SUCCESS
    reason: str = ""

    @classmethod
    def failed(cls, physical_resource_id: str, reason: str) -> Outcome:
        return cls(physical_resource_id=physical_resource_id, status=FAILED, reason=reason)


Operation = Callable[[CustomResourceRequest], Outcome]


def _redacted(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Properties safe to log: presigned URLs (anyone holding one can signal) are hidden."""
    return {
        key: "<redacted>" if key.endswith("Url") and isinstance(value, str) else value
        for key, value in properties.items()
        if key != "ServiceToken"
    }


def response_body(
    request: CustomResourceRequest, outcome: Outcome, context: object | None = None
) -> dict[str, Any]:
    """The JSON document CloudFormation expects, fitted into its 4 KB limit.

    A FAILED reason points to this invocation's log stream, since the stack event is usually
    where people start looking; that pointer is kept whole when the reason is shortened. Only
    the reason is shortened: data and ids must stay exact.
    """
    suffix = ""
    if outcome.status == FAILED:
        group = getattr(context, "log_group_name", None)
        stream = getattr(context, "log_stream_name", None)
        if group and stream:
            suffix = f" (handler logs: CloudWatch Logs {group} {stream})"
    body: dict[str, Any] = {
        "Status": outcome.status,
        "Reason": suffix.strip(),
        "PhysicalResourceId": outcome.physical_resource_id,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "Data": dict(outcome.data),
    }

    # json.dumps escapes quotes, newlines and non-ASCII (up to 6 bytes for one character), so
    # the room for the reason is searched for on the encoded body instead of estimated.
    def fits(limit: int) -> bool:
        body["Reason"] = (truncate_utf8(outcome.reason, limit) + suffix).strip()
        return _encoded_size(body) <= MAX_RESPONSE_BYTES

    low, high = 0, len(outcome.reason.encode("utf-8"))
    if fits(high):
        return body
    while low < high:  # the largest limit that fits, in about a dozen tries
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    fits(low)
    return body


def _encoded_size(document: Mapping[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode("utf-8"))


class _Responder:
    """Sends the CloudFormation response at most once, from the handler or the watchdog."""

    def __init__(
        self, request: CustomResourceRequest, context: object | None, logger: JsonLogger
    ) -> None:
        self._request = request
        self._context = context
        self._logger = logger
        self._lock = threading.Lock()
        self.sent: dict[str, Any] | None = None

    def respond(
        self, outcome: Outcome, *, attempts: int | None = None, timeout: float | None = None
    ) -> dict[str, Any] | None:
        """PUTs the response unless one was sent already; returns the body sent (or None)."""
        with self._lock:
            if self.sent is not None:
                self._logger.warning(
                    "response already sent; dropping a later outcome", dropped_status=outcome.status
                )
                return None
            body = response_body(self._request, outcome, self._context)
            self.sent = body
        log_fields = {
            "status": body["Status"],
            "physical_resource_id": body["PhysicalResourceId"],
            "reason": body["Reason"] or None,
            "data": body["Data"] or None,
        }
        try:
            http_status = put_json(
                self._request.response_url,
                body,
                logger=self._logger,
                attempts=attempts,
                timeout=timeout,
            )
        except ResponseDeliveryError as err:
            # Raising would make Lambda retry the whole invocation and redo the work (a second
            # training); the best left to do is to say loudly that CloudFormation will wait.
            self._logger.error(
                "could not deliver the CloudFormation response; the stack "
                "operation will wait for its timeout",
                error=str(err),
                **log_fields,
            )
            return body
        self._logger.info("CloudFormation response sent", http_status=http_status, **log_fields)
        return body


def _start_watchdog(
    request: CustomResourceRequest,
    context: object | None,
    responder: _Responder,
    logger: JsonLogger,
) -> threading.Timer | None:
    """Answers CloudFormation shortly before the Lambda timeout if the handler is still busy.

    A timed-out invocation never reaches the handler's own response; without this, the stack
    would wait an hour. Delete still answers SUCCESS so destroys and rollbacks move on.
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    delay = float(remaining()) / 1000.0 - TIMEOUT_MARGIN_SECONDS
    if delay <= 0:
        return None

    def on_timeout() -> None:
        logger.error(
            "handler about to time out; answering CloudFormation now",
            request_type=request.request_type,
        )
        if request.request_type == "Delete":
            outcome = Outcome(request.fallback_physical_id())
        else:
            outcome = Outcome.failed(
                request.fallback_physical_id(),
                f"{request.request_type} of {request.logical_resource_id} did not finish "
                "before the Lambda timeout",
            )
        responder.respond(outcome, attempts=1, timeout=max(TIMEOUT_MARGIN_SECONDS - 1.0, 1.0))

    timer = threading.Timer(delay, on_timeout)
    timer.daemon = True
    timer.start()
    return timer


def _describe_error(err: Exception) -> str:
    """A one-line reason for the stack events: ResourceError verbatim, others with their type."""
    if isinstance(err, ResourceError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def run_custom_resource(
    event: Mapping[str, Any],
    context: object | None,
    *,
    logger: JsonLogger,
    create: Operation,
    update: Operation,
    delete: Operation,
) -> dict[str, Any] | None:
    """Runs one custom-resource request end to end and returns the response body sent.

    Parsing, work and response are separate steps: the operation only returns an
    :class:`Outcome` (or raises), and this function guarantees the single PUT. An exception
    in Create/Update becomes FAILED with a readable reason; on Delete it is logged and answered
    with SUCCESS, because a Delete that fails blocks rollbacks and destroys for good.
    """
    logger.inject_lambda_context(context)
    request = CustomResourceRequest.parse(event)
    logger.append_keys(
        request_type=request.request_type,
        logical_resource_id=request.logical_resource_id,
        stack_id=request.stack_id,
    )
    logger.info(
        "custom resource request",
        resource_type=request.resource_type,
        physical_resource_id=request.physical_resource_id,
        properties=_redacted(request.properties),
    )
    responder = _Responder(request, context, logger)
    timer = _start_watchdog(request, context, responder, logger)
    operations = {"Create": create, "Update": update, "Delete": delete}
    try:
        operation = operations.get(request.request_type)
        if operation is None:
            raise ResourceError(f"unsupported RequestType {request.request_type!r}")
        outcome = operation(request)
    except Exception as err:
        if request.request_type == "Delete":
            logger.exception("Delete failed; answering SUCCESS so the stack can move on")
            outcome = Outcome(request.fallback_physical_id())
        else:
            logger.exception(f"{request.request_type or 'request'} failed")
            outcome = Outcome.failed(request.fallback_physical_id(), _describe_error(err))
    finally:
        if timer is not None:
            # If the watchdog already fired, wait for its PUT: once the handler returns, Lambda
            # freezes the environment and a PUT still in flight would never arrive.
            timer.cancel()
            timer.join()
    responder.respond(outcome)
    return responder.sent
