"""Serve one SageMaker model on this machine, speaking the inference container's HTTP contract.

This is the subprocess :class:`.LocalModelServer` starts (``python -m
cdk_sagemaker_rl.local.model_server``): it finds the handler script, installs its
``requirements.txt`` when not satisfied, loads the model once, and answers ``GET /ping`` and
``POST /invocations``. A missing or ``*/*`` Accept means ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``;
an exception in the handler answers 500 with the error message as the body's first line and the
traceback after it (415 for a content or accept type the defaults do not speak), which is how the
toolkit reports a model error. The bound port is written to a file only once the model is loaded
and the socket listens, so the parent never pings a server that is still loading.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..requirements import unsatisfied_requirements
from .defaults import JSON, UnsupportedFormatError, media_type
from .handler import InferenceHandler

__all__ = ["main", "serve"]


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
        if media_type(accept) in ("", "*/*"):
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
