"""sagemaker-runtime InvokeEndpoint, forwarded to the endpoint's model server.

The request's Body, ContentType, Accept and custom attributes go to the server's
``/invocations``; an error status from the model is SageMaker's ``ModelError`` (424) with
``OriginalStatusCode`` and ``OriginalMessage``, and a model that does not answer in time is the
timeout ``ModelError`` SageMaker reports. A successful invocation of an endpoint that captures
data is handed to :mod:`.capture` (which samples and buffers it: the answer never waits for S3).
An invocation holds its server (:func:`.endpoints.lease`), so an update that replaces the server
meanwhile stops the old one only after it answered.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ..runtime import LOG
from . import capture
from .endpoints import Route, lease

__all__ = ["install"]

#: SageMaker gives a model 60 s to answer an invocation.
INVOCATION_TIMEOUT = 60.0


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], str]:
    body = {"message": message, "Message": message, **extra}
    # moto takes the HTTP status from the "status" header of a (status, headers, body) answer.
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "status": str(status)}
    return status, headers, json.dumps(body)


def _invoke_endpoint(self: Any) -> Any:
    """sagemaker-runtime InvokeEndpoint, forwarded to the endpoint's model server."""
    from moto.sagemaker.models import sagemaker_backends

    name = str(self._get_params().get("EndpointName") or self.path.split("/")[2])
    account, region = self.current_account, self.region
    endpoint = sagemaker_backends[account][region].endpoints.get(name)
    if endpoint is None:
        return _error(400, "ValidationError", f"Endpoint {name} of account {account} not found.")
    with lease(account, region, name) as route:
        if route is None:
            return _error(
                400,
                "ValidationError",
                f"Endpoint {name} of account {account} is not in service "
                f"(status {endpoint.endpoint_status}).",
            )
        return _forward(self, route, name, account, region)


def _forward(self: Any, route: Route, name: str, account: str, region: str) -> Any:
    headers = {
        "Content-Type": self.headers.get("Content-Type") or "application/octet-stream",
        "Accept": self.headers.get("Accept") or "*/*",
    }
    custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
    if custom:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
    body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.body or "").encode()
    request = urllib.request.Request(
        f"{route.server.url}/invocations", data=body, headers=headers, method="POST"
    )
    log_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"
    try:
        with urllib.request.urlopen(request, timeout=INVOCATION_TIMEOUT) as response:
            payload = response.read()
            answer = {"Content-Type": response.headers.get("Content-Type") or "application/json"}
            answer["x-Amzn-Invoked-Production-Variant"] = route.variant_name
            attributes = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
            if attributes:
                answer["X-Amzn-SageMaker-Custom-Attributes"] = attributes
    except urllib.error.HTTPError as exc:
        code = exc.code
        text = exc.read().decode("utf-8", "replace")
    except (TimeoutError, OSError) as exc:
        if "timed out" in str(exc):
            message = (
                "Your invocation timed out while waiting for a response from container primary."
            )
            return _error(
                424,
                "ModelError",
                message,
                OriginalStatusCode=0,
                OriginalMessage="",
                LogStreamArn=log_arn,
            )
        code, text = 500, f"the model server is unreachable: {exc}"
    else:
        if route.capture is not None:
            try:
                capture.record(
                    route.capture,
                    name,
                    route.variant_name,
                    (body, headers["Content-Type"]),
                    (payload, answer["Content-Type"]),
                    self.headers.get("X-Amzn-SageMaker-Inference-Id"),
                )
            except Exception:
                LOG.exception("endpoint %s: could not capture an invocation", name)
        return 200, answer, payload
    kind = "server" if code >= 500 else "client"
    message = (
        f'Received {kind} error ({code}) from primary with message "{text}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
        f"group=/aws/sagemaker/Endpoints/{name} in account {account} for more information."
    )
    return _error(
        424,
        "ModelError",
        message,
        ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
        OriginalStatusCode=code,
        OriginalMessage=text,
        LogStreamArn=log_arn,
    )


def install() -> None:
    """Patch moto's InvokeEndpoint (called once, by the package)."""
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint  # type: ignore[method-assign]
