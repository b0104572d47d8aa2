"""Manual approval and promotion, deployed with the real ``cdk`` CLI into the local emulator.

A user's app (tests/local/apps/gating_app.py): ``RLGated`` trains in the TrainAndServe workflow
(fit(wait=False)), passes the reward gate and is registered PendingManualApproval, so nothing is
served; once the version is approved the workflow serves it. ``RLPromoted`` then serves the
group's latest approved version in a second stack without a training job. Both stacks are
destroyed and no process is left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import EmulatorProcess, start_emulator
from local_cli import ROOT, processes_using, wait_until_gone

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parent / "apps" / "gating_app.py"
CDK = ROOT / "node_modules" / ".bin" / "cdk"
GROUP = "cartpole-gated"


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    running = start_emulator(tmp_path / "emulator")
    try:
        yield running
    finally:
        running.stop()


def cdk(emulator: EmulatorProcess, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **emulator.env(),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    return subprocess.run(
        [str(CDK), *args, "--no-notices", "--output", str(out)],
        cwd=APP.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def deploy(emulator: EmulatorProcess, out: Path, stack: str) -> dict[str, str]:
    # The app is synthesized once: a later deploy reads the cloud assembly it wrote.
    app = str(out) if (out / "manifest.json").exists() else f"{sys.executable} {APP.name}"
    result = cdk(
        emulator,
        out,
        "deploy",
        stack,
        "--app",
        app,
        "--method=direct",
        "--require-approval",
        "never",
        "--outputs-file",
        str(out / f"{stack}.outputs.json"),
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    outputs: dict[str, str] = json.loads((out / f"{stack}.outputs.json").read_text())[stack]
    return outputs


def output(outputs: dict[str, str], suffix: str) -> str:
    (value,) = [v for k, v in outputs.items() if k.endswith(suffix) or suffix in k]
    return value


def predict(emulator: EmulatorProcess, function: str) -> list[int]:
    answer = emulator.client("lambda").invoke(
        FunctionName=function,
        Payload=json.dumps({"instances": [[0.02, -0.1, 0.03, 0.2]]}).encode(),
    )
    body = json.loads(answer["Payload"].read())
    assert body["statusCode"] == 200, body
    predictions: list[int] = json.loads(body["body"])["predictions"]
    return predictions


def endpoint_status(emulator: EmulatorProcess, name: str) -> str | None:
    try:
        status: str = emulator.client("sagemaker").describe_endpoint(EndpointName=name)[
            "EndpointStatus"
        ]
    except ClientError:
        return None
    return status


def workflow_status(emulator: EmulatorProcess) -> str:
    """The status of the (one) TrainAndServe execution."""
    sfn = emulator.client("stepfunctions")
    (machine,) = [
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if "ServingWorkflow" in m["name"]
    ]
    (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    status: str = execution["status"]
    return status


def versions(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = emulator.client("sagemaker").list_model_packages(
        ModelPackageGroupName=GROUP
    )["ModelPackageSummaryList"]
    return listed


def test_nothing_serves_until_approved_then_another_stack_serves_it_without_training(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    sagemaker = emulator.client("sagemaker")
    out = tmp_path / "cdk.out"
    bootstrap = cdk(emulator, out, "bootstrap", "aws://123456789012/us-east-1")
    assert bootstrap.returncode == 0, bootstrap.stderr[-3000:]
    try:
        gated = deploy(emulator, out, "RLGated")
        endpoint = output(gated, "EndpointName")

        # Trained and judged by the workflow, then registered for a person to approve.
        (version,) = wait_for(lambda: versions(emulator), 240, "the gated version")
        package = sagemaker.describe_model_package(ModelPackageName=version["ModelPackageArn"])
        assert package["ModelApprovalStatus"] == "PendingManualApproval"
        assert "Reward gate passed" in package["ModelPackageDescription"]
        assert "eval_reward_mean = " in package["ModelPackageDescription"]
        value = float(package["CustomerMetadataProperties"]["GateValue"])
        assert value >= 200
        # ... and nothing is served while it waits (the workflow polls every second).
        time.sleep(3)
        assert endpoint_status(emulator, endpoint) is None
        assert sagemaker.list_endpoints()["Endpoints"] == []

        sagemaker.update_model_package(
            ModelPackageArn=version["ModelPackageArn"],
            ModelApprovalStatus="Approved",
            ApprovalDescription="reviewed the reward curve",
        )
        wait_for(lambda: endpoint_status(emulator, endpoint) == "InService", 120, "serving")
        assert predict(emulator, output(gated, "PredictFunctionName"))[0] in (0, 1)
        # The workflow ends once it sees the endpoint serve, and tags it with the job.
        wait_for(lambda: workflow_status(emulator) == "SUCCEEDED", 60, "the workflow to end")
        # Trained by the training machine as a nested execution of the job's name; the model
        # and endpoint config are named after it and serve its artifact.
        job = package["CustomerMetadataProperties"]["TrainingJobName"]
        training = sagemaker.describe_training_job(TrainingJobName=job)
        assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == job
        assert (
            sagemaker.describe_model(ModelName=job)["PrimaryContainer"]["ModelDataUrl"]
            == (training["ModelArtifacts"]["S3ModelArtifacts"])
        )
        tags = sagemaker.list_tags(
            ResourceArn=sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
        )["Tags"]
        assert {"Key": "cdk-sagemaker-rl:training-job", "Value": job} in tags

        # Promotion: the approved version, served by a second stack, without training.
        jobs_before = sagemaker.list_training_jobs()["TrainingJobSummaries"]
        promoted = deploy(emulator, out, "RLPromoted")
        assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == jobs_before
        assert (
            output(promoted, "ModelDataUrl")
            == (package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
        )
        promoted_endpoint = output(promoted, "EndpointName")
        assert endpoint_status(emulator, promoted_endpoint) == "InService"
        assert predict(emulator, output(promoted, "PredictFunctionName")) == predict(
            emulator, output(gated, "PredictFunctionName")
        )
    finally:
        for stack in ("RLPromoted", "RLGated"):
            cdk(emulator, out, "destroy", stack, "--force", "--app", str(out))
    assert sagemaker.list_endpoints()["Endpoints"] == []
    # The registry outlives the stacks: its versions are the record of what was approved.
    assert len(versions(emulator)) == 1
    emulator.stop()
    assert wait_until_gone(emulator.state_dir) == []
    assert processes_using(emulator.state_dir) == []
