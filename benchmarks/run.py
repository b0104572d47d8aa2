#!/usr/bin/env python3
"""Benchmarks of cdk-sagemaker-rl, printed as a markdown table.

Every figure that has a goal is a *ratio* against a baseline measured in the same run, on the
same machine, interleaved with it (so a busy machine slows both sides alike). Each measurement is
repeated and the median is reported. Nothing here is asserted by the unit tests: see
benchmarks/README.md for how to run and read it.

    .venv/bin/python benchmarks/run.py [--repeat 3] [--requests 200] [--demo] [--suite]
        [--distributed]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The handler tree (every bundled function's task root) and the predict handler's module in it.
HANDLER_ROOT = ROOT / "lambda"
PREDICT_MODULE = "predict.index"
ENVIRONMENTS_KEY = "cdk-sagemaker-rl:environments"
ENDPOINT = "rl-benchmark-endpoint"
OBSERVATION = [0.0123, -0.4567, 0.0312, 0.2718]
#: Each predict run is split into this many alternating handler/raw batches.
BATCHES_PER_RUN = 10
ANSWER = json.dumps({"predictions": [[0.91, 0.09]]}).encode()

BARE_APP = textwrap.dedent(
    """
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    app = cdk.App()
    stack = cdk.Stack(app, "Bare")
    s3.Bucket(stack, "Bucket")
    app.synth()
    """
)


# ============================================================================================
# Child processes: wall time and peak memory
# ============================================================================================


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    #: Peak resident set size in MiB of the largest process of the child's tree that was waited
    #: for (the Python process or its jsii node kernel), from wait4()'s rusage (Linux: KiB).
    max_rss_mib: float
    #: User + system CPU seconds of the child and its waited-for descendants (the node kernel).
    cpu_seconds: float = 0.0


def run_child(
    command: Sequence[str], env: Mapping[str, str], cwd: Path = ROOT, timeout: float = 900
) -> ChildRun:
    """Runs ``command`` to completion; fails loudly (with its stderr) if it fails."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=stderr
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                raise TimeoutError(f"{command} took more than {timeout} s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{command} exited with {process.returncode}:\n{tail}")
    return ChildRun(elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def synth(script: Path, context: Mapping[str, Any], workdir: Path) -> ChildRun:
    """One ``python <script>`` synth, as the CDK CLI runs the app (fresh output folder)."""
    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-", dir=workdir))
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(dict(context)),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    try:
        return run_child([sys.executable, str(script)], env)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def environments(count: int) -> dict[str, Any]:
    """``count`` environments shaped like the reference app's ``dev`` one."""
    dev = cdk_json_context()[ENVIRONMENTS_KEY]["dev"]
    return {f"env{index:02d}": dict(dev) for index in range(count)}


# ============================================================================================
# A local server speaking the sagemaker-runtime InvokeEndpoint protocol
# ============================================================================================


class _InvocationsHandler(BaseHTTPRequestHandler):
    """Answers ``POST /endpoints/<ENDPOINT>/invocations`` with a fixed JSON document."""

    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: without this, Nagle's algorithm and the client's
    # delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        found = self.path.startswith(f"/endpoints/{ENDPOINT}/invocations")
        body = ANSWER if found else b""
        # One write for the whole response: a response split over two TCP segments can wait on
        # the peer's delayed ACK, which would add noise unrelated to the client being measured.
        head = (
            f"HTTP/1.1 {200 if found else 404} {'OK' if found else 'Not Found'}\r\n"
            "Content-Type: application/json\r\n"
            "x-Amzn-Invoked-Production-Variant: AllTraffic\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_runtime() -> None:
    """The server process: prints its port, serves until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _InvocationsHandler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


class RuntimeServer:
    """The runtime server in its own process (``run.py --serve-runtime``), so that it neither
    competes for the measuring process's GIL nor shows up in its CPU time."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-runtime"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


@contextlib.contextmanager
def sandboxed_aws(endpoint_url: str) -> Iterator[None]:
    """Dummy credentials, no profile, the runtime endpoint on 127.0.0.1: never real AWS."""
    overrides = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
        "ENDPOINT_NAME": ENDPOINT,
        "CONTENT_TYPE": "application/json",
        "ACCEPT": "application/json",
    }
    removed = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_PROFILE")}
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.update(removed)


def load_predict_module() -> ModuleType:
    """``predict.index`` imported as Lambda does on a cold start (a fresh module, the handler
    tree as the task root), the shared logger included."""
    if str(HANDLER_ROOT) not in sys.path:
        sys.path.insert(0, str(HANDLER_ROOT))
    for name in [name for name in sys.modules if name.partition(".")[0] in {"predict", "_shared"}]:
        del sys.modules[name]
    return importlib.import_module(PREDICT_MODULE)


def per_request(call: Callable[[], object], requests: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per call: the server is another process, so
    the CPU figure is the client side's own work, whatever else the machine is doing."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        call()
    return (time.perf_counter() - wall) / requests, (time.process_time() - cpu) / requests


COLD_IMPORT = textwrap.dedent(
    """
    import importlib, sys, time
    started = time.perf_counter()
    if sys.argv[1] == "handler":
        sys.path.insert(0, sys.argv[2])
        importlib.import_module(sys.argv[3])
    else:
        import boto3
        boto3.client("sagemaker-runtime")
    print(time.perf_counter() - started)
    """
)


def cold_import_seconds(kind: str, endpoint_url: str) -> float:
    with sandboxed_aws(endpoint_url):
        env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-c", COLD_IMPORT, kind, str(HANDLER_ROOT), PREDICT_MODULE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(result.stdout.strip().splitlines()[-1])


# ============================================================================================
# The table
# ============================================================================================


@dataclass
class Row:
    name: str
    value: str
    baseline: str = ""
    ratio: float | None = None
    goal: float | None = None
    notes: str = ""

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}"
        goal = "" if self.goal is None else f"<= {self.goal:g}"
        if self.ratio is None or self.goal is None:
            verdict = ""
        else:
            verdict = "met" if self.ratio <= self.goal else "**missed**"
        return [self.name, self.value, self.baseline, ratio, goal, verdict, self.notes]


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def markdown(self) -> str:
        header = [
            "measurement",
            "value (median)",
            "baseline (median)",
            "ratio",
            "goal",
            "verdict",
            "notes",
        ]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row.cells()) + " |" for row in self.rows]
        return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def bench_synth(report: Report, repeat: int, stacks: int) -> None:
    base = cdk_json_context()
    reference_context = {**base, "environment": "dev"}
    scaled_context = {**base, ENVIRONMENTS_KEY: environments(stacks)}
    runs: dict[str, list[ChildRun]] = {"bare": [], "one": [], "many": []}
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        work = Path(tmp)
        bare_script = work / "bare_app.py"
        bare_script.write_text(BARE_APP)
        # Warm the file cache (jsii bundle, aws-cdk-lib) so the first timed run is not an outlier,
        # and synth the reference app once too: its first run after an install also extracts
        # cdk-nag's jsii package into the jsii cache, which no later run repeats.
        synth(bare_script, base, work)
        synth(ROOT / "app.py", reference_context, work)
        for round_ in range(repeat):
            order = [
                ("bare", bare_script, base),
                ("one", ROOT / "app.py", reference_context),
                ("many", ROOT / "app.py", scaled_context),
            ]
            # Rotate the order each round so no side always runs first.
            order = order[round_ % 3 :] + order[: round_ % 3]
            for key, script, context in order:
                runs[key].append(synth(script, context, work))
                print(
                    f"  synth {key:<4} round {round_ + 1}: {runs[key][-1].seconds:.2f} s, "
                    f"{runs[key][-1].max_rss_mib:.0f} MiB, {runs[key][-1].cpu_seconds:.2f} s CPU",
                    file=sys.stderr,
                )
    bare = median([r.seconds for r in runs["bare"]])
    one = median([r.seconds for r in runs["one"]])
    many = median([r.seconds for r in runs["many"]])
    report.rows.append(
        Row(
            "synth overhead: reference app (1 stack) / bare one-bucket app",
            f"{one:.2f} s",
            f"{bare:.2f} s",
            one / bare,
            1.3,
            f"`python app.py`, cdk.json context, environment=dev; {repeat} runs each",
        )
    )
    bare_cpu = median([r.cpu_seconds for r in runs["bare"]])
    one_cpu = median([r.cpu_seconds for r in runs["one"]])
    many_cpu = median([r.cpu_seconds for r in runs["many"]])
    report.rows.append(
        Row(
            "synth overhead, CPU time (python + jsii node)",
            f"{one_cpu:.2f} s",
            f"{bare_cpu:.2f} s",
            one_cpu / bare_cpu,
            notes="user+system CPU of the synth process tree: steadier than wall time on a "
            "loaded machine",
        )
    )
    report.rows.append(
        Row(
            f"synth scale: {stacks} environment stacks / 1 stack",
            f"{many:.2f} s",
            f"{one:.2f} s",
            many / one,
            2.0,
            f"generated context with {stacks} dev-like environments",
        )
    )
    report.rows.append(
        Row(
            f"synth scale, CPU time: {stacks} stacks / 1 stack",
            f"{many_cpu:.2f} s",
            f"{one_cpu:.2f} s",
            many_cpu / one_cpu,
            notes="user+system CPU of the synth process tree",
        )
    )
    for key, label in (
        ("bare", "bare app"),
        ("one", "reference app, 1 stack"),
        ("many", f"reference app, {stacks} stacks"),
    ):
        rss = median([r.max_rss_mib for r in runs[key]])
        report.rows.append(
            Row(
                f"peak memory: {label}",
                f"{rss:.0f} MiB",
                notes="max RSS of the largest process (python or jsii node)",
            )
        )


def bench_predict(report: Report, repeat: int, requests: int) -> None:
    import boto3

    server = RuntimeServer()
    try:
        with sandboxed_aws(server.url):
            module = load_predict_module()
            raw = boto3.client("sagemaker-runtime", endpoint_url=server.url)
            event = {"instances": [OBSERVATION]}
            body = json.dumps(event, separators=(",", ":")).encode()
            with contextlib.redirect_stdout(io.StringIO()):
                answer = module.handler(event, None)
            assert answer["statusCode"] == 200, answer
            assert json.loads(answer["body"]) == json.loads(ANSWER), answer

            def handler_call() -> object:
                return module.handler(event, None)

            def raw_call() -> object:
                reply = raw.invoke_endpoint(
                    EndpointName=ENDPOINT,
                    ContentType="application/json",
                    Accept="application/json",
                    Body=body,
                )
                return json.loads(reply["Body"].read())

            for warm in (handler_call, raw_call):  # connection pools, lazy imports
                with contextlib.redirect_stdout(io.StringIO()):
                    per_request(warm, 20)
            # Small alternating batches: a burst of load from elsewhere on the machine then
            # hits both sides instead of one run of one side. The handler writes one JSON log
            # line per request (Lambda would capture it); it goes to a buffer here.
            handler_times: list[tuple[float, float]] = []
            raw_times: list[tuple[float, float]] = []
            batch = max(1, requests // BATCHES_PER_RUN)
            for index in range(repeat * BATCHES_PER_RUN):
                sides = [(handler_times, handler_call), (raw_times, raw_call)]
                for times, call in sides if index % 2 == 0 else sides[::-1]:
                    with contextlib.redirect_stdout(io.StringIO()):
                        times.append(per_request(call, batch))
            cold_handler: list[float] = []
            cold_boto3: list[float] = []
            for _ in range(max(repeat, 5)):  # cheap, and noisier than the rest: a few more
                cold_handler.append(cold_import_seconds("handler", server.url))
                cold_boto3.append(cold_import_seconds("boto3", server.url))
    finally:
        server.close()
    handler = median([wall for wall, _ in handler_times])
    baseline = median([wall for wall, _ in raw_times])
    handler_cpu = median([cpu for _, cpu in handler_times])
    baseline_cpu = median([cpu for _, cpu in raw_times])
    cold, cold_baseline = median(cold_handler), median(cold_boto3)
    report.rows.append(
        Row(
            "predict overhead: handler per request / raw boto3 invoke_endpoint",
            f"{handler * 1000:.2f} ms",
            f"{baseline * 1000:.2f} ms",
            handler / baseline,
            1.1,
            f"same local runtime server on 127.0.0.1; {repeat} x {requests} requests in "
            f"alternating batches of {batch}",
        )
    )
    report.rows.append(
        Row(
            "predict overhead, client CPU time: handler / raw boto3",
            f"{handler_cpu * 1000:.2f} ms",
            f"{baseline_cpu * 1000:.2f} ms",
            handler_cpu / baseline_cpu,
            notes="CPU time of the calling process (the server is another process): steadier "
            "than wall time on a loaded machine",
        )
    )
    report.rows.append(
        Row(
            "predict cold import (module + client)",
            f"{cold * 1000:.0f} ms",
            f"{cold_baseline * 1000:.0f} ms",
            cold / cold_baseline,
            notes="baseline: `import boto3` + `boto3.client('sagemaker-runtime')`, fresh process",
        )
    )


def bench_make(report: Report, target: str, label: str, first_line: str | None) -> None:
    """Times ``make <target>`` from the repo root; optionally the first output line matching
    ``first_line`` too (e.g. the demo's first prediction)."""
    started = time.perf_counter()
    first: float | None = None
    pattern = re.compile(first_line) if first_line else None
    process = subprocess.Popen(
        ["make", target], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        sys.stderr.write(f"  [{target}] {line}")
        if pattern and first is None and pattern.search(line):
            first = time.perf_counter() - started
    code = process.wait()
    total = time.perf_counter() - started
    notes = f"exit code {code}"
    if pattern:
        notes += "; first match of " + (
            f"`{first_line}` after {first:.1f} s" if first is not None else f"`{first_line}`: none"
        )
    report.rows.append(Row(label, f"{total:.1f} s", notes=notes))


def machine_line() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load} at start"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--requests", type=int, default=200, help="predict requests per run")
    parser.add_argument("--stacks", type=int, default=10, help="environments of the scaled app")
    parser.add_argument("--skip-synth", action="store_true", help="skip the synth measurements")
    parser.add_argument("--skip-predict", action="store_true", help="skip the predict ones")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also time `make demo` (README command 1) and run `make destroy` afterwards",
    )
    parser.add_argument(
        "--demo-first-line",
        default=r"(?i)\bpredict",
        help="regex of the demo output line that marks the first prediction",
    )
    parser.add_argument("--suite", action="store_true", help="also time `make test`")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="also train the RLlib example on 1 and on 2 local hosts (long; benchmarks/"
        "distributed.py)",
    )
    parser.add_argument("--serve-runtime", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # A distributed run trains for minutes: once, unless --repeat was given.
    args.repeat_given = any(a.startswith("--repeat") for a in (argv or sys.argv[1:]))
    if args.serve_runtime:
        serve_runtime()
        return 0
    if args.repeat < 1 or args.requests < 1 or args.stacks < 2:
        parser.error("--repeat and --requests must be >= 1, --stacks >= 2")

    report = Report()
    print(f"benchmarking ({machine_line()})", file=sys.stderr)
    if not args.skip_synth:
        bench_synth(report, args.repeat, args.stacks)
    if not args.skip_predict:
        bench_predict(report, args.repeat, args.requests)
    if args.demo:
        try:
            bench_make(
                report, "demo", "local mode: `make demo` (README command 1)", args.demo_first_line
            )
        finally:
            subprocess.run(
                ["make", "destroy"],
                cwd=ROOT,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    if args.distributed:
        from distributed import measure, rows  # benchmarks/distributed.py, next to this file

        report.rows += rows(measure(args.repeat if args.repeat_given else 1), Row)
    if args.suite:
        bench_make(report, "test", "test suite: `make test` wall time", None)
    runs = f"medians of {args.repeat} runs"
    if args.distributed:
        runs += " (the RLlib rows: as many runs as their notes say)"
    print(f"_{machine_line()}; {runs}._\n")
    print(report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
