"""``python -m cdk_sagemaker_rl.local``: deploy the reference stack to the built-in emulator.

Commands:

- ``deploy``   start the emulator (if needed), ``cdk bootstrap`` + ``cdk deploy`` the reference
               stack into it; training really runs here, the endpoint is really served here;
- ``predict``  call the deployed predict Lambda (through the emulator) with one observation;
- ``play``     play CartPole-v1 episodes acting only through the predict handler;
- ``demo``     ``deploy`` + ``predict`` + ``play`` (README command 1);
- ``destroy``  ``cdk destroy`` and stop every process local mode started;
- ``status``   what is running.

Everything local mode writes lives under ``.local-mode/`` (``--state-dir``): the emulator's pid,
log and work trees, the deploy lock and the stack outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "RLCartPole-dev"
DEFAULT_PORT = 4599
PORT_ENV = "CDK_SAGEMAKER_RL_LOCAL_PORT"
#: What local mode imports besides the library: the emulator and the RL toolkit.
LOCAL_EXTRA = ("moto", "boto3", "flask", "torch", "stable_baselines3", "gymnasium")
READY_TIMEOUT = 90.0
CDK_TIMEOUT = 45 * 60.0


class LocalModeError(RuntimeError):
    """A failure local mode explains in one message (printed without a traceback)."""


# ----------------------------------------------------------------------------------- plumbing
def _say(message: str) -> None:
    print(f"[local] {message}", flush=True)


def require_local_extra() -> None:
    """Fail early, naming the extra, when the emulator or the RL toolkit is not installed."""
    missing = [name for name in LOCAL_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise LocalModeError(
            f"local mode needs {', '.join(missing)}, which are not installed. Install the "
            "'local' extra: pip install -e '.[local]' (or run `make demo`, which does)."
        )


def aws_env(port: int) -> dict[str, str]:
    """Environment for every AWS client local mode runs: the emulator, dummy credentials."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in ("AWS_CA_BUNDLE",)
    }
    env.update(
        {
            "AWS_ENDPOINT_URL": f"http://localhost:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": REGION,
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
    )
    return env


class State:
    """The files of one local-mode installation."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root.resolve()
        self.port = port
        self.emulator_dir = self.root / "emulator"
        self.outputs = self.root / "outputs.json"
        self.lock_file = self.root / "deploy.lock"
        self.cdk_out = self.root / "cdk.out"
        #: Where the CLI runs when it needs no app (no cdk.json there).
        self.no_app_dir = self.root / "cdk-no-app"

    @property
    def pid_file(self) -> Path:
        return self.emulator_dir / "emulator.pid"

    @property
    def log_file(self) -> Path:
        return self.emulator_dir / "emulator.log"

    @property
    def training_log(self) -> Path:
        return self.emulator_dir / "training.log"

    def emulator_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def emulator_port(self) -> int | None:
        try:
            return int(json.loads((self.emulator_dir / "emulator.json").read_text())["port"])
        except (OSError, ValueError, KeyError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as dead.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


@contextlib.contextmanager
def exclusive(state: State, what: str) -> Iterator[None]:
    """One deploy/destroy at a time: a second one is refused at once, never queued or hung."""
    state.root.mkdir(parents=True, exist_ok=True)
    with open(state.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LocalModeError(
                f"cannot {what}: a local-mode deploy or destroy is already running ({holder}). "
                "Wait for it to finish, or stop it first."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {what}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------- emulator
def start_emulator(state: State) -> int:
    """Start the emulator in the background (or reuse the running one); return its pid."""
    pid = state.emulator_pid()
    if pid is not None:
        port = state.emulator_port()
        if port != state.port:
            raise LocalModeError(
                f"an emulator (pid {pid}) already runs for {state.root} on port {port}, not "
                f"{state.port}: run `python -m cdk_sagemaker_rl.local destroy` first."
            )
        _say(f"emulator already running (pid {pid}) on http://localhost:{state.port}")
        return pid
    state.emulator_dir.mkdir(parents=True, exist_ok=True)
    ready_file = state.emulator_dir / "stdout.log"
    errors_file = state.emulator_dir / "stderr.log"
    with open(ready_file, "w") as out, open(errors_file, "w") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cdk_sagemaker_rl.local.emulator",
                "--port",
                str(state.port),
                "--state-dir",
                str(state.emulator_dir),
                "--region",
                REGION,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=aws_env(state.port),
            start_new_session=True,  # survives this command; `destroy` stops it
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if "emulator ready" in ready_file.read_text():
            _say(f"emulator started (pid {process.pid}) on http://localhost:{state.port}")
            return process.pid
        if process.poll() is not None:
            detail = errors_file.read_text().strip() or "(no output)"
            raise LocalModeError(
                f"the emulator could not start on port {state.port}: {detail}. Choose another "
                f"port with {PORT_ENV}=<port> or --port."
            )
        time.sleep(0.2)
    _terminate(process.pid)
    raise LocalModeError(
        f"the emulator did not become ready within {READY_TIMEOUT:.0f} s; see {state.log_file}"
    )


def _terminate(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the emulator (it stops its training jobs and model servers), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop_emulator(state: State) -> bool:
    pid = state.emulator_pid()
    if pid is None:
        return False
    _terminate(pid)
    _say(f"emulator stopped (pid {pid})")
    return True


# ---------------------------------------------------------------------------------------- cdk
def cdk_command(*args: str) -> list[str]:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        raise LocalModeError(
            f"the aws-cdk CLI is not installed ({cdk} is missing): run `npm ci` in {ROOT} "
            "(or `make demo`)."
        )
    return [str(cdk), *args]


#: ``run_cdk``'s default app: the reference app, synthesized by the CLI.
SYNTHESIZE = "synthesize"


def run_cdk(
    state: State,
    args: Sequence[str],
    *,
    emulator_pid: int | None,
    show: bool = True,
    app: str | None = SYNTHESIZE,
) -> tuple[int, list[str]]:
    """Run the CLI against the emulator, streaming its output and the training log.

    ``app`` is :data:`SYNTHESIZE` (the reference app, synthesized into ``state.cdk_out``), a cloud
    assembly directory to read instead of synthesizing, or None for no app at all: the CLI then
    runs outside the project, where no ``cdk.json`` names one (``cdk bootstrap`` of an explicit
    environment synthesizes the app only to look for more environments).
    """
    env = aws_env(state.port)
    cwd = ROOT
    if app == SYNTHESIZE:
        options = [
            *("--app", f"{sys.executable} app.py", "--output", str(state.cdk_out)),
            *("--context", "target=local", "--context", "environment=dev"),
        ]
    elif app is not None:
        options = ["--app", app]
    else:
        options = []
        cwd = state.no_app_dir
        cwd.mkdir(parents=True, exist_ok=True)
    command = cdk_command(*args, *options, "--no-notices", "--no-version-reporting")
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    stop_tail = threading.Event()
    tail = threading.Thread(
        target=_tail_training_log, args=(state.training_log, stop_tail), daemon=True
    )
    tail.start()
    watchdog_reason: list[str] = []

    def watchdog() -> None:
        started = time.monotonic()
        while process.poll() is None:
            if emulator_pid is not None and not _alive(emulator_pid):
                watchdog_reason.append(
                    f"the emulator (pid {emulator_pid}) died during the deploy; its log: "
                    f"{state.log_file}"
                )
            elif time.monotonic() - started > CDK_TIMEOUT:
                watchdog_reason.append(f"cdk did not finish within {CDK_TIMEOUT:.0f} s")
            if watchdog_reason:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                return
            time.sleep(0.5)

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        lines.append(line)
        if show and line.strip():
            print(f"  cdk | {line}", flush=True)
    code = process.wait()
    stop_tail.set()
    tail.join(timeout=2)
    guard.join(timeout=2)
    if not watchdog_reason and emulator_pid is not None and not _alive(emulator_pid):
        # cdk may notice the dead endpoint before the watchdog does: say what really happened.
        watchdog_reason.append(
            f"the emulator (pid {emulator_pid}) died during the deploy; its log: {state.log_file}"
        )
    if watchdog_reason:
        raise LocalModeError(watchdog_reason[0])
    return code, lines


_REWARD = re.compile(r"episode_reward_mean: ([-+0-9.eE]+)")


def _tail_training_log(path: Path, stop: threading.Event) -> None:
    """Show the training jobs' log lines (reward as it trains) while cdk waits for them."""
    position = path.stat().st_size if path.exists() else 0
    while not stop.is_set():
        if path.exists():
            with open(path, errors="replace") as handle:
                handle.seek(position)
                for line in handle:
                    text = line.rstrip()
                    match = _REWARD.search(text)
                    if match or "Traceback" in text or "Error" in text or "status" in text.lower():
                        print(f"  training | {text}", flush=True)
                position = handle.tell()
        stop.wait(0.5)


# ------------------------------------------------------------------------------------ clients
def _client(service: str, state: State) -> Any:
    import boto3

    env = aws_env(state.port)
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )


def stack_outputs(state: State) -> dict[str, str]:
    if state.outputs.exists():
        data = json.loads(state.outputs.read_text())
        return dict(data.get(STACK, {}))
    return {}


def _output(outputs: Mapping[str, str], name: str) -> str:
    """An output by its construct id (CDK appends a hash to the logical id)."""
    for key, value in outputs.items():
        if re.fullmatch(rf"\w*{name}[0-9A-F]{{8}}", key):
            return value
    raise LocalModeError(
        f"the deployed stack has no {name!r} output: deploy first "
        "(python -m cdk_sagemaker_rl.local deploy)"
    )


def failure_reasons(state: State) -> list[str]:
    """The stack events that failed, newest first: where a training error surfaces."""
    with contextlib.suppress(Exception):
        events = _client("cloudformation", state).describe_stack_events(StackName=STACK)
        return [
            f"{e['LogicalResourceId']}: {e['ResourceStatusReason']}"
            for e in events["StackEvents"]
            if "FAILED" in e.get("ResourceStatus", "") and e.get("ResourceStatusReason")
        ]
    return []


# ----------------------------------------------------------------------------------- commands
def deploy(
    state: State,
    *,
    hyperparameters: Mapping[str, Any] | None = None,
    source_dir: str | None = None,
) -> dict[str, str]:
    require_local_extra()
    with exclusive(state, "deploy"):
        pid = start_emulator(state)
        _say(f"bootstrapping aws://{ACCOUNT}/{REGION} in the emulator")
        code, lines = run_cdk(
            state,
            ["bootstrap", f"aws://{ACCOUNT}/{REGION}"],
            emulator_pid=pid,
            show=False,
            app=None,  # the environment is given: no synthesis (the deploy synthesizes)
        )
        if code != 0:
            raise LocalModeError("cdk bootstrap failed:\n" + "\n".join(lines[-20:]))
        args = [
            "deploy",
            STACK,
            "--method=direct",
            "--require-approval",
            "never",
            "--outputs-file",
            str(state.outputs),
            "--progress",
            "events",
        ]
        if hyperparameters:
            args += ["--context", f"hyperparameters={json.dumps(dict(hyperparameters))}"]
        if source_dir:
            args += ["--context", f"source_dir={Path(source_dir).resolve()}"]
        _say(f"deploying {STACK}: training runs on this machine, then the endpoint is served")
        started = time.monotonic()
        code, lines = run_cdk(state, args, emulator_pid=pid)
        if code != 0:
            reasons = failure_reasons(state) or [line for line in lines if "FAILED" in line]
            # Nothing is left running after a failed deploy: the emulator holds no useful state.
            stop_emulator(state)
            raise LocalModeError(
                f"cdk deploy of {STACK} failed (exit {code}).\n"
                + "\n".join(f"  {r}" for r in reasons[:5])
            )
        _say(f"deployed in {time.monotonic() - started:.0f} s")
        return stack_outputs(state)


def predict(state: State, observation: Sequence[float]) -> Any:
    """One prediction through the deployed predict Lambda, run by the emulator."""
    outputs = stack_outputs(state)
    function = _output(outputs, "PredictFunctionName")
    response = _client("lambda", state).invoke(
        FunctionName=function, Payload=json.dumps({"instances": [list(observation)]}).encode()
    )
    payload = json.loads(response["Payload"].read())
    if response.get("FunctionError") or payload.get("statusCode") != 200:
        raise LocalModeError(f"predict failed: {payload}")
    return json.loads(payload["body"])


def _load_handler(state: State, function: str) -> Any:
    """The deployed predict handler: its synthesized asset, with the function's environment."""
    config = _client("lambda", state).get_function(FunctionName=function)["Configuration"]
    environment = config.get("Environment", {}).get("Variables", {})
    template = json.loads((state.cdk_out / f"{STACK}.template.json").read_text())
    code_dir = None
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if (
            resource["Type"] == "AWS::Lambda::Function"
            and props.get("Handler") == config["Handler"]
        ):
            asset_hash = str(props["Code"]["S3Key"]).split(".")[0]
            code_dir = state.cdk_out / f"asset.{asset_hash}"
    if code_dir is None or not code_dir.is_dir():
        raise LocalModeError(f"the predict function's asset is not in {state.cdk_out}: redeploy")
    module_name, _, attribute = config["Handler"].rpartition(".")
    os.environ.update({**aws_env(state.port), **environment})
    spec = importlib.util.spec_from_file_location(
        "local_predict_handler", code_dir / f"{module_name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the handler look their module up
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def play(state: State, episodes: int = 20, seed: int = 0) -> list[float]:
    """Play CartPole-v1 acting only through the predict handler; one batched call per step."""
    import gymnasium as gym

    handler = _load_handler(state, _output(stack_outputs(state), "PredictFunctionName"))
    envs = [gym.make("CartPole-v1") for _ in range(episodes)]
    observations = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    totals = [0.0] * episodes
    active = list(range(episodes))
    calls = 0
    while active:
        with contextlib.redirect_stdout(io.StringIO()):  # one JSON log line per call otherwise
            response = handler({"instances": [observations[i].tolist() for i in active]}, None)
        calls += 1
        if response["statusCode"] != 200:
            raise LocalModeError(f"predict failed while playing: {response['body']}")
        actions = json.loads(response["body"])["predictions"]
        still = []
        for index, action in zip(active, actions, strict=True):
            observation, reward, terminated, truncated, _ = envs[index].step(int(action))
            observations[index] = observation
            totals[index] += float(reward)
            if not (terminated or truncated):
                still.append(index)
        active = still
    for env in envs:
        env.close()
    _say(f"played {episodes} episodes through {calls} predict calls")
    return totals


def destroy(state: State) -> None:
    with exclusive(state, "destroy"):
        pid = state.emulator_pid()
        if pid is not None:
            _say(f"destroying {STACK}")
            # The deploy's cloud assembly names the stack: no second synthesis (the app may have
            # changed since, or no longer synthesize).
            deployed = state.cdk_out if (state.cdk_out / "manifest.json").is_file() else None
            code, lines = run_cdk(
                state,
                ["destroy", "--force", STACK],
                emulator_pid=pid,
                app=SYNTHESIZE if deployed is None else str(deployed),
            )
            if code != 0:
                _say("cdk destroy failed; stopping the emulator anyway:\n" + "\n".join(lines[-10:]))
            stop_emulator(state)
        else:
            _say("no emulator is running: nothing is deployed")
        with contextlib.suppress(FileNotFoundError):
            state.outputs.unlink()


def status(state: State) -> dict[str, Any]:
    pid = state.emulator_pid()
    return {
        "emulator": {"pid": pid, "port": state.emulator_port()} if pid else None,
        "outputs": stack_outputs(state) if pid else {},
        "state_dir": str(state.root),
    }


# --------------------------------------------------------------------------------------- main
def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cdk_sagemaker_rl.local",
        description="Deploy the reference RL stack to the built-in local AWS emulator.",
    )
    parser.add_argument(
        "command", choices=["deploy", "predict", "play", "demo", "destroy", "status"]
    )
    parser.add_argument(
        "--state-dir", type=Path, default=ROOT / ".local-mode", help="default: .local-mode"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get(PORT_ENV, DEFAULT_PORT)),
        help=f"emulator port on 127.0.0.1 (default {DEFAULT_PORT}, or ${PORT_ENV})",
    )
    parser.add_argument(
        "--hyperparameters",
        type=json.loads,
        default=None,
        help="JSON merged into the example's hyperparameters, e.g. '{\"total_timesteps\": 4096}'",
    )
    parser.add_argument("--source-dir", help="train this directory's train.py instead")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument(
        "--observation",
        type=json.loads,
        default=[0.0, 0.0, 0.0, 0.0],
        help="predict: a CartPole observation as JSON",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    state = State(args.state_dir, args.port)
    try:
        if args.command in ("deploy", "demo"):
            outputs = deploy(
                state, hyperparameters=args.hyperparameters, source_dir=args.source_dir
            )
            _say("endpoint:         " + _output(outputs, "EndpointName"))
            _say("predict function: " + _output(outputs, "PredictFunctionName"))
        if args.command in ("deploy", "demo", "predict"):
            result = predict(state, args.observation)
            _say(f"sample prediction for {args.observation}: {result}")
        if args.command in ("demo", "play"):
            rewards = play(state, args.episodes)
            mean = sum(rewards) / len(rewards)
            _say(f"mean reward over {len(rewards)} CartPole-v1 episodes: {mean:.1f} (max 500)")
        if args.command == "destroy":
            destroy(state)
        if args.command == "status":
            print(json.dumps(status(state), indent=2))
    except LocalModeError as error:
        print(f"[local] error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("[local] interrupted", file=sys.stderr)
        return 130
    return 0
