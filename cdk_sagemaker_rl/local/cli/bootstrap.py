"""``cdk bootstrap`` of the emulator's environment, skipped when the emulator already holds it.

A redeploy to a running emulator finds the bootstrap stack the first deploy created; running
``cdk bootstrap`` again would only report "no changes" after ~2 s. It is skipped when the emulator
has the ``CDKToolkit`` stack in a complete state with the bootstrap version this CLI deploys (the
``/cdk-bootstrap/<qualifier>/version`` parameter, and the stack's ``BootstrapVersion`` output
when it has one: the emulator's bootstrap stack reports no outputs) and its staging bucket;
anything else, or any doubt, runs the real ``cdk bootstrap``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .cdk_cli import run_cdk
from .deployed_stack import client
from .messages import LocalModeError, say
from .state import State
from .target import ACCOUNT, REGION, ROOT

__all__ = ["bootstrap", "bootstrapped_version", "expected_bootstrap_version"]

BOOTSTRAP_STACK = "CDKToolkit"
QUALIFIER = "hnb659fds"
#: The template ``cdk bootstrap`` deploys, shipped with the CLI.
BOOTSTRAP_TEMPLATE = (
    ROOT / "node_modules" / "aws-cdk" / "lib" / "api" / "bootstrap" / "bootstrap-template.yaml"
)
#: Stack states in which the bootstrap resources exist and no operation runs on them.
_STABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
_VERSION_OUTPUT = re.compile(
    r"^Outputs:\n(?:.*\n)*?  BootstrapVersion:\n(?:    .*\n)*?    Value: '?(\d+)'?$", re.MULTILINE
)


def expected_bootstrap_version(template: Path = BOOTSTRAP_TEMPLATE) -> int | None:
    """The ``BootstrapVersion`` output of the CLI's bootstrap template; None when not found."""
    try:
        match = _VERSION_OUTPUT.search(template.read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def bootstrapped_version(state: State) -> int | None:
    """The bootstrap version the emulator of ``state`` holds, None unless it is complete.

    Complete: the stack is in a stable complete state, its version (the SSM parameter, and the
    ``BootstrapVersion`` output when the stack reports outputs: they must agree) is known, and
    its staging bucket exists.
    """
    from botocore.config import Config

    # One quick attempt each: a busy or dead emulator means "bootstrap" (whose CLI call then
    # reports a dead emulator), not a wait.
    config = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
    try:
        cloudformation = client("cloudformation", state, config=config)
        stacks = cloudformation.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
        if not stacks or stacks[0].get("StackStatus") not in _STABLE:
            return None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
        parameter = client("ssm", state, config=config).get_parameter(
            Name=f"/cdk-bootstrap/{QUALIFIER}/version"
        )
        version = int(parameter["Parameter"]["Value"])
        if int(outputs.get("BootstrapVersion", version)) != version:
            return None
        bucket = outputs.get("BucketName", f"cdk-{QUALIFIER}-assets-{ACCOUNT}-{REGION}")
        client("s3", state, config=config).head_bucket(Bucket=bucket)
    except Exception:  # no stack, no parameter, no bucket, no emulator: bootstrap
        return None
    return version


def bootstrap(state: State, emulator_pid: int, *, fresh: bool = False) -> None:
    """``cdk bootstrap`` of the emulator's environment, unless it already is bootstrapped.

    ``fresh``: the emulator was just started, so it holds nothing (it persists nothing) and is
    not asked.
    """
    expected = None if fresh else expected_bootstrap_version()
    if expected is not None and bootstrapped_version(state) == expected:
        say(
            f"aws://{ACCOUNT}/{REGION} is already bootstrapped in the emulator "
            f"({BOOTSTRAP_STACK} version {expected}): cdk bootstrap skipped"
        )
        return
    say(f"bootstrapping aws://{ACCOUNT}/{REGION} in the emulator")
    code, lines = run_cdk(
        state,
        ["bootstrap", f"aws://{ACCOUNT}/{REGION}"],
        emulator_pid=emulator_pid,
        show=False,
        app=None,  # the environment is given: no synthesis (the deploy synthesizes)
    )
    if code != 0:
        raise LocalModeError("cdk bootstrap failed:\n" + "\n".join(lines[-20:]))
