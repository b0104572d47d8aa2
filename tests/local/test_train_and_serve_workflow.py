"""TrainAndServe, deployed with the real ``cdk`` CLI into the local emulator and run to the end.

A user's app (tests/local/apps/workflow_app.py) trains in ``fit(wait=False)`` and serves with
``deploy()``: the deploy only starts the TrainAndServe execution, which trains through the
training state machine as a nested ``startExecution.sync:2`` execution, creates the model and the
endpoint config (optimized SageMaker integrations), finds no endpoint (``aws-sdk`` DescribeEndpoint
caught, ``StringMatches`` on its cause), creates it, waits and polls it until it serves the new
config (``StringEqualsPath``). The endpoint then answers through the predict function, the stack is
destroyed and no process is left behind.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorProcess, start_emulator
from local_cli import processes_using, wait_until_gone
from test_gating_promotion import cdk, endpoint_status, output, predict, wait_for

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parent / "apps" / "workflow_app.py"
STACK = "RLWorkflow"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    running = start_emulator(tmp_path / "emulator")
    try:
        yield running
    finally:
        running.stop()


def deploy(emulator: EmulatorProcess, out: Path) -> dict[str, str]:
    outputs_file = out / f"{STACK}.outputs.json"
    result = cdk(
        emulator,
        out,
        "deploy",
        STACK,
        "--app",
        f"{sys.executable} {APP.name}",
        "--method=direct",
        "--require-approval",
        "never",
        "--outputs-file",
        str(outputs_file),
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    outputs: dict[str, str] = json.loads(outputs_file.read_text())[STACK]
    return outputs


def finished(emulator: EmulatorProcess, execution_arn: str) -> dict[str, Any] | None:
    described: dict[str, Any] = emulator.client("stepfunctions").describe_execution(
        executionArn=execution_arn
    )
    return None if described["status"] == "RUNNING" else described


def history(emulator: EmulatorProcess, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = emulator.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return events


ROLE = "arn:aws:iam::123456789012:role/workflow"


def machine_of(emulator: EmulatorProcess, name: str, states: dict[str, Any]) -> str:
    definition = {"StartAt": next(iter(states)), "States": states}
    arn: str = emulator.client("stepfunctions").create_state_machine(
        name=name, roleArn=ROLE, definition=json.dumps(definition)
    )["stateMachineArn"]
    return arn


def nested(child: str, *, sync: str = ".sync:2") -> dict[str, Any]:
    """TrainAndServe's ``Train`` state, caught into a Fail state reporting the error it caught."""
    return {
        "Train": {
            "Type": "Task",
            "Resource": f"arn:aws:states:::states:startExecution{sync}",
            "Parameters": {
                "StateMachineArn": child,
                "Name.$": "$$.Execution.Name",
                "Input": {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"},
            },
            "ResultSelector": {"Job.$": "$.Output.Job", "Started.$": "$.StartDate"},
            "ResultPath": "$.Training",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Failed"}],
            "End": True,
        },
        "Failed": {"Type": "Fail", "ErrorPath": "$.Error.Error", "CausePath": "$.Error.Cause"},
    }


def run(emulator: EmulatorProcess, machine: str, name: str) -> dict[str, Any]:
    arn = emulator.client("stepfunctions").start_execution(
        stateMachineArn=machine, name=name, input="{}"
    )["executionArn"]
    described: dict[str, Any] = wait_for(lambda: finished(emulator, arn), 30, name)
    return described


def test_nested_executions_and_the_states_serving_relies_on(
    local_emulator: EmulatorProcess,
) -> None:
    emulator, sfn = local_emulator, local_emulator.client("stepfunctions")
    trained = machine_of(
        emulator,
        "trains",
        {"T": {"Type": "Pass", "Result": "job-1", "ResultPath": "$.Job", "End": True}},
    )
    broken = machine_of(
        emulator, "breaks", {"F": {"Type": "Fail", "Error": "RLTrainingFailed", "Cause": "boom"}}
    )
    slow = machine_of(emulator, "waits", {"W": {"Type": "Wait", "Seconds": 120, "End": True}})

    # .sync:2: the child's output as JSON, its timestamps as epoch milliseconds.
    done = run(emulator, machine_of(emulator, "parent-ok", nested(trained)), "run-ok")
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["Training"]["Job"] == "job-1"
    assert isinstance(json.loads(done["output"])["Training"]["Started"], int)
    (child,) = sfn.list_executions(stateMachineArn=trained)["executions"]
    assert child["name"] == "run-ok"
    assert json.loads(sfn.describe_execution(executionArn=child["executionArn"])["input"]) == {
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": done["executionArn"]
    }

    # A failed child fails the task (States.TaskFailed, the child's description as cause), and
    # a Fail state may report that States.* name.
    failed = run(emulator, machine_of(emulator, "parent-fails", nested(broken)), "run-fails")
    assert (failed["status"], failed["error"]) == ("FAILED", "States.TaskFailed")
    cause = json.loads(failed["cause"])
    assert (cause["Status"], cause["Error"], cause["Cause"]) == (
        "FAILED",
        "RLTrainingFailed",
        "boom",
    )

    # Stopping the parent stops the child.
    parent = sfn.start_execution(
        stateMachineArn=machine_of(emulator, "parent-stops", nested(slow, sync=".sync")),
        name="run-stops",
    )["executionArn"]
    wait_for(lambda: sfn.list_executions(stateMachineArn=slow)["executions"], 10, "the child")
    sfn.stop_execution(executionArn=parent)
    wait_for(
        lambda: (
            [e["status"] for e in sfn.list_executions(stateMachineArn=slow)["executions"]]
            == ["ABORTED"]
        ),
        10,
        "the child to stop",
    )

    # aws-sdk: a missing endpoint's cause names it; timestamps are ISO 8601 text.
    emulator.client("sagemaker").create_model_package_group(ModelPackageGroupName="group")
    sdk = "arn:aws:states:::aws-sdk:sagemaker"
    found = machine_of(
        emulator,
        "finds",
        {
            "Find": {
                "Type": "Task",
                "Resource": f"{sdk}:describeEndpoint",
                "Parameters": {"EndpointName": "missing"},
                "ResultPath": "$.Existing",
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Missing?"}
                ],
                "Next": "Failed",
            },
            "Missing?": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$.Error.Cause",
                        "StringMatches": "*Could not find endpoint*",
                        "Next": "Group",
                    }
                ],
                "Default": "Failed",
            },
            "Group": {
                "Type": "Task",
                "Resource": f"{sdk}:describeModelPackageGroup",
                "Parameters": {"ModelPackageGroupName": "group"},
                "ResultSelector": {
                    "Created.$": "$.CreationTime",
                    "Described.$": "States.JsonToString($)",
                },
                "ResultPath": "$.Group",
                "End": True,
            },
            "Failed": {"Type": "Fail", "Error": "Unexpected"},
        },
    )
    described = run(emulator, found, "run-finds")
    assert described["status"] == "SUCCEEDED", described
    result = json.loads(described["output"])
    assert result["Error"]["Error"] == "SageMaker.SageMakerException"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", result["Group"]["Created"])
    assert json.loads(result["Group"]["Described"])["ModelPackageGroupName"] == "group"


def test_train_and_serve_trains_creates_the_endpoint_and_serves(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    sagemaker = emulator.client("sagemaker")
    sfn = emulator.client("stepfunctions")
    out = tmp_path / "cdk.out"
    started = time.monotonic()
    bootstrap = cdk(emulator, out, "bootstrap", "aws://123456789012/us-east-1")
    assert bootstrap.returncode == 0, bootstrap.stderr[-3000:]
    try:
        outputs = deploy(emulator, out)
        deployed = time.monotonic()
        job = output(outputs, "TrainingJobName")
        endpoint = output(outputs, "EndpointName")
        machine = output(outputs, "TrainAndServeStateMachineArn")
        # fit(wait=False): the deploy started TrainAndServe, named as the job, and returned.
        (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert execution["name"] == job

        described = wait_for(
            lambda: finished(emulator, execution["executionArn"]), 240, "TrainAndServe"
        )
        served = time.monotonic()
        events = history(emulator, execution["executionArn"])
        entered = [
            e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
        ]
        assert described["status"] == "SUCCEEDED", (
            described.get("error"),
            described.get("cause"),
            entered,
        )
        assert entered[:6] == [
            "Train",
            "NameServingResources",
            "CreateModel",
            "CreateEndpointConfig",
            "FindEndpoint",
            "EndpointMissing?",
        ]
        assert entered[6:9] == ["CreateEndpoint", "WaitForEndpoint", "CheckEndpoint"]
        assert entered[-2:] == ["EndpointReady?", "Served"]

        # Trained by the training machine, as a nested execution of the same name.
        (nested,) = sfn.list_executions(
            stateMachineArn=output(outputs, "DeployTimeStateMachineArn")
        )["executions"]
        assert (nested["name"], nested["status"]) == (job, "SUCCEEDED")
        nested_input = json.loads(
            sfn.describe_execution(executionArn=nested["executionArn"])["input"]
        )
        assert nested_input == {
            "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": execution["executionArn"]
        }
        training = sagemaker.describe_training_job(TrainingJobName=job)
        assert training["TrainingJobStatus"] == "Completed"

        # Served: the model and config named after the execution, the endpoint on that config.
        assert endpoint_status(emulator, endpoint) == "InService"
        description = sagemaker.describe_endpoint(EndpointName=endpoint)
        assert description["EndpointConfigName"] == job
        model = sagemaker.describe_model(ModelName=job)
        assert (
            model["PrimaryContainer"]["ModelDataUrl"]
            == (training["ModelArtifacts"]["S3ModelArtifacts"])
        )
        assert predict(emulator, output(outputs, "PredictFunctionName"))[0] in (0, 1)
        print(
            f"\ndeploy {deployed - started:.1f} s (bootstrap included), "
            f"TrainAndServe {served - deployed:.1f} s"
        )
    finally:
        destroy = cdk(emulator, out, "destroy", STACK, "--force", "--app", str(out))
    assert destroy.returncode == 0, (destroy.stdout + destroy.stderr)[-3000:]
    assert sagemaker.list_endpoints()["Endpoints"] == []
    emulator.stop()
    assert wait_until_gone(emulator.state_dir) == []
    assert processes_using(emulator.state_dir) == []
