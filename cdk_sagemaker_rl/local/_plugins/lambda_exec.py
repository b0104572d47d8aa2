"""Run Lambda functions for real: the function's zip, in warm worker processes of this Python.

moto runs Lambda code only through Docker, which local mode does not have; without it, Invoke
echoes the payload and custom resources never answer. This plugin replaces
``LambdaFunction.invoke`` (used by the Invoke API, which Step Functions' ``lambda:invoke`` tasks
and Lambda-to-Lambda calls go through) with a run of the handler in an execution environment of
:mod:`.lambda_workers` (a subprocess reused from invocation to invocation, as Lambda does):

- the stored zip (and its layers) is extracted once per code digest into the state directory;
- the handler ``module.function`` runs under :data:`sys.executable` with the function's
  environment plus ``AWS_ENDPOINT_URL`` (the emulator), dummy credentials and the region, in its
  own session so that a timeout kills everything it started; any change of code, handler, layers
  or configuration gets new environments (see :func:`_worker_spec`);
- the result is the handler's JSON; an exception, a missing handler or a timeout is a
  ``FunctionError: Unhandled`` with Lambda's error payload (``errorMessage``, ``errorType``,
  ``stackTrace``), and the invocation's output goes to CloudWatch Logs (``/aws/lambda/<name>``,
  a stream per invocation) as in Lambda.

Only Python runtimes run (the interpreter is this one, whatever minor version the function
declares); any other runtime gets an error payload that says so.

Every AWS request a handler makes names its function: ``AWS_SDK_UA_APP_ID`` (see
:func:`app_id_for`) makes botocore add ``app/<id>`` to the User-Agent, so a recording of the
emulator's requests tells which principal made each one (the IAM audit of the local-mode test).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .lambda_workers import Request, WorkerPool, WorkerSpec
from .runtime import LOG, context

__all__ = ["Invocation", "app_id_for", "install", "invoke_function"]

#: Lambda returns at most this much of the log in ``X-Amz-Log-Result``.
_LOG_TAIL_BYTES = 4096

#: Variables of the emulator's own environment that a handler may see. Everything else (in
#: particular AWS_* from the user's shell) stays out.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")

#: botocore's limit for a User-Agent app id (longer ones work but log a warning per client).
_APP_ID_MAX = 50
#: What botocore keeps of an app id; any other character becomes "-".
_APP_ID_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$%&'*+-.^_`|~,#"
)


def app_id_for(principal: str) -> str:
    """The User-Agent app id that names ``principal`` (a function name, a role ARN) in the
    requests made on its behalf: the name itself when botocore keeps it whole, else a digest of
    it and its tail (at most 50 characters either way)."""
    kept = "".join(c if c in _APP_ID_CHARS else "-" for c in principal)
    if len(kept) <= _APP_ID_MAX:
        return kept
    digest = hashlib.sha256(principal.encode("utf-8")).hexdigest()[:12]
    return f"{digest}#{kept[-(_APP_ID_MAX - 13) :]}"


#: Lambda's reserved variables: the function's environment cannot override them.
_RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@dataclass
class Invocation:
    """One invocation's outcome, in the Invoke API's terms."""

    payload: bytes
    function_error: str | None
    log_text: str
    request_id: str

    @property
    def error_summary(self) -> str:
        """``errorType: errorMessage`` of a failed invocation (for messages elsewhere)."""
        try:
            body = json.loads(self.payload)
        except ValueError:
            return self.payload.decode("utf-8", "replace")
        if isinstance(body, dict):
            return f"{body.get('errorType', 'Error')}: {body.get('errorMessage', '')}"
        return str(body)


_extract_lock = threading.Lock()


def _extract_zip(code: bytes, digest: str, kind: str) -> Path:
    """Extract ``code`` once into ``<state>/lambda/<kind>/<digest>`` and return that directory."""
    root = context().state_dir / "lambda" / kind
    target = root / digest
    with _extract_lock:
        if target.is_dir():
            return target
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=root))
        try:
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                for member in archive.infolist():
                    destination = (staging / member.filename).resolve()
                    if not destination.is_relative_to(staging.resolve()):
                        raise ValueError(f"zip member {member.filename!r} escapes the code dir")
                archive.extractall(staging)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _code_dir(fn: Any) -> Path:
    code: bytes = getattr(fn, "code_bytes", b"") or b""
    if not code:
        raise _SetupError(
            "Runtime.InvalidEntrypoint",
            f"function {fn.function_name} has no stored code (package type "
            f"{getattr(fn, 'package_type', 'Zip')}); local mode runs zip functions only",
        )
    digest = getattr(fn, "code_digest", "") or hashlib.sha256(code).hexdigest()
    return _extract_zip(code, digest, "code")


def _layer_dirs(fn: Any) -> list[Path]:
    """``python`` directories of the function's layers (Lambda puts them on sys.path)."""
    from moto.awslambda.utils import get_backend

    dirs: list[Path] = []
    backend = get_backend(fn.account_id, fn.region)
    for layer in getattr(fn, "layers", []) or []:
        version = backend.layers_versions_by_arn(layer["Arn"])
        code: bytes = getattr(version, "code_bytes", b"") or b""
        if not code:
            continue
        root = _extract_zip(code, hashlib.sha256(code).hexdigest(), "layers")
        major, minor = sys.version_info[:2]
        for candidate in (
            root / "python",
            root / "python" / "lib" / f"python{major}.{minor}" / "site-packages",
        ):
            if candidate.is_dir():
                dirs.append(candidate)
    return dirs


class _SetupError(Exception):
    """The function cannot start at all; becomes an error payload like Lambda's init errors."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _environment(fn: Any, code_dir: Path) -> dict[str, str]:
    """The environment a worker starts with: nothing in it may vary between invocations (the
    request id and the log stream travel with each request; see :mod:`.lambda_workers`)."""
    ctx = context()
    env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    for key, value in (fn.environment_vars or {}).items():
        if key not in _RESERVED_ENV:
            env[str(key)] = str(value)
    python_path = [str(code_dir), *(str(path) for path in _layer_dirs(fn))]
    env.update(ctx.aws_environment())
    env.update(
        {
            "_HANDLER": str(fn.handler),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            "_LOCAL_FUNCTION_ARN": fn.function_arn,
            # Names the function in the User-Agent of every request the handler makes.
            "AWS_SDK_UA_APP_ID": app_id_for(fn.function_name),
        }
    )
    return env


def _timeout(fn: Any) -> float:
    try:
        return float(fn.timeout)
    except (TypeError, ValueError):
        return 3.0


def _error_payload(kind: str, message: str, request_id: str) -> bytes:
    body = {"errorMessage": message, "errorType": kind, "requestId": request_id, "stackTrace": []}
    return json.dumps(body).encode("utf-8")


def _save_logs(fn: Any, stream: str, lines: list[str]) -> None:
    """Write the invocation's log to ``/aws/lambda/<name>`` like Lambda does."""
    backend = fn.logs_backend
    now = int(time.time() * 1000)
    try:
        backend.ensure_log_group(fn.logs_group_name)
        backend.create_log_stream(fn.logs_group_name, stream)
        events = [{"timestamp": now, "message": line} for line in lines] or [
            {"timestamp": now, "message": ""}
        ]
        backend.put_log_events(fn.logs_group_name, stream, events)
    except Exception:
        LOG.exception("could not write the log of %s to CloudWatch Logs", fn.function_name)


def invoke_function(fn: Any, event: bytes | str) -> Invocation:
    """Run ``fn`` (a moto ``LambdaFunction``) with ``event`` and wait for its outcome."""
    request_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    stream = f"{started:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    timeout = _timeout(fn)
    runtime = str(fn.run_time or "")
    head = f"START RequestId: {request_id} Version: $LATEST"
    output = ""
    try:
        if context().shutdown.is_set():
            raise _SetupError("Sandbox.Stopped", "the emulator is stopping")
        if not runtime.startswith("python"):
            raise _SetupError(
                "Runtime.UnsupportedLocally",
                f"local mode runs Python Lambda functions only; function {fn.function_name} "
                f"has runtime {runtime or 'none (container image)'}",
            )
        data = event.encode("utf-8") if isinstance(event, str) else event
        request = Request(request_id, stream, data, timeout)
        payload, function_error, output = _run(_worker_spec(fn), request)
    except _SetupError as problem:
        payload = _error_payload(problem.kind, problem.message, request_id)
        function_error = "Unhandled"
        output = f"[ERROR] {problem.kind}: {problem.message}\n"
    elapsed = (datetime.now(UTC) - started).total_seconds() * 1000
    lines = [
        head,
        *output.splitlines(),
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms\t"
        f"Memory Size: {fn.memory_size} MB",
    ]
    _save_logs(fn, stream, lines)
    status = f"error {function_error}" if function_error else "ok"
    LOG.info("lambda %s %s: %s in %.0f ms", fn.function_name, request_id, status, elapsed)
    for line in output.splitlines():
        LOG.info("lambda %s | %s", fn.function_name, line)
    return Invocation(payload, function_error, "\n".join(lines) + "\n", request_id)


def _worker_spec(fn: Any) -> WorkerSpec:
    """The worker configuration of ``fn`` as it is now. The key covers everything an update can
    change (``LastModified`` too: a function deleted and created again is a new function), so
    that no worker started before a redeploy serves an invocation after it."""
    code_dir = _code_dir(fn)
    env = _environment(fn, code_dir)
    identity = {
        "arn": fn.function_arn,
        "code": str(code_dir),
        "handler": str(fn.handler),
        "env": env,
        "layers": [str(layer.get("Arn")) for layer in getattr(fn, "layers", []) or []],
        "role": str(fn.role),
        "timeout": _timeout(fn),
        "modified": str(getattr(fn, "last_modified", "")),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()
    return WorkerSpec(key, fn.function_arn, fn.function_name, str(fn.handler), code_dir, env)


_pool_lock = threading.Lock()
_pool: WorkerPool | None = None


def _current_pool() -> WorkerPool:
    """The running emulator's pool: created on first use, closed when that emulator stops (a
    later emulator in this process gets its own)."""
    global _pool
    ctx = context()
    with _pool_lock:
        if _pool is None or _pool.ctx is not ctx:
            _pool = WorkerPool(ctx)
            ctx.on_stop(_pool.close)
        return _pool


def _run(spec: WorkerSpec, request: Request) -> tuple[bytes, str | None, str]:
    """The invocation's payload, function error and output, in Lambda's terms."""
    request_id = request.request_id
    outcome = _current_pool().invoke(spec, request)
    text = outcome.output
    if outcome.status == "ok":
        return outcome.payload.encode("utf-8"), None, text
    if outcome.status == "error":
        return outcome.payload.encode("utf-8"), "Unhandled", text
    if outcome.status == "timeout":
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = f"{stamp} {request_id} Task timed out after {request.timeout:.2f} seconds"
        kind, text = "Sandbox.Timedout", text + message + "\n"
    elif outcome.status == "stopped":
        kind, message = "Sandbox.Stopped", "the emulator is stopping"
    elif context().shutdown.is_set() and (outcome.returncode or 0) < 0:
        kind, message = "Sandbox.Stopped", "the emulator stopped"
    else:
        kind = "Runtime.ExitError"
        message = (
            f"RequestId: {request_id} Error: Runtime exited with error: "
            f"exit status {outcome.returncode}"
        )
    return _error_payload(kind, message, request_id), "Unhandled", text


def _invoke_api(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
    """Replacement for ``LambdaFunction.invoke`` (the Invoke API's path into a function)."""
    invocation_type = "RequestResponse"
    if request_headers:
        invocation_type = request_headers.get("x-amz-invocation-type") or invocation_type
    event: bytes | str = body if body else "{}"
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        threading.Thread(
            target=_invoke_in_background,
            args=(self, event),
            name=f"lambda-event-{self.function_name}",
            daemon=True,
        ).start()
        return b""
    invocation = invoke_function(self, event)
    if invocation.function_error:
        response_headers["x-amz-function-error"] = invocation.function_error
    tail = invocation.log_text.encode("utf-8")[-_LOG_TAIL_BYTES:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode("ascii")
    return invocation.payload


def _invoke_in_background(fn: Any, event: bytes | str) -> None:
    try:
        invoke_function(fn, event)
    except Exception:
        LOG.exception("asynchronous invocation of %s failed", fn.function_name)


def _simple_backend_invoke(
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes | str | None:
    """moto's Docker-less backend answers canned results; run the function instead."""
    from moto.awslambda.models import LambdaBackend

    result: bytes | str | None = LambdaBackend.invoke(
        self, function_name, qualifier, body, headers, response_headers
    )
    return result


def install() -> None:
    """Route every Lambda invocation in moto through :func:`invoke_function`."""
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    LambdaFunction.invoke = _invoke_api  # type: ignore[method-assign]
    LambdaSimpleBackend.invoke = _simple_backend_invoke  # type: ignore[method-assign]
