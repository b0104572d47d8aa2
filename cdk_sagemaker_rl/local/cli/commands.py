"""What the CLI's commands do: deploy, predict, play, destroy, status.

``demo`` is ``deploy`` + ``predict`` + ``play`` (see ``main``). Each command works on one
:class:`.State`; deploy and destroy hold its lock for their whole run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .bootstrap import bootstrap
from .cdk_cli import SYNTHESIZE, run_cdk
from .deployed_stack import (
    client,
    failure_message,
    failure_reasons,
    named_output,
    stack_outputs,
)
from .emulator_process import start_emulator, stop_emulator
from .messages import LocalModeError, say
from .state import State, exclusive
from .target import STACK, aws_env

__all__ = ["deploy", "destroy", "play", "predict", "require_local_extra", "status"]

#: What local mode imports besides the library: the emulator and the RL toolkit.
LOCAL_EXTRA = ("moto", "boto3", "flask", "torch", "stable_baselines3", "gymnasium")


def require_local_extra() -> None:
    """Fail early, naming the extra, when the emulator or the RL toolkit is not installed."""
    missing = [name for name in LOCAL_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise LocalModeError(
            f"local mode needs {', '.join(missing)}, which are not installed. Install the "
            "'local' extra: pip install -e '.[local]' (or run `make demo`, which does)."
        )


def deploy(
    state: State,
    *,
    hyperparameters: Mapping[str, Any] | None = None,
    source_dir: str | None = None,
    context: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Bootstrap (unless done) and deploy the reference stack; its outputs.

    ``context`` is passed to ``cdk deploy`` as ``--context KEY=VALUE`` (reference-app settings).
    """
    require_local_extra()
    with exclusive(state, "deploy"):
        running = state.emulator_pid() is not None
        pid = start_emulator(state)
        bootstrap(state, pid, fresh=not running)
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
        for key, value in (context or {}).items():
            args += ["--context", f"{key}={value}"]
        if hyperparameters:
            args += ["--context", f"hyperparameters={json.dumps(dict(hyperparameters))}"]
        if source_dir:
            args += ["--context", f"source_dir={Path(source_dir).resolve()}"]
        say(f"deploying {STACK}: training runs on this machine, then the endpoint is served")
        started = time.monotonic()
        code, lines = run_cdk(state, args, emulator_pid=pid)
        if code != 0:
            reasons = failure_reasons(state) or [line for line in lines if "FAILED" in line]
            if _rolled_back_to_previous(state):
                # An update that failed was rolled back: the previous deployment still serves,
                # as it would on AWS. `destroy` stops it.
                say(f"{STACK} was rolled back: the previous deployment keeps serving")
            else:
                # Nothing else is left running after a failed deploy: no useful state is held.
                stop_emulator(state)
            raise LocalModeError(failure_message(code, reasons))
        say(f"deployed in {time.monotonic() - started:.0f} s")
        return stack_outputs(state)


def _rolled_back_to_previous(state: State) -> bool:
    """True when a failed update left the stack as it was before (UPDATE_ROLLBACK_COMPLETE)."""
    try:
        stacks = client("cloudformation", state).describe_stacks(StackName=STACK)["Stacks"]
    except Exception:  # no stack (a failed first deploy), or no emulator to ask
        return False
    return bool(stacks) and stacks[0].get("StackStatus") == "UPDATE_ROLLBACK_COMPLETE"


def predict(state: State, observation: Sequence[float]) -> Any:
    """One prediction through the deployed predict Lambda, run by the emulator."""
    outputs = stack_outputs(state)
    function = named_output(outputs, "PredictFunctionName")
    response = client("lambda", state).invoke(
        FunctionName=function, Payload=json.dumps({"instances": [list(observation)]}).encode()
    )
    payload = json.loads(response["Payload"].read())
    if response.get("FunctionError") or payload.get("statusCode") != 200:
        raise LocalModeError(f"predict failed: {payload}")
    return json.loads(payload["body"])


def _load_handler(state: State, function: str) -> Any:
    """The deployed predict handler: its synthesized asset, with the function's environment."""
    config = client("lambda", state).get_function(FunctionName=function)["Configuration"]
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
    # The asset root is the task root, as in Lambda: the handler's own imports resolve from it,
    # and a dotted handler (package.module.function) names a file below it.
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(
        "local_predict_handler", code_dir / f"{module_name.replace('.', '/')}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the handler look their module up
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def play(state: State, episodes: int = 20, seed: int = 0) -> list[float]:
    """Play CartPole-v1 acting only through the predict handler; one batched call per step."""
    import gymnasium as gym

    handler = _load_handler(state, named_output(stack_outputs(state), "PredictFunctionName"))
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
    say(f"played {episodes} episodes through {calls} predict calls")
    return totals


def destroy(state: State) -> None:
    with exclusive(state, "destroy"):
        pid = state.emulator_pid()
        if pid is not None:
            say(f"destroying {STACK}")
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
                say("cdk destroy failed; stopping the emulator anyway:\n" + "\n".join(lines[-10:]))
            stop_emulator(state)
        else:
            say("no emulator is running: nothing is deployed")
        with contextlib.suppress(FileNotFoundError):
            state.outputs.unlink()


def status(state: State) -> dict[str, Any]:
    pid = state.emulator_pid()
    return {
        "emulator": {"pid": pid, "port": state.emulator_port()} if pid else None,
        "outputs": stack_outputs(state) if pid else {},
        "state_dir": str(state.root),
    }
