"""Serve one SageMaker model on this machine, speaking the inference container's HTTP contract.

A SageMaker endpoint is a container answering ``GET /ping`` and ``POST /invocations`` on a port.
Local mode has no Docker, so :class:`LocalModelServer` starts this module as a subprocess
(``python -m cdk_sagemaker_rl.local.model_server``) that does what the PyTorch inference
container does with a model:

- the model directory is the extracted ``model.tar.gz`` (``/opt/ml/model`` in the container);
- the handler script is ``SAGEMAKER_PROGRAM`` from ``SAGEMAKER_SUBMIT_DIRECTORY`` (an ``s3://``
  ``sourcedir.tar.gz``, a local directory, or ``/opt/ml/model/code``), or else
  ``<model dir>/code/inference.py``; its ``requirements.txt`` is installed when not satisfied;
- the script's ``model_fn(model_dir)`` loads the model once, then each request runs
  ``input_fn(body, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)``
  (or ``transform_fn(model, body, content_type, accept)``); functions the script omits fall back
  to the container's defaults: a TorchScript ``model.pt``, JSON / CSV / NPY decoding into a float
  tensor, ``model(data)`` under ``torch.no_grad()``, and encoding back into the ``Accept`` type;
- text bodies (JSON, CSV, plain text) reach ``input_fn`` as ``str``, others as ``bytes``; a missing
  or ``*/*`` Accept means ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default ``application/json``);
- an exception in the handler answers 500 with the error message as the body's first line,
  followed by the traceback, which is how the toolkit reports a model error (415 when the
  default handlers meet a content or accept type they do not speak).

The subprocess binds port 0 unless told otherwise and writes the bound port to a file only after the
model is loaded and the socket listens, so the parent never races for a port or pings a server
that is still loading.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from cdk_sagemaker_rl.local.archives import extract_tar_safely
from cdk_sagemaker_rl.local.requirements import unsatisfied_requirements

__all__ = [
    "InferenceHandler",
    "LocalModelServer",
    "ModelServerError",
    "UnsupportedFormatError",
    "main",
]

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
_TEXT_TYPES = (JSON, CSV, "text/plain", "application/jsonlines")
_CONTAINER_MODEL_DIR = "/opt/ml/model"
_LOG_TAIL_LINES = 40
_STOP_GRACE_SECONDS = 5.0


class ModelServerError(RuntimeError):
    """The model server could not start (bad model, bad handler, crash, timeout)."""


class UnsupportedFormatError(ValueError):
    """A content or accept type the default handlers do not speak: answered with 415, not 500."""


def _media_type(value: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (value or "").split(";", 1)[0].strip().lower()


# --- the container's default handler functions ---------------------------------------------------


def default_model_fn(model_dir: str) -> Any:
    """The container's default: a TorchScript ``model.pt`` in the model directory."""
    path = Path(model_dir) / "model.pt"
    if not path.is_file():
        raise ValueError(
            f"no model_fn in the inference script and no TorchScript model.pt in {model_dir}: "
            "provide code/inference.py with model_fn(model_dir), or save the model as model.pt"
        )
    import torch

    return torch.jit.load(str(path), map_location="cpu").eval()  # type: ignore[no-untyped-call]


def default_input_fn(body: Any, content_type: str) -> Any:
    """Decode JSON, CSV or NPY into a float32 tensor, as the PyTorch container does."""
    import numpy as np
    import torch

    media = _media_type(content_type) or JSON
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    if media == JSON:
        array = np.asarray(json.loads(text), dtype=np.float32)
    elif media == CSV:
        array = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    elif media == NPY:
        raw = body if isinstance(body, bytes | bytearray) else body.encode("latin-1")
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    else:
        raise UnsupportedFormatError(
            f"unsupported content type {content_type!r}: use {JSON}, {CSV} or {NPY}"
        )
    return torch.from_numpy(np.ascontiguousarray(array))


def default_predict_fn(data: Any, model: Any) -> Any:
    """Call the model on the data, without autograd when torch is present."""
    try:
        import torch
    except ImportError:
        return model(data)
    with torch.no_grad():
        return model(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes | str, str]:
    """Encode a tensor, array or plain value as JSON, CSV or NPY."""
    import numpy as np

    if hasattr(prediction, "detach"):
        prediction = prediction.detach().cpu().numpy()
    media = _media_type(accept) or JSON
    if media == JSON:
        value = prediction.tolist() if isinstance(prediction, np.ndarray) else prediction
        return json.dumps(value), JSON
    if media == CSV:
        out = io.StringIO()
        np.savetxt(out, np.atleast_2d(np.asarray(prediction)), delimiter=",", fmt="%s")
        return out.getvalue(), CSV
    if media == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction), allow_pickle=False)
        return buffer.getvalue(), NPY
    raise UnsupportedFormatError(f"unsupported accept type {accept!r}: use {JSON}, {CSV} or {NPY}")


# --- the handler: a script's functions with the defaults filled in ------------------------------


@dataclass
class InferenceHandler:
    """The request pipeline of one model, taken from the user's script as the container does."""

    model_fn: Callable[[str], Any]
    input_fn: Callable[[Any, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], Any]
    transform_fn: Callable[[Any, Any, str, str], Any] | None = None
    source: str = "container defaults"

    @classmethod
    def from_script(cls, script: Path | None) -> InferenceHandler:
        """Take the script's functions, defaults for those it omits (no script: all defaults)."""
        if script is None:
            return cls(default_model_fn, default_input_fn, default_predict_fn, default_output_fn)
        module = _import_script(script)

        def pick(name: str, default: Any) -> Any:
            function = getattr(module, name, None)
            return function if callable(function) else default

        transform_fn = pick("transform_fn", None)
        overridden = [n for n in ("input_fn", "predict_fn", "output_fn") if hasattr(module, n)]
        if transform_fn is not None and overridden:
            raise ValueError(
                f"{script} defines transform_fn together with {', '.join(overridden)}: "
                "define either transform_fn or input_fn/predict_fn/output_fn"
            )
        return cls(
            model_fn=pick("model_fn", default_model_fn),
            input_fn=pick("input_fn", default_input_fn),
            predict_fn=pick("predict_fn", default_predict_fn),
            output_fn=pick("output_fn", default_output_fn),
            transform_fn=transform_fn,
            source=str(script),
        )

    def invoke(self, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """One request: returns the response body and its content type."""
        data: Any = body.decode("utf-8") if _media_type(content_type) in _TEXT_TYPES else body
        if self.transform_fn is not None:
            result = self.transform_fn(model, data, content_type, accept)
        else:
            result = self.output_fn(
                self.predict_fn(self.input_fn(data, content_type), model), accept
            )
        response_type = accept
        if isinstance(result, tuple) and len(result) == 2:
            result, response_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        if not isinstance(result, bytes | bytearray):
            raise TypeError(
                f"the handler returned {type(result).__name__}; output_fn must return str or bytes "
                "(or a (body, content_type) tuple)"
            )
        return bytes(result), str(response_type)


def _import_script(script: Path) -> ModuleType:
    """Import the user's handler script by path, with its directory importable (for helpers)."""
    directory = str(script.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    spec.loader.exec_module(module)
    return module


# --- the server process --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """``GET /ping`` and ``POST /invocations``; the loaded model lives on the server object."""

    server: _ModelHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's
    # delayed ACK, about 40 ms per request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/ping":
            self._send(HTTPStatus.OK, b"", "text/plain")
        else:
            self._send(HTTPStatus.NOT_FOUND, f"no route GET {self.path}\n".encode(), "text/plain")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/invocations":
            self._send(HTTPStatus.NOT_FOUND, f"no route POST {self.path}\n".encode(), "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        content_type = self.headers.get("Content-Type") or self.server.default_content_type
        accept = self.headers.get("Accept") or ""
        if _media_type(accept) in ("", "*/*"):
            accept = self.server.default_accept
        try:
            with self.server.lock:
                payload, response_type = self.server.handler.invoke(
                    self.server.model, body, content_type, accept
                )
        except Exception as error:  # a model error is an answer
            message = str(error) or type(error).__name__
            text = f"{message}\n{traceback.format_exc()}"
            sys.stderr.write(text)
            status = (
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE
                if isinstance(error, UnsupportedFormatError)
                else HTTPStatus.INTERNAL_SERVER_ERROR
            )
            self._send(status, text.encode("utf-8"), "text/plain")
            return
        self._send(HTTPStatus.OK, payload, response_type)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ModelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: InferenceHandler, model: Any) -> None:
        super().__init__(address, _Handler)
        self.handler = handler
        self.model = model
        # One request at a time through the model, like one container worker: user handlers
        # need not be thread-safe. /ping stays answerable while a prediction runs.
        self.lock = threading.Lock()
        self.default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON)
        self.default_content_type = os.environ.get(
            "SAGEMAKER_DEFAULT_INVOCATIONS_CONTENT_TYPE", JSON
        )


def _find_script(model_dir: Path, code_dir: Path | None, program: str | None) -> Path | None:
    if program:
        script = (code_dir or model_dir / "code") / program
        if not script.is_file():
            raise ValueError(f"SAGEMAKER_PROGRAM {program!r} is not in {script.parent}")
        return script
    default = model_dir / "code" / "inference.py"
    return default if default.is_file() else None


def _install_requirements(script: Path | None) -> None:
    if script is None:
        return
    requirements = script.parent / "requirements.txt"
    if not requirements.is_file():
        return
    missing = unsatisfied_requirements(requirements)
    if not missing:
        print(f"{requirements} is already satisfied: nothing to install", flush=True)
        return
    print(f"Installing {requirements} (not satisfied: {'; '.join(missing)})", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-r", str(requirements)], check=True)


def serve(
    model_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    code_dir: Path | None = None,
    program: str | None = None,
    port_file: Path | None = None,
) -> None:
    """Load the model, then answer requests until the process is terminated."""
    if not model_dir.is_dir():
        raise ValueError(f"model directory {model_dir} does not exist")
    script = _find_script(model_dir, code_dir, program)
    _install_requirements(script)
    handler = InferenceHandler.from_script(script)
    print(f"Loading the model from {model_dir} with {handler.source}", flush=True)
    model = handler.model_fn(str(model_dir))
    server = _ModelHTTPServer((host, port), handler, model)
    bound = server.server_address[1]
    if port_file is not None:
        partial = port_file.with_name(port_file.name + ".partial")
        partial.write_text(str(bound))
        os.replace(partial, port_file)
    print(f"Model server listening on http://{host}:{bound}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """``python -m cdk_sagemaker_rl.local.model_server --model-dir DIR [--port N] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, required=True, help="the extracted model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="where to write the bound port once ready")
    parser.add_argument("--code-dir", type=Path, help="directory of --program")
    parser.add_argument("--program", help="handler script file name (SAGEMAKER_PROGRAM)")
    args = parser.parse_args(argv)
    serve(
        args.model_dir,
        host=args.host,
        port=args.port,
        code_dir=args.code_dir,
        program=args.program,
        port_file=args.port_file,
    )
    return 0


# --- the parent side -----------------------------------------------------------------------------


class LocalModelServer:
    """One model served by a subprocess on 127.0.0.1, like one endpoint's container.

    ``model_data`` is a ``model.tar.gz`` (extracted into the work directory), an extracted model
    directory, or an ``s3://`` URI of a ``model.tar.gz`` (fetched with ``s3``). ``environment`` is
    the model's container environment (``SAGEMAKER_PROGRAM``, ``SAGEMAKER_SUBMIT_DIRECTORY``, ...);
    an ``s3://`` submit directory is fetched with ``s3`` too. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        model_data: Path | str,
        environment: Mapping[str, str] | None = None,
        *,
        port: int = 0,
        python: str = sys.executable,
        s3: Any | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.model_data = model_data
        self.environment = dict(environment or {})
        self.port = port
        self.python = python
        self.s3 = s3
        self._work_dir = work_dir
        self._own_work_dir = False
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._url is None:
            raise ModelServerError("the model server is not running: call start() first")
        return self._url

    @property
    def pid(self) -> int | None:
        """The server process id (its process group id too), None when not running."""
        return None if self._process is None else self._process.pid

    @property
    def log_path(self) -> Path | None:
        """The server's stdout and stderr (model loading, access log, handler errors).

        None before start() and, when the work directory was a temporary one, after stop().
        """
        return None if self._work_dir is None else self._work_dir / "server.log"

    def start(self, timeout: float = 60) -> None:
        """Start the server and return once ``/ping`` answers 200.

        Raises ModelServerError, with the tail of the server's log, when the model cannot be
        prepared, the server exits, or ``/ping`` does not answer within ``timeout`` seconds.
        """
        if self._process is not None:
            raise ModelServerError("the model server is already running")
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="local-model-server-"))
            self._own_work_dir = True
        work_dir = self._work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        log_path = work_dir / "server.log"
        try:
            model_dir = self._prepare_model_dir(work_dir)
            code_dir, program = self._resolve_code(model_dir, work_dir)
        except ModelServerError:
            raise
        except Exception as error:
            raise ModelServerError(f"cannot prepare model {self.model_data}: {error}") from error
        port_file = work_dir / "port"
        port_file.unlink(missing_ok=True)
        command = [
            self.python, "-m", "cdk_sagemaker_rl.local.model_server",
            "--model-dir", str(model_dir),
            "--port", str(self.port),
            "--port-file", str(port_file),
        ]  # fmt: skip
        if program is not None:
            command += ["--program", program]
            if code_dir is not None:
                command += ["--code-dir", str(code_dir)]
        env = dict(os.environ)
        env.update(self.environment)
        # The package need not be installed: make it importable from where this file lives.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self._log_file = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            command,
            cwd=work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_ready(port_file, log_path, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, port_file: Path, log_path: Path, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise ModelServerError(
                    f"the model server exited with code {code} before answering /ping "
                    f"(model {self.model_data}); last lines of {log_path}:\n{_tail(log_path)}"
                )
            if port_file.is_file():
                url = f"http://127.0.0.1:{int(port_file.read_text())}"
                try:
                    with urllib.request.urlopen(url + "/ping", timeout=2) as response:
                        if response.status == 200:
                            self._url = url
                            return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.05)
        raise ModelServerError(
            f"the model server did not answer /ping within {timeout:g} s "
            f"(model {self.model_data}); last lines of {log_path}:\n{_tail(log_path)}"
        )

    def _prepare_model_dir(self, work_dir: Path) -> Path:
        source = self.model_data
        if isinstance(source, str) and source.startswith("s3://"):
            if self.s3 is None:
                raise ModelServerError(f"model_data {source} is in S3: pass an s3 client")
            bucket, _, key = source[len("s3://") :].partition("/")
            archive = work_dir / "model.tar.gz"
            self.s3.download_file(bucket, key, str(archive))
            source = archive
        path = Path(source)
        if path.is_dir():
            return path
        if not path.is_file():
            raise ModelServerError(
                f"model_data {path} does not exist: give a model.tar.gz, a model directory "
                "or an s3:// URI"
            )
        model_dir = work_dir / "model"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        extract_tar_safely(path, model_dir)
        return model_dir

    def _resolve_code(self, model_dir: Path, work_dir: Path) -> tuple[Path | None, str | None]:
        """Where SAGEMAKER_PROGRAM lives: the submit directory, mapped onto this machine."""
        program = self.environment.get("SAGEMAKER_PROGRAM") or None
        submit = self.environment.get("SAGEMAKER_SUBMIT_DIRECTORY") or ""
        if program is None:
            return None, None
        if not submit:
            return model_dir / "code", program
        if submit.startswith("s3://"):
            if self.s3 is None:
                raise ModelServerError(
                    f"SAGEMAKER_SUBMIT_DIRECTORY {submit} is in S3: pass an s3 client"
                )
            bucket, _, key = submit[len("s3://") :].partition("/")
            archive = work_dir / "sourcedir.tar.gz"
            self.s3.download_file(bucket, key, str(archive))
            code_dir = work_dir / "code"
            if code_dir.exists():
                shutil.rmtree(code_dir)
            extract_tar_safely(archive, code_dir)
            return code_dir, program
        local = submit.removeprefix("file://")
        if local == _CONTAINER_MODEL_DIR or local.startswith(_CONTAINER_MODEL_DIR + "/"):
            # The SDK repacks the handler into model.tar.gz and points here: /opt/ml/model/code.
            return model_dir / local[len(_CONTAINER_MODEL_DIR) :].lstrip("/"), program
        path = Path(local)
        if path.is_dir():
            return path, program
        if path.is_file():
            code_dir = work_dir / "code"
            if code_dir.exists():
                shutil.rmtree(code_dir)
            extract_tar_safely(path, code_dir)
            return code_dir, program
        raise ModelServerError(f"SAGEMAKER_SUBMIT_DIRECTORY {submit} does not exist")

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL if it lingers. Idempotent."""
        process, self._process, self._url = self._process, None, None
        if process is not None:
            _signal_group(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_STOP_GRACE_SECONDS)
            _signal_group(process.pid, signal.SIGKILL)  # also whatever the server started
            process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None
            self._own_work_dir = False

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


if __name__ == "__main__":
    sys.exit(main())
