"""The parent side of a model server: one model served by a subprocess, like a container.

:class:`LocalModelServer` prepares the model directory (a ``model.tar.gz``, a directory, or an
``s3://`` URI) and the handler's code (``SAGEMAKER_SUBMIT_DIRECTORY`` mapped onto this machine),
starts :mod:`.server_process` in its own process group on 127.0.0.1, and returns once ``/ping``
answers; stopping it ends the whole group, so nothing the handler started outlives it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ..archives import extract_tar_safely

__all__ = ["LocalModelServer", "ModelServerError", "last_exception"]

_CONTAINER_MODEL_DIR = "/opt/ml/model"
_LOG_TAIL_LINES = 40
#: How far back a loading error's traceback is looked for (a deep one outgrows the tail).
_ERROR_SEARCH_LINES = 400
_STOP_GRACE_SECONDS = 5.0


class ModelServerError(RuntimeError):
    """The model server could not start (bad model, bad handler, crash, timeout).

    ``error`` is the exception the handler raised while loading (``ValueError: bad weights``),
    taken from the server's log, so that a caller can report the container's own words first
    (SageMaker's FailureReason) rather than a log tail in which they may be cut off; None when
    the log names none (a timeout, a kill). ``log_tail`` is the last lines of that log.
    """

    def __init__(self, message: str, *, error: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.error = error
        self.log_tail = log_tail


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
        package_root = str(Path(__file__).resolve().parents[3])
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
                tail = _tail(log_path)
                raise ModelServerError(
                    f"the model server exited with code {code} before answering /ping "
                    f"(model {self.model_data}); last lines of {log_path}:\n{tail}",
                    error=last_exception(_tail(log_path, _ERROR_SEARCH_LINES)),
                    log_tail=tail,
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
        tail = _tail(log_path)
        raise ModelServerError(
            f"the model server did not answer /ping within {timeout:g} s "
            f"(model {self.model_data}); last lines of {log_path}:\n{tail}",
            error=last_exception(_tail(log_path, _ERROR_SEARCH_LINES)),
            log_tail=tail,
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


def last_exception(log: str) -> str | None:
    """The exception line(s) ending the last Python traceback in ``log``, as Python printed them.

    A traceback ends with the frames (indented) and then ``Type: message``, whose message may
    span lines; what follows the last indented line up to the end of the log is that exception.
    """
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")]
    if not starts:
        return None
    body = lines[starts[-1] + 1 :]
    indented = [i for i, line in enumerate(body) if line.startswith((" ", "\t"))]
    rest = body[indented[-1] + 1 :] if indented else body
    text = "\n".join(line for line in rest if line.strip()).strip()
    return text or None


def _tail(log_path: Path, count: int = _LOG_TAIL_LINES) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-count:]) or "(empty log)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
