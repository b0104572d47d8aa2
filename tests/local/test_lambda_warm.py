"""Warm Lambda execution environments in the local emulator (``_plugins.lambda_workers``).

Handlers report their process id, so that a test can tell a warm environment (same process, its
module state kept) from a fresh one, and can check from outside that a killed or retired worker
is gone. Most tests use the module's emulator; the stop test starts its own, and the pool's idle
and concurrency limits are checked in-process on a pool of their own (no moto involved).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import textwrap
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from conftest import EmulatorProcess, start_emulator

from cdk_sagemaker_rl.local._plugins.lambda_workers import Request, WorkerPool, WorkerSpec
from cdk_sagemaker_rl.local._plugins.runtime import EmulatorContext

# Module state that shows warmth (CALLS), the code version (VERSION, replaced by redeploys), and
# a barrier ("parties": wait until that many invocations have arrived) that only invocations
# running at the same time can pass.
COUNTER = """
    import json, os, pathlib, sys, time

    VERSION = "v1"
    CALLS = 0
    print("init", os.getpid())

    def handler(event, context):
        global CALLS
        CALLS += 1
        print(f"call {event.get('n')} in {os.getpid()}")
        if "pidfile" in event:
            pathlib.Path(event["pidfile"]).write_text(str(os.getpid()))
        if "parties" in event:
            arrived = pathlib.Path(event["barrier"])
            (arrived / context.aws_request_id).touch()
            deadline = time.monotonic() + 20
            while len(list(arrived.iterdir())) < event["parties"] and time.monotonic() < deadline:
                time.sleep(0.02)
        if "sleep" in event:
            time.sleep(event["sleep"])
        if "raise" in event:
            raise KeyError(event["raise"])
        if "exit" in event:
            os._exit(event["exit"])
        return {"version": VERSION, "calls": CALLS, "pid": os.getpid(),
                "color": os.environ.get("COLOR"), "request_id": context.aws_request_id,
                "stream": context.log_stream_name,
                "stream_env": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
"""


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", textwrap.dedent(source))
    return buffer.getvalue()


def role_arn(emulator: EmulatorProcess) -> str:
    iam = emulator.client("iam")
    try:
        return str(iam.get_role(RoleName="warm-test-role")["Role"]["Arn"])
    except ClientError:
        created = iam.create_role(RoleName="warm-test-role", AssumeRolePolicyDocument="{}")
        return str(created["Role"]["Arn"])


def create_function(
    emulator: EmulatorProcess, name: str, source: str = COUNTER, *, timeout: int = 30
) -> None:
    emulator.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn(emulator),
        Handler="index.handler",
        Code={"ZipFile": zip_of(source)},
        Timeout=timeout,
    )


def invoke(emulator: EmulatorProcess, name: str, event: dict[str, Any]) -> dict[str, Any]:
    """The answer with its payload decoded (``body``) and the log tail (``log``)."""
    answer: dict[str, Any] = emulator.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(event), LogType="Tail"
    )
    answer["body"] = json.loads(answer["Payload"].read())
    answer["log"] = base64.b64decode(answer.get("LogResult", "")).decode()
    return answer


def invoke_together(
    emulator: EmulatorProcess, name: str, barrier: Path, parties: int
) -> list[dict[str, Any]]:
    """``parties`` invocations that can only return once all of them run at the same time."""
    barrier.mkdir()
    event = {"parties": parties, "barrier": str(barrier)}
    with ThreadPoolExecutor(parties) as executor:
        futures = [executor.submit(invoke, emulator, name, event) for _ in range(parties)]
        return [future.result() for future in futures]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting for its parent)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return "\nState:\tZ" not in status


def eventually(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def test_module_state_survives_and_each_invocation_gets_its_own_context_and_log(
    local_emulator: EmulatorProcess,
) -> None:
    create_function(local_emulator, "warm")
    first = invoke(local_emulator, "warm", {"n": 1})
    second = invoke(local_emulator, "warm", {"n": 2})

    assert "FunctionError" not in first and "FunctionError" not in second, second["body"]
    assert second["body"]["pid"] == first["body"]["pid"]
    assert (first["body"]["calls"], second["body"]["calls"]) == (1, 2)
    # The request id and the log stream are the invocation's, not frozen at the worker's start.
    assert first["body"]["request_id"] != second["body"]["request_id"]
    assert first["body"]["stream"] != second["body"]["stream"]
    assert second["body"]["stream_env"] == second["body"]["stream"]
    # Each log has that invocation's output only; the import's output goes to the first.
    assert "init" in first["log"] and "call 1 in" in first["log"]
    assert "call 2 in" in second["log"]
    assert "init" not in second["log"] and "call 1 in" not in second["log"]
    assert f"START RequestId: {second['body']['request_id']}" in second["log"]


def test_a_redeployed_function_gets_a_fresh_environment(local_emulator: EmulatorProcess) -> None:
    lam = local_emulator.client("lambda")
    create_function(local_emulator, "redeployed")
    invoke(local_emulator, "redeployed", {})
    old = invoke(local_emulator, "redeployed", {})["body"]
    assert (old["version"], old["calls"]) == ("v1", 2)

    lam.update_function_code(
        FunctionName="redeployed", ZipFile=zip_of(COUNTER.replace('"v1"', '"v2"'))
    )
    new = invoke(local_emulator, "redeployed", {})["body"]
    assert (new["version"], new["calls"]) == ("v2", 1)
    assert new["pid"] != old["pid"]
    assert eventually(lambda: not running(old["pid"])), "the old worker was not retired"

    lam.update_function_configuration(
        FunctionName="redeployed", Environment={"Variables": {"COLOR": "blue"}}
    )
    configured = invoke(local_emulator, "redeployed", {})["body"]
    assert (configured["color"], configured["calls"]) == ("blue", 1)
    assert configured["pid"] != new["pid"]


def test_concurrent_invocations_run_in_parallel_workers(
    local_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    create_function(local_emulator, "parallel")
    answers = invoke_together(local_emulator, "parallel", tmp_path / "arrived", 3)

    assert all("FunctionError" not in answer for answer in answers), answers
    assert len({answer["body"]["pid"] for answer in answers}) == 3
    # The workers stay warm: the next invocation reuses one of them.
    again = invoke(local_emulator, "parallel", {})["body"]
    assert again["pid"] in {answer["body"]["pid"] for answer in answers}
    assert again["calls"] == 2


def test_a_timeout_kills_only_that_worker_and_the_next_invocation_works(
    local_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    create_function(local_emulator, "slow", timeout=5)
    pids = {a["body"]["pid"] for a in invoke_together(local_emulator, "slow", tmp_path / "b", 2)}
    assert len(pids) == 2

    pidfile = tmp_path / "slow.pid"
    slow = invoke(local_emulator, "slow", {"sleep": 60, "pidfile": str(pidfile)})
    assert slow["FunctionError"] == "Unhandled"
    assert slow["body"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 5.00 seconds" in slow["body"]["errorMessage"]
    killed = int(pidfile.read_text())
    (survivor,) = pids - {killed}
    assert eventually(lambda: not running(killed))
    assert running(survivor)

    after = invoke(local_emulator, "slow", {})
    assert "FunctionError" not in after, after["body"]
    assert (after["body"]["pid"], after["body"]["calls"]) == (survivor, 2)


def test_an_exception_keeps_the_worker_and_an_exit_or_import_error_replaces_it(
    local_emulator: EmulatorProcess,
) -> None:
    create_function(local_emulator, "faulty")
    warm = invoke(local_emulator, "faulty", {})["body"]

    raised = invoke(local_emulator, "faulty", {"raise": "no such key"})
    assert raised["FunctionError"] == "Unhandled"
    assert raised["body"]["errorType"] == "KeyError"
    assert any("index.py" in frame for frame in raised["body"]["stackTrace"])
    kept = invoke(local_emulator, "faulty", {})["body"]
    assert (kept["pid"], kept["calls"]) == (warm["pid"], 3)

    exited = invoke(local_emulator, "faulty", {"exit": 7})
    assert exited["body"]["errorType"] == "Runtime.ExitError"
    assert "exit status 7" in exited["body"]["errorMessage"]
    replaced = invoke(local_emulator, "faulty", {})["body"]
    assert replaced["pid"] != warm["pid"] and replaced["calls"] == 1

    create_function(local_emulator, "unimportable", "import no_such_module\n")
    for _ in range(2):  # the failed environment is not kept: each invocation tries again
        broken = invoke(local_emulator, "unimportable", {})
        assert broken["body"]["errorType"] == "Runtime.ImportModuleError"
        assert "no_such_module" in broken["body"]["errorMessage"]


def test_no_worker_is_left_after_the_emulator_stops(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "emulator")
    try:
        create_function(emulator, "stopped")
        pidfile = tmp_path / "busy.pid"
        busy = threading.Thread(
            target=lambda: _ignore_errors(
                lambda: invoke(emulator, "stopped", {"sleep": 60, "pidfile": str(pidfile)})
            ),
            daemon=True,
        )
        busy.start()
        assert eventually(pidfile.exists, 30), "the busy invocation did not start"
        answers = invoke_together(emulator, "stopped", tmp_path / "arrived", 2)
        pids = {int(pidfile.read_text()), *(answer["body"]["pid"] for answer in answers)}
    finally:
        returncode = emulator.stop()

    assert returncode == 0
    assert len(pids) == 3
    assert [pid for pid in pids if running(pid)] == []
    log = (tmp_path / "emulator" / "emulator.log").read_text()
    assert "lambda workers: pool closed" in log
    assert not list((tmp_path / "emulator" / "lambda" / "workers").glob("*.log"))
    busy.join(30)


def _ignore_errors(call: Callable[[], object]) -> None:
    # The emulator stopping under the request is what the test does.
    with contextlib.suppress(Exception):
        call()


# --- the pool itself, in this process -------------------------------------------------------


def _pool_spec(code_dir: Path) -> WorkerSpec:
    (code_dir / "index.py").write_text(textwrap.dedent(COUNTER))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "AWS_LAMBDA_FUNCTION_NAME": "pooled",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/pooled",
        "_LOCAL_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:pooled",
    }
    arn = env["_LOCAL_FUNCTION_ARN"]
    return WorkerSpec("config-1", arn, "pooled", "index.handler", code_dir, env)


def test_the_pool_caps_its_workers_ends_idle_ones_and_empties_on_close(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    spec = _pool_spec(tmp_path / "code")
    pool = WorkerPool(EmulatorContext(0, tmp_path / "state"), per_config=1, idle_seconds=1)
    try:

        def call(number: int) -> dict[str, Any]:
            request = Request(f"request-{number}", f"stream-{number}", b"{}", 30)
            outcome = pool.invoke(spec, request)
            assert outcome.status == "ok", outcome
            result: dict[str, Any] = json.loads(outcome.payload)
            return result

        # One worker allowed: two invocations at once take turns on it.
        with ThreadPoolExecutor(2) as executor:
            together = list(executor.map(call, [1, 2]))
        assert {r["pid"] for r in together} == {together[0]["pid"]}
        assert sorted(r["calls"] for r in together) == [1, 2]

        (idle,) = pool.workers()
        assert eventually(lambda: not pool.workers(), 15), "the idle worker was not ended"
        assert eventually(lambda: idle.process.poll() is not None)

        fresh = call(3)
        assert fresh["calls"] == 1 and fresh["pid"] != idle.process.pid
        (last,) = pool.workers()
    finally:
        pool.close()
    assert pool.workers() == []
    assert last.process.poll() is not None
    assert pool.invoke(spec, Request("late", "late", b"{}", 30)).status == "stopped"
