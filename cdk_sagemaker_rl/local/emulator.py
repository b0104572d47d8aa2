"""The local AWS emulator: moto's server with plugins that make deploy-time training real.

Local mode deploys the reference stack with the real ``cdk`` CLI into this emulator, and the stack
trains and serves on this machine, without Docker. moto alone accepts the stack but runs nothing;
the plugins in :mod:`._plugins` close the gaps (see their docstrings):

- Lambda functions run for real, in a subprocess of this Python (``_plugins.lambda_exec``);
- stack operations run in the background with synchronous custom resources (Create, Update,
  Delete), real wait conditions, resource events and rollback (``_plugins.cloudformation``);
- CloudFormation-created state machines execute, and ``sagemaker:createTrainingJob.sync`` is
  create + poll, stoppable (``_plugins.stepfunctions``);
- training jobs run through ``training_runner`` and endpoints are served by ``model_server``,
  with InvokeEndpoint forwarded to them (``_plugins.sagemaker``);
- with ``MOTO_ENABLE_RECORDING``, moto's request recorder writes one whole line per request
  however many threads serve requests at once (``_plugins.recording``);
- CloudTrail's LookupEvents, which the CDK CLI calls to explain a failed deploy, is refused at
  once as unsupported instead of failing with a 500 that the SDK retries (``_plugins.cloudtrail``).

Run it as a process::

    python -m cdk_sagemaker_rl.local.emulator --port 4566 --state-dir .local-mode/emulator

or from Python: ``Emulator(port, state_dir).start()`` / ``.stop()`` (or ``run_forever()``, which
stops on SIGTERM/SIGINT). It listens on 127.0.0.1 only; clients use
``AWS_ENDPOINT_URL=http://localhost:<port>`` with dummy credentials. The state directory holds
``emulator.pid``, ``emulator.json`` (pid, port, URL), ``emulator.log``, ``training.log`` (every
training job's log lines, ``<job> | <line>``) and the work trees of Lambda, training and serving.

Because moto keeps its state in module globals and the plugins patch moto for the whole process,
there is at most one emulator per process. Nothing is persisted: stopping the emulator forgets
every resource, and stops every training job, model server and Lambda process it started.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from ._plugins import runtime
from ._plugins.runtime import DEFAULT_REGION, LOG, EmulatorContext

__all__ = ["Emulator", "EmulatorError", "main"]

HOST = "127.0.0.1"
PID_FILE = "emulator.pid"
INFO_FILE = "emulator.json"
LOG_FILE = "emulator.log"

#: Loggers whose records go to the emulator's log file.
_LOGGERS = ("cdk_sagemaker_rl", "moto", "werkzeug")


class EmulatorError(RuntimeError):
    """The emulator cannot start (port in use, another emulator on the state directory, ...)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_port(port: int) -> None:
    """Refuse a port that something already listens on (binding would fail less clearly).

    The probe binds as the server does, with SO_REUSEADDR: connections of an emulator that just
    stopped linger in TIME_WAIT on the port for a minute, and they must not make the port look
    taken (a listener still does).
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise EmulatorError(
                    f"port {port} on {HOST} is in use: is an emulator already running? "
                    "Stop it or pick another --port"
                ) from exc
            raise


class _LocalRoutes:
    """WSGI app: the emulator's own ``/_local/...`` endpoints in front of moto's app.

    Custom resource handlers and wait condition signals PUT to URLs under ``/_local``; on AWS
    these are presigned S3 URLs, here they must reach the plugin that waits for them.
    """

    def __init__(self, moto_app: Any, emulator: Emulator) -> None:
        self._moto_app = moto_app
        self._emulator = emulator

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if not path.startswith("/_local/"):
            result: Iterable[bytes] = self._moto_app(environ, start_response)
            return result
        from werkzeug.wrappers import Request

        request = Request(environ)
        status, body, content_type = self._dispatch(request.method, path, request.get_data())
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
        payload = body.encode("utf-8")
        start_response(
            f"{status} {reason.get(status, 'Error')}",
            [("Content-Type", content_type), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    def _dispatch(self, method: str, path: str, body: bytes) -> tuple[int, str, str]:
        from ._plugins import cloudformation

        text = "text/plain; charset=utf-8"
        if path.startswith(cloudformation.CUSTOM_RESOURCE_RESPONSE_PATH):
            if method != "PUT":
                return 405, "use PUT", text
            token = path[len(cloudformation.CUSTOM_RESOURCE_RESPONSE_PATH) :]
            status, message = cloudformation.handle_custom_resource_response(token, body)
            return status, message, text
        if path.startswith(cloudformation.WAIT_CONDITION_PATH):
            if method != "PUT":
                return 405, "use PUT", text
            handle = path[len(cloudformation.WAIT_CONDITION_PATH) :]
            status, message = cloudformation.handle_wait_condition_signal(handle, body)
            return status, message, text
        if path == "/_local/health":
            return 200, json.dumps({"status": "ok", "pid": os.getpid()}), "application/json"
        if path == "/_local/status":
            return 200, json.dumps(self._emulator.status()), "application/json"
        return 404, f"unknown emulator path {path}", text


class Emulator:
    """moto's server on ``127.0.0.1:port`` with the local-mode plugins, state in ``state_dir``.

    ``port=0`` binds a free port (read :attr:`port` after :meth:`start`).
    """

    def __init__(self, port: int, state_dir: Path | str, *, region: str = DEFAULT_REGION) -> None:
        self._requested_port = port
        self.state_dir = Path(state_dir).resolve()
        self.region = region
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._context: EmulatorContext | None = None
        self._log_handler: logging.Handler | None = None
        self._saved_logger_levels: dict[str, int] = {}
        self._saved_env: dict[str, str | None] = {}
        self._stop_requested = threading.Event()
        self._stale_owner: int | None = None

    # --- properties -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._context is None:
            return self._requested_port
        return self._context.port

    @property
    def endpoint_url(self) -> str:
        """``http://localhost:<port>``: what ``AWS_ENDPOINT_URL`` should be."""
        return f"http://localhost:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / PID_FILE

    @property
    def log_file(self) -> Path:
        return self.state_dir / LOG_FILE

    @property
    def running(self) -> bool:
        return self._context is not None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the port, install the plugins and serve in a background thread.

        Raises EmulatorError when the port is in use, a live emulator owns the state directory,
        or another emulator runs in this process.
        """
        if self.running:
            raise EmulatorError("this emulator is already running")
        if runtime._current is not None:
            raise EmulatorError(
                "another emulator is running in this process (moto state is global)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._claim_pid_file()
        try:
            _check_port(self._requested_port)
            self._start_logging()
            if self._stale_owner is not None:
                LOG.info("removed a stale pid file (pid %s is not running)", self._stale_owner)
            self._serve()
        except BaseException:
            self._release_pid_file()
            self._stop_logging()
            raise
        LOG.info("emulator listening on %s (state in %s)", self.endpoint_url, self.state_dir)

    def _serve(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from ._plugins import install_all

        moto_app = DomainDispatcherApplication(create_backend_app)
        app = _LocalRoutes(moto_app, self)
        try:
            server = make_server(
                HOST, self._requested_port, app, threaded=True, request_handler=MotoRequestHandler
            )
        except (OSError, SystemExit) as exc:
            raise EmulatorError(f"cannot listen on {HOST}:{self._requested_port}: {exc}") from exc
        port = int(server.server_port)
        ctx = EmulatorContext(port, self.state_dir, self.region)
        # moto's Step Functions interpreter calls services on localhost:$MOTO_PORT.
        self._saved_env = {"MOTO_PORT": os.environ.get("MOTO_PORT")}
        os.environ["MOTO_PORT"] = str(port)
        runtime.set_context(ctx)
        self._context = ctx
        install_all()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="emulator-http", daemon=True
        )
        self._thread.start()
        self._write_info()

    def stop(self) -> None:
        """Stop training jobs, model servers, Lambda processes, stack operations and the server."""
        ctx = self._context
        if ctx is None:
            return
        LOG.info("emulator stopping")
        from ._plugins import cloudformation, sagemaker

        ctx.shutdown.set()
        try:
            sagemaker.stop_all()
            ctx.kill_children()
            cloudformation.stop_all()
            ctx.run_stoppers()
        finally:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
            if self._thread is not None:
                self._thread.join(10)
            ctx.kill_children()
            _forget_everything()
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            runtime.set_context(None)
            self._context = None
            self._server = None
            self._thread = None
            self._release_pid_file()
            (self.state_dir / INFO_FILE).unlink(missing_ok=True)
            LOG.info("emulator stopped")
            self._stop_logging()

    def run_forever(self, on_ready: Callable[[Emulator], None] | None = None) -> None:
        """Start, serve until SIGTERM/SIGINT (or :meth:`request_stop`), then stop.

        ``on_ready`` is called once the emulator answers requests.
        """
        previous = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            LOG.info("received signal %s", signal.Signals(signum).name)
            self._stop_requested.set()

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, on_signal)
        try:
            self.start()
            if on_ready is not None:
                on_ready(self)
            while not self._stop_requested.wait(1.0):
                pass
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def request_stop(self) -> None:
        """Make :meth:`run_forever` return (thread-safe)."""
        self._stop_requested.set()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def status(self) -> dict[str, Any]:
        """What ``GET /_local/status`` answers: where the emulator is and what it runs."""
        from ._plugins import sagemaker

        return {
            "pid": os.getpid(),
            "port": self.port,
            "endpoint_url": self.endpoint_url,
            "state_dir": str(self.state_dir),
            "log_file": str(self.log_file),
            "training_log": str(self.state_dir / sagemaker.TRAINING_LOG_NAME),
            **sagemaker.snapshot(),
        }

    # --- pid file, info file, logging -------------------------------------------------------

    def _claim_pid_file(self) -> None:
        """Create the pid file, refusing a live owner and clearing a stale one."""
        for _ in range(2):
            try:
                fd = os.open(self.pid_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = int(self.pid_file.read_text(encoding="utf-8").split()[0])
                except (OSError, ValueError, IndexError):
                    owner = -1
                if owner > 0 and owner != os.getpid() and _pid_alive(owner):
                    raise EmulatorError(
                        f"an emulator (pid {owner}) already uses {self.state_dir}: stop it first "
                        f"(kill {owner}) or use another --state-dir"
                    ) from None
                # Logged once the log file is open (this runs before, to keep a live owner's log).
                self._stale_owner = owner
                self.pid_file.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n")
            return
        raise EmulatorError(f"could not create {self.pid_file}")

    def _release_pid_file(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(self.pid_file.read_text(encoding="utf-8").split()[0]) == os.getpid():
                self.pid_file.unlink()

    def _write_info(self) -> None:
        info = {
            "pid": os.getpid(),
            "port": self.port,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "log_file": str(self.log_file),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        scratch = self.state_dir / f".{INFO_FILE}.tmp"
        scratch.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        scratch.replace(self.state_dir / INFO_FILE)

    def _start_logging(self) -> None:
        handler = logging.FileHandler(self.log_file, encoding="utf-8")
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s")
        )
        handler.setLevel(logging.INFO)
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            self._saved_logger_levels[name] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(handler)
        self._log_handler = handler

    def _stop_logging(self) -> None:
        handler = self._log_handler
        if handler is None:
            return
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(handler)
            logger.setLevel(self._saved_logger_levels.get(name, logging.NOTSET))
        handler.close()
        self._log_handler = None


def _forget_everything() -> None:
    """Reset moto's backends and the plugins' registries: the next emulator in this process starts
    empty, as a new emulator process would."""
    from moto.moto_api._internal.models import moto_api_backend

    from ._plugins import cloudformation

    moto_api_backend.reset()
    cloudformation.forget()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cdk_sagemaker_rl.local.emulator",
        description="Local AWS emulator (moto + plugins) for cdk-sagemaker-rl local mode.",
    )
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--state-dir", type=Path, required=True, help="pid, logs and work trees")
    parser.add_argument("--region", default=DEFAULT_REGION, help=f"default {DEFAULT_REGION}")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _stderr_logging() -> Iterator[None]:
    """In the process form, warnings also go to stderr (the parent's view of the emulator)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("emulator: %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    try:
        yield
    finally:
        LOG.removeHandler(handler)


def _announce(emulator: Emulator) -> None:
    """One line on stdout when ready, for a parent process that waits for it."""
    print(f"emulator ready {emulator.endpoint_url} pid {os.getpid()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Process entry point: serve until SIGTERM/SIGINT; exit 2 when the emulator cannot start."""
    args = _parse_args(argv)
    emulator = Emulator(args.port, args.state_dir, region=args.region)
    with _stderr_logging():
        try:
            emulator.run_forever(on_ready=_announce)
        except EmulatorError as exc:
            print(f"emulator: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
