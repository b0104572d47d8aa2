"""Warm Lambda execution environments: persistent handler processes, reused like Lambda's.

Starting Python and importing boto3 costs a few hundred milliseconds of CPU: a process per
invocation cannot serve a steady stream of requests on a small machine. Lambda reuses execution
environments, and handlers rely on it (clients cached at module level), so local mode does too:

- a worker is one subprocess of this Python (its own session, tracked by the emulator so that a
  stop kills it, cwd the code directory) that imports the handler once, on its first invocation,
  and then serves one invocation at a time; module-level state survives between them;
- workers belong to one *configuration* (:attr:`WorkerSpec.key`: function ARN, code, handler,
  layers, environment...). An invocation under a new configuration retires the function's older
  workers, so that code or settings from before a redeploy never answer again;
- a pool keeps at most :data:`MAX_WORKERS_PER_CONFIG` workers per configuration (more concurrent
  invocations wait for a free one), and ends a worker idle for :data:`IDLE_SECONDS`;
- a worker that times out is killed with its process group; one that exits (``os._exit``, an
  import error) is dropped, and the next invocation starts a new one.

The protocol runs over the worker's stdin and stdout: length-prefixed frames (a JSON header, then
the event's bytes; a JSON reply). The worker moves those pipes out of the way at once and points
its file descriptors 1 and 2 at a per-worker log file, so the handler's prints and logging (and
its subprocesses') never mix with the protocol; as a worker runs one invocation at a time, what
the file gained meanwhile is exactly that invocation's output. The request id, the log stream and
the deadline travel with each request (the context object), never in the worker's environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .runtime import LOG, EmulatorContext, kill_process_group

__all__ = ["Outcome", "Request", "WorkerPool", "WorkerSpec"]

#: Concurrent execution environments per configuration; more invocations wait for a free one.
MAX_WORKERS_PER_CONFIG = 4
#: A worker unused for this long exits (Lambda, too, reclaims idle environments).
IDLE_SECONDS = 60.0
#: Once a worker's log file holds this much already-read output, it starts again from zero.
_LOG_ROTATE_BYTES = 1 << 20
_FRAME = struct.Struct(">I")

# The worker's half: moves the protocol off fds 0/1, then serves requests until stdin closes.
# The deadline in a request is a time.monotonic() value: the clock is system-wide, so a cold
# start's import counts against the first invocation's timeout, as it does in Lambda.
_BOOTSTRAP = r"""
import importlib
import json
import logging
import os
import struct
import sys
import time
import traceback

FRAME = struct.Struct(">I")


def channels():
    requests = os.fdopen(os.dup(0), "rb")  # dup()s are not inherited by the handler's children
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # the handler's stdout goes where stderr goes: this worker's log file
    return requests, replies


def read_frame(stream):
    header = stream.read(FRAME.size)
    if len(header) < FRAME.size:
        return None
    (size,) = FRAME.unpack(header)
    data = stream.read(size)
    return data if len(data) == size else None


class LambdaContext:
    def __init__(self, request):
        self._deadline = request["deadline"]
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = os.environ["_LOCAL_FUNCTION_ARN"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.aws_request_id = request["request_id"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = request["log_stream"]
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error(request, message, kind, trace=(), fatal=False):
    return {"ok": False, "fatal": fatal, "error": {"errorMessage": message, "errorType": kind,
            "requestId": request["request_id"], "stackTrace": list(trace)}}


def load(handler_name, request):
    module_name, _, function_name = handler_name.rpartition(".")
    if not module_name:
        return error(request, f"Bad handler '{handler_name}': not enough values to unpack",
                     "Runtime.MalformedHandlerName", fatal=True)
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        return error(request, f"Unable to import module '{module_name}': {exc}",
                     "Runtime.ImportModuleError", fatal=True)
    function = getattr(module, function_name, None)
    if function is None:
        return error(request, f"Handler '{function_name}' missing on module '{module_name}'",
                     "Runtime.HandlerNotFound", fatal=True)
    return function


def run(function, request, data):
    try:
        event = json.loads(data or b"null")
    except ValueError as exc:
        return error(request, f"Unable to unmarshal input: {exc}", "Runtime.UnmarshalError")
    try:
        result = function(event, LambdaContext(request))
    except Exception as exc:
        trace = traceback.format_tb(exc.__traceback__.tb_next)  # drop this frame
        print(f"[ERROR] {type(exc).__name__}: {exc}")
        return error(request, str(exc), type(exc).__name__, trace)
    try:
        return {"ok": True, "payload": json.dumps(result)}
    except (TypeError, ValueError) as exc:
        return error(request, f"Unable to marshal response: {exc}", "Runtime.MarshalError")


def main():
    requests, replies = channels()
    handler_name = sys.argv[1]
    sys.path[0] = os.environ["LAMBDA_TASK_ROOT"]  # not this script's directory: like Lambda
    logging.basicConfig(stream=sys.stdout, format="[%(levelname)s]\t%(asctime)s\t%(message)s")
    function = None
    while True:
        header = read_frame(requests)
        data = None if header is None else read_frame(requests)
        if data is None:
            return  # the emulator closed the pipe
        request = json.loads(header)
        os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = request["log_stream"]
        if function is None:
            function = load(handler_name, request)
        reply = function if isinstance(function, dict) else run(function, request, data)
        sys.stdout.flush()
        sys.stderr.flush()
        body = json.dumps(reply).encode("utf-8")
        replies.write(FRAME.pack(len(body)) + body)
        replies.flush()
        if reply.get("fatal"):
            return


main()
"""


@dataclass(frozen=True, eq=False)
class WorkerSpec:
    """How to start a worker, and ``key``: the configuration it may serve (any difference in
    code, handler, layers or settings must give another key)."""

    key: str
    function_arn: str
    function_name: str
    handler: str
    code_dir: Path
    env: Mapping[str, str]


@dataclass(frozen=True)
class Request:
    """One invocation, as a worker receives it."""

    request_id: str
    log_stream: str
    event: bytes
    timeout: float


@dataclass(frozen=True)
class Outcome:
    """What became of an invocation. ``payload`` is the result's JSON (``ok``) or Lambda's error
    body (``error``); ``exited`` and ``timeout`` say the worker is gone, ``stopped`` that the pool
    closed before the invocation started. ``output`` is what the invocation printed."""

    status: Literal["ok", "error", "timeout", "exited", "stopped"]
    payload: str
    output: str
    returncode: int | None = None


class _Timeout(Exception):
    pass


def _wait_ready(fd: int, event: int, deadline: float) -> None:
    """Block until ``fd`` is ready for ``event`` (poll: no FD_SETSIZE limit like select's)."""
    poller = select.poll()
    poller.register(fd, event)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout
        if poller.poll(max(1, int(remaining * 1000))):
            return


class Worker:
    """One execution environment: a handler process and the log file its output goes to."""

    def __init__(
        self, spec: WorkerSpec, ctx: EmulatorContext, process: subprocess.Popen[bytes], log: Path
    ) -> None:
        self.spec = spec
        self.process = process
        self.busy = False
        self.retired = False
        self.last_used = time.monotonic()
        self._ctx = ctx
        self._log = log
        self._offset = 0
        self._closed = False
        assert process.stdin is not None and process.stdout is not None
        self._requests = process.stdin
        self._replies = process.stdout
        os.set_blocking(self._requests.fileno(), False)
        os.set_blocking(self._replies.fileno(), False)

    @classmethod
    def start(cls, spec: WorkerSpec, ctx: EmulatorContext) -> Worker:
        """Start a worker of ``spec`` (the pool wrote its script, ``workers/bootstrap.py``)."""
        log = ctx.state_dir / "lambda" / "workers" / f"{uuid.uuid4().hex}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, str(log.parent / "bootstrap.py"), spec.handler],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=output,
                cwd=spec.code_dir,
                env=dict(spec.env),
                start_new_session=True,
            )
        ctx.track(process)
        LOG.info("lambda %s: started worker %s", spec.function_name, process.pid)
        return cls(spec, ctx, process, log)

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def invoke(self, request: Request, deadline: float) -> Outcome:
        """Run one invocation; on a timeout or a protocol failure the worker is closed."""
        header = {
            "request_id": request.request_id,
            "log_stream": request.log_stream,
            "deadline": deadline,
        }
        try:
            self._send(json.dumps(header).encode("utf-8"), request.event, deadline=deadline)
            reply = json.loads(self._receive(deadline))
        except _Timeout:
            self.kill()
            return Outcome("timeout", "", self._read_output())
        except (OSError, EOFError, ValueError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.kill()
            return Outcome("exited", "", self._read_output(), self.process.returncode)
        if reply.get("fatal"):
            self.kill()  # it exits by itself; this ends what it may have left running
        output = self._read_output()
        if reply.get("ok"):
            return Outcome("ok", str(reply["payload"]), output)
        return Outcome("error", json.dumps(reply["error"]), output)

    def kill(self) -> None:
        """End the process group; safe from any thread (pipes stay open for their reader)."""
        kill_process_group(self.process)

    def close(self) -> None:
        """Kill, forget and clean up; only once no invocation uses this worker."""
        if self._closed:
            return
        self._closed = True
        self.kill()
        self._ctx.untrack(self.process)
        for pipe in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                pipe.close()
        self._log.unlink(missing_ok=True)

    def _send(self, *frames: bytes, deadline: float) -> None:
        data = memoryview(b"".join(_FRAME.pack(len(frame)) + frame for frame in frames))
        fd = self._requests.fileno()
        while data:
            _wait_ready(fd, select.POLLOUT, deadline)
            with contextlib.suppress(BlockingIOError):
                data = data[os.write(fd, data) :]

    def _receive(self, deadline: float) -> bytes:
        fd = self._replies.fileno()
        buffer = bytearray()
        while True:
            if len(buffer) >= _FRAME.size:
                (size,) = _FRAME.unpack_from(buffer)
                if len(buffer) >= _FRAME.size + size:
                    return bytes(buffer[_FRAME.size : _FRAME.size + size])
            _wait_ready(fd, select.POLLIN, deadline)
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError("the worker closed its reply pipe")
            buffer += chunk

    def _read_output(self) -> str:
        """What the log file gained since the last call: this invocation's output."""
        try:
            with self._log.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return ""
        self._offset += len(data)
        if self._offset > _LOG_ROTATE_BYTES:
            # The worker appends (O_APPEND): after the truncation it writes from 0 again.
            with contextlib.suppress(OSError):
                os.truncate(self._log, 0)
                self._offset = 0
        return data.decode("utf-8", "replace")


class WorkerPool:
    """The emulator's workers, by configuration; thread-safe (the server serves in threads)."""

    def __init__(
        self,
        ctx: EmulatorContext,
        *,
        per_config: int = MAX_WORKERS_PER_CONFIG,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.ctx = ctx
        self._per_config = per_config
        self._idle_seconds = idle_seconds
        self._cond = threading.Condition()
        self._workers: list[Worker] = []
        self._starting: dict[str, int] = {}
        self._latest: dict[str, str] = {}  # function ARN -> key of its newest configuration
        self._closed = False
        # Log files of a previous run in this state directory belong to no live worker.
        directory = ctx.state_dir / "lambda" / "workers"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "bootstrap.py").write_text(_BOOTSTRAP, encoding="utf-8")
        self._reaper = threading.Thread(target=self._reap, name="lambda-worker-reaper", daemon=True)
        self._reaper.start()

    def invoke(self, spec: WorkerSpec, request: Request) -> Outcome:
        """Run ``request`` on a free worker of ``spec``'s configuration, started if need be; the
        timeout counts from the moment a worker was free or its start began."""
        acquired = self._acquire(spec)
        if acquired is None:
            return Outcome("stopped", "", "")
        worker, started = acquired
        try:
            return worker.invoke(request, started + request.timeout)
        finally:
            self._release(worker)

    def workers(self) -> list[Worker]:
        """The live workers, busy or idle."""
        with self._cond:
            return list(self._workers)

    def close(self) -> None:
        """Kill every worker; invocations still running end as their worker dies."""
        with self._cond:
            self._closed = True
            victims = list(self._workers)
            busy = [w for w in victims if w.busy]
            self._workers.clear()
            self._cond.notify_all()
        for worker in victims:
            if worker in busy:
                worker.kill()  # its invoking thread closes it (see _release)
            else:
                worker.close()
        if self._reaper is not threading.current_thread():
            self._reaper.join(5)
        LOG.info("lambda workers: pool closed, %d worker(s) stopped", len(victims))

    def _acquire(self, spec: WorkerSpec) -> tuple[Worker, float] | None:
        victims: list[Worker] = []
        try:
            with self._cond:
                while True:
                    if self._closed or self.ctx.shutdown.is_set():
                        return None
                    victims += self._retire_others(spec)
                    idle = [w for w in self._workers if w.spec.key == spec.key and not w.busy]
                    for worker in sorted(idle, key=lambda w: w.last_used, reverse=True):
                        if worker.alive():
                            worker.busy = True
                            return worker, time.monotonic()
                        self._workers.remove(worker)
                        victims.append(worker)
                    count = sum(w.spec.key == spec.key for w in self._workers)
                    if count + self._starting.get(spec.key, 0) < self._per_config:
                        self._starting[spec.key] = self._starting.get(spec.key, 0) + 1
                        break
                    self._cond.wait(1.0)
        finally:
            for victim in victims:
                victim.close()
        started = time.monotonic()
        try:
            worker = Worker.start(spec, self.ctx)
        finally:
            with self._cond:
                self._starting[spec.key] -= 1
                self._cond.notify_all()
        with self._cond:
            if not self._closed:
                worker.busy = True
                # Started for a configuration that a newer one replaced meanwhile: this once.
                worker.retired = self._latest.get(spec.function_arn) != spec.key
                self._workers.append(worker)
                return worker, started
        worker.close()
        return None

    def _retire_others(self, spec: WorkerSpec) -> list[Worker]:
        """Mark the function's workers of other configurations retired; returns the idle ones,
        now out of the pool (busy ones are closed when their invocation ends)."""
        if self._latest.get(spec.function_arn) == spec.key:
            return []
        self._latest[spec.function_arn] = spec.key
        arn = spec.function_arn
        stale = [w for w in self._workers if w.spec.function_arn == arn and w.spec.key != spec.key]
        for worker in stale:
            worker.retired = True
        idle = [w for w in stale if not w.busy]
        self._workers = [w for w in self._workers if w not in idle]
        if stale:
            LOG.info("lambda %s: %d worker(s) retired", spec.function_name, len(stale))
        return idle

    def _release(self, worker: Worker) -> None:
        with self._cond:
            worker.busy = False
            worker.last_used = time.monotonic()
            keep = not self._closed and not worker.retired and worker.alive()
            if not keep and worker in self._workers:
                self._workers.remove(worker)
            self._cond.notify_all()
        if not keep:
            worker.close()

    def _reap(self) -> None:
        interval = max(0.05, min(self._idle_seconds / 2, 5.0))
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(interval)
                now = time.monotonic()
                victims = [
                    w
                    for w in self._workers
                    if not w.busy and (now - w.last_used >= self._idle_seconds or not w.alive())
                ]
                self._workers = [w for w in self._workers if w not in victims]
            for worker in victims:
                LOG.info("lambda worker %s: idle, stopped", worker.process.pid)
                worker.close()
