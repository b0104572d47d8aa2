"""The real CDK CLI against the local emulator: bootstrap, deploy, failing update, destroy.

Usage (from the repository root)::

    .venv/bin/python tests/local/cli_check.py

It starts an emulator on a free port, writes a small CDK app (a Python Lambda behind a
``Custom::Greeter`` resource, an SSM parameter reading its Data, and a wait condition that a thread
of this script signals like the training state machine would), then runs ``npx cdk`` with
``AWS_ENDPOINT_URL`` pointing at the emulator:

1. ``cdk bootstrap aws://123456789012/us-east-1``;
2. ``cdk deploy --method=direct``: the CLI must wait for the wait condition and then succeed;
3. a deploy whose custom resource answers FAILED to its Update: the CLI must fail, show the
   handler's reason and the stack must be ``UPDATE_ROLLBACK_COMPLETE``;
4. ``cdk destroy --force``: the handler must receive Delete.

It prints the time of each step and exits non-zero on the first failed expectation. It is a script
rather than a test because it runs several CDK syntheses and CLI polls: about two minutes here,
over the test suite's budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import EmulatorProcess, start_emulator
from test_emulator import (
    GREETER,
    bucket,
    outputs,
    recorded_requests,
    signal_when_ready,
)

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
STACK = "EmulatorCliCheck"

CDK_APP = """
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_, aws_ssm as ssm

    app = cdk.App()
    stack = cdk.Stack(
        app, "EmulatorCliCheck",
        synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    )
    handler = lambda_.Function(
        stack, "Handler",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_asset("handler"),
        timeout=cdk.Duration.seconds(30),
        environment={"LOG_BUCKET": app.node.get_context("log_bucket")},
    )
    greeter = cdk.CustomResource(
        stack, "Greeter",
        service_token=handler.function_arn,
        resource_type="Custom::Greeter",
        properties={"Name": app.node.get_context("name"),
                    "FailOn": app.node.try_get_context("fail_on") or ""},
    )
    handle = cdk.CfnWaitConditionHandle(stack, "Handle")
    wait = cdk.CfnWaitCondition(stack, "Wait", handle=handle.ref, timeout="300", count=1)
    wait.node.add_dependency(greeter)
    ssm.StringParameter(stack, "Param", string_value=greeter.get_att_string("Greeting"))
    cdk.CfnOutput(stack, "Greeting", value=greeter.get_att_string("Greeting"))
    cdk.CfnOutput(stack, "TrainingResult", value=cdk.Token.as_string(wait.attr_data))
    app.synth()
"""


class CheckFailed(AssertionError):
    pass


def expect(
    condition: bool, message: str, result: subprocess.CompletedProcess[str] | None = None
) -> None:
    if not condition:
        detail = "" if result is None else "\n" + (result.stdout + result.stderr)[-4000:]
        raise CheckFailed(message + detail)


def cdk(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CDK), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def check(emulator: EmulatorProcess, work: Path) -> dict[str, float]:
    app = work / "app"
    (app / "handler").mkdir(parents=True)
    (app / "handler" / "index.py").write_text(textwrap.dedent(GREETER))
    (app / "app.py").write_text(textwrap.dedent(CDK_APP))
    (app / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py"}))
    log_bucket = bucket(emulator, "cli-greeter-log")
    env = {
        **emulator.env(),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "CDK_DISABLE_VERSION_CHECK": "1",
    }
    context = ["-c", f"log_bucket={log_bucket}"]
    deploy = ["deploy", "--method=direct", "--require-approval", "never"]
    timings: dict[str, float] = {}

    started = time.monotonic()
    # Outside the app directory: bootstrapping an explicit environment needs no synthesis.
    result = cdk(work, env, "bootstrap", "aws://123456789012/us-east-1")
    timings["bootstrap"] = time.monotonic() - started
    expect(result.returncode == 0, "cdk bootstrap failed", result)

    started = time.monotonic()
    signaller = signal_when_ready(emulator, STACK, "SUCCESS", "trained", "s3://m/model.tar.gz", 2)
    result = cdk(app, env, *deploy, *context, "-c", "name=world", "--output", "cdk.out.world")
    timings["deploy (waits for the signal)"] = time.monotonic() - started
    signaller.join(5)
    expect(result.returncode == 0, "cdk deploy failed", result)
    expect(f"{STACK}.Greeting = hello world" in result.stdout + result.stderr, "no output", result)
    stack = emulator.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    expect(
        json.loads(outputs(stack)["TrainingResult"]) == {"trainer": "s3://m/model.tar.gz"},
        f"wait condition Data not in the outputs: {outputs(stack)}",
    )

    started = time.monotonic()
    result = cdk(app, env, *deploy, *context, "-c", "name=moon", "-c", "fail_on=Update")
    timings["failing update"] = time.monotonic() - started
    text = result.stdout + result.stderr
    expect(result.returncode != 0, "the failing deploy succeeded", result)
    expect("refusing Update as asked" in text, "the handler's reason is not shown", result)
    stack = emulator.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    expect(stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", f"status {stack['StackStatus']}")

    started = time.monotonic()
    result = cdk(app, env, "destroy", "--force", "--app", "cdk.out.world")
    timings["destroy"] = time.monotonic() - started
    expect(result.returncode == 0, "cdk destroy failed", result)
    requests: list[Any] = recorded_requests(emulator, log_bucket, "Greeter")
    kinds = [request["RequestType"] for request in requests]
    expect(kinds[0] == "Create" and kinds[-1] == "Delete", f"requests {kinds}")
    expect("Update" in kinds, f"requests {kinds}")
    return timings


def main() -> int:
    if not CDK.exists():
        print(f"no cdk CLI at {CDK}: run npm ci first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="emulator-cli-check-") as scratch:
        work = Path(scratch)
        started = time.monotonic()
        emulator = start_emulator(work / "emulator")
        timings = {"emulator start": time.monotonic() - started}
        try:
            timings.update(check(emulator, work))
        except CheckFailed as failure:
            print(f"FAILED: {failure}", file=sys.stderr)
            log = (emulator.state_dir / "emulator.log").read_text(errors="replace")
            tail = [line for line in log.splitlines() if " werkzeug: " not in line][-40:]
            print("emulator log (tail):", *tail, sep="\n", file=sys.stderr)
            return 1
        finally:
            emulator.stop()
    for step, seconds in timings.items():
        print(f"{step:32s} {seconds:6.1f} s")
    print("OK: bootstrap, deploy (waited for the wait condition), failing update, destroy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
