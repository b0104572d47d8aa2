"""The predict function: observations in, the policy's actions out, over HTTP-style responses.

It sits in front of the SageMaker endpoint so that callers (a Function URL, API Gateway, or a
direct invoke) get the same ``{"statusCode", "headers", "body"}`` answer whatever went wrong,
with status codes that say whose fault it was: 4xx for the request, 502 for the model, 503 for
capacity, 500 for the rest. It never returns a traceback.

Environment: ``ENDPOINT_NAME`` (required), ``CONTENT_TYPE`` and ``ACCEPT`` (default
``application/json``), ``MAX_PAYLOAD_BYTES`` (default 6 MB, InvokeEndpoint's limit), ``LOG_LEVEL``
(default INFO; the logger is the handlers' shared ``_shared.json_logger``).

Only the standard library and boto3/botocore (in the Lambda Python runtime) are used.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from _shared.json_logger import JsonLogger, exception_fields

DEFAULT_MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
DEFAULT_CONTENT_TYPE: Final = "application/json"
#: Total attempts per InvokeEndpoint, first one included: bounded so a throttled request
#: answers 503 in seconds instead of holding the caller until the Lambda timeout.
MAX_ATTEMPTS: Final = 3
#: Error codes that mean "the endpoint is busy or not ready yet, retry later" (503).
_BUSY_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ModelNotReadyException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
_JSON_HEADERS: Final = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Settings:
    """The function's configuration, read once per execution environment."""

    endpoint_name: str
    content_type: str
    accept: str
    max_payload_bytes: int
    problems: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Reads the environment; a bad MAX_PAYLOAD_BYTES falls back to the default (logged)."""
        problems: list[str] = []
        raw_limit = env.get("MAX_PAYLOAD_BYTES", "").strip()
        limit = DEFAULT_MAX_PAYLOAD_BYTES
        if raw_limit:
            try:
                limit = int(raw_limit)
                if limit <= 0:
                    raise ValueError(raw_limit)
            except ValueError:
                limit = DEFAULT_MAX_PAYLOAD_BYTES
                problems.append(
                    f"MAX_PAYLOAD_BYTES={raw_limit!r} is not a positive integer; "
                    f"using {DEFAULT_MAX_PAYLOAD_BYTES}"
                )
        return cls(
            endpoint_name=env.get("ENDPOINT_NAME", "").strip(),
            content_type=env.get("CONTENT_TYPE", "").strip() or DEFAULT_CONTENT_TYPE,
            accept=env.get("ACCEPT", "").strip() or DEFAULT_CONTENT_TYPE,
            max_payload_bytes=limit,
            problems=tuple(problems),
        )


# Cold start: configuration and the client are built once per execution environment and
# reused by every invocation (client creation costs tens of milliseconds).
SETTINGS: Final = Settings.from_env(os.environ)
logger: Final = JsonLogger("cdk-sagemaker-rl.predict")
for _problem in SETTINGS.problems:
    logger.warning("configuration problem", problem=_problem)
_RUNTIME: Final[Any] = boto3.client(
    "sagemaker-runtime",
    config=Config(
        # Standard mode retries throttling and transient 5xx with jittered exponential backoff
        # and a client-wide retry quota, so a struggling endpoint is not hammered.
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=5,
        # The model has up to 60 s to answer InvokeEndpoint.
        read_timeout=70,
        user_agent_extra="cdk-sagemaker-rl",
    ),
)


class HttpError(Exception):
    """An answer other than 200, raised wherever the problem is found."""

    def __init__(self, status: int, error: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details

    def response(self) -> dict[str, Any]:
        headers = dict(_JSON_HEADERS)
        if self.status == 503:
            headers["Retry-After"] = "1"
        body = {"error": self.error, "message": self.message, **self.details}
        return _response(self.status, body, headers)


def _response(
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": dict(headers or _JSON_HEADERS),
        "body": json.dumps(body, separators=(",", ":")),
    }


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_EXPECTED: Final = (
    'expected {"instances": [observation, ...]}, a list of observations or one observation'
)


def _is_http_event(event: Mapping[str, Any]) -> bool:
    """Function URL and API Gateway events carry the request in ``body``."""
    return "instances" not in event and ("body" in event or "requestContext" in event)


def _http_payload(event: Mapping[str, Any]) -> object:
    """The JSON document in an HTTP event's body (base64-decoded when flagged)."""
    body = event.get("body")
    if isinstance(body, dict | list):
        return body
    if body is None or body == "":
        raise HttpError(400, "BadRequest", f"the request has no body; {_EXPECTED}")
    if not isinstance(body, str):
        raise HttpError(400, "BadRequest", f"the body must be a JSON string; {_EXPECTED}")
    text = body
    if event.get("isBase64Encoded"):
        try:
            text = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise HttpError(
                400,
                "BadRequest",
                "the body is flagged base64 but is not base64 of "
                f"UTF-8 text ({type(err).__name__})",
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise HttpError(
            400,
            "BadRequest",
            f"the body is not valid JSON ({err.msg} at line "
            f"{err.lineno} column {err.colno}); {_EXPECTED}",
        ) from None


def _is_container(value: object) -> bool:
    return isinstance(value, list | dict)


def to_request_document(payload: object) -> dict[str, Any]:
    """Normalises what the caller sent into the model's ``{"instances": [...]}`` document.

    A list of scalars is one observation (``[a, b, c, d]`` is one CartPole state); a list of
    lists/objects is a batch. Mixing both is ambiguous and rejected rather than guessed.
    """
    if isinstance(payload, dict):
        if "instances" not in payload:
            keys = ", ".join(sorted(str(key) for key in payload)[:10]) or "none"
            raise HttpError(400, "BadRequest", f"{_EXPECTED}; got an object with keys: {keys}")
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise HttpError(400, "BadRequest", f'"instances" must be a list; {_EXPECTED}')
        if not instances:
            raise HttpError(
                400, "BadRequest", '"instances" is empty; send at least one observation'
            )
        return payload
    if isinstance(payload, list):
        if not payload:
            raise HttpError(400, "BadRequest", "the list is empty; send at least one observation")
        containers = sum(1 for item in payload if _is_container(item))
        if containers == 0:
            return {"instances": [payload]}
        if containers == len(payload):
            return {"instances": payload}
        raise HttpError(
            400,
            "BadRequest",
            "the list mixes numbers and lists; send either one "
            "observation [x, y, ...] or a batch [[x, y, ...], ...]",
        )
    kind = "null" if payload is None else type(payload).__name__
    raise HttpError(400, "BadRequest", f"{_EXPECTED}; got a JSON {kind}")


def parse_event(event: object) -> dict[str, Any]:
    """The model request document for any supported event shape."""
    if isinstance(event, Mapping) and _is_http_event(event):
        return to_request_document(_http_payload(event))
    return to_request_document(event)


# --------------------------------------------------------------------------------------------
# Work
# --------------------------------------------------------------------------------------------


def _client_error_to_http(err: ClientError) -> HttpError:
    """Maps an InvokeEndpoint error to the answer that tells the caller whose problem it is."""
    response: Mapping[str, Any] = err.response
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    message = str(response.get("Error", {}).get("Message", ""))
    if code == "ModelError":
        # Modeled error members are lifted to the top level of the parsed response.
        return HttpError(
            502,
            "ModelError",
            "the model returned an error",
            model_status=response.get("OriginalStatusCode"),
            model_message=response.get("OriginalMessage") or message,
        )
    if code in _BUSY_CODES:
        return HttpError(
            503,
            "ServiceUnavailable",
            f"the endpoint is busy or not ready ({code}) after {MAX_ATTEMPTS} "
            "attempts; retry later",
        )
    return HttpError(500, "InternalError", f"the model endpoint could not be invoked ({code})")


def invoke(document: Mapping[str, Any]) -> str:
    """Sends the document to the endpoint and returns the ``{"predictions": ...}`` JSON text.

    A model that already answers ``{"predictions": ...}`` is passed through byte for byte;
    any other answer (JSON or text) is wrapped so callers always find ``predictions``.
    """
    if not SETTINGS.endpoint_name:
        raise HttpError(500, "InternalError", "the function has no ENDPOINT_NAME configured")
    body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    if len(body) > SETTINGS.max_payload_bytes:
        raise HttpError(
            413,
            "PayloadTooLarge",
            f"the request is {len(body)} bytes once encoded; the endpoint accepts "
            f"at most {SETTINGS.max_payload_bytes} bytes: send fewer instances",
        )
    try:
        answer = _RUNTIME.invoke_endpoint(
            EndpointName=SETTINGS.endpoint_name,
            ContentType=SETTINGS.content_type,
            Accept=SETTINGS.accept,
            Body=body,
        )
        raw: bytes = answer["Body"].read()
    except ClientError as err:
        raise _client_error_to_http(err) from err
    except BotoCoreError as err:
        raise HttpError(
            500, "InternalError", f"the model endpoint could not be reached ({type(err).__name__})"
        ) from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(502, "ModelError", "the model answered with non-text data") from None
    try:
        result = json.loads(text)
    except json.JSONDecodeError:
        return json.dumps({"predictions": text})
    if isinstance(result, dict) and "predictions" in result:
        return text
    return json.dumps({"predictions": result}, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Handler
# --------------------------------------------------------------------------------------------


def handler(event: object, context: object | None) -> dict[str, Any]:
    """Lambda handler: always an HTTP-style answer, and one JSON log line per request.

    The log line holds the endpoint, the status and the latency, never the payload (it may be
    user data); on a 500 it also holds the exception for the operator. It is at INFO for a 2xx,
    WARNING for a 4xx and ERROR for a 5xx, so ``LOG_LEVEL=WARNING`` keeps only the failures.
    """
    started = time.perf_counter()
    logger.inject_lambda_context(context)
    failure: dict[str, object] = {}
    try:
        answer: dict[str, Any] = {
            "statusCode": 200,
            "headers": dict(_JSON_HEADERS),
            "body": invoke(parse_event(event)),
        }
    except HttpError as err:
        answer = err.response()
        failure = {"error": err.error, "error_message": err.message}
        if err.__cause__ is not None:
            failure["cause"] = f"{type(err.__cause__).__name__}: {err.__cause__}"
    except Exception as err:
        unexpected = HttpError(500, "InternalError", "unexpected error; see the function logs")
        answer = unexpected.response()
        failure = {"error": "InternalError", **exception_fields(err)}
    status = int(answer["statusCode"])
    log = logger.error if status >= 500 else logger.warning if status >= 400 else logger.info
    log(
        "predict",
        endpoint=SETTINGS.endpoint_name,
        status=status,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        **failure,
    )
    return answer
