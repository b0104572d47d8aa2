"""The Step Functions states TrainAndServe relies on, run by the local emulator's interpreter.

Nested executions (``startExecution.sync:2``: output parsed, a child's failure is the task's,
stopping the parent stops the child), a Fail state reporting a ``States.*`` error from a path, and
the missing-endpoint Catch (``StringMatches`` on the cause of an ``aws-sdk`` DescribeEndpoint).
The whole workflow, deployed with the real ``cdk`` CLI, runs in
tests/local/test_gating_promotion.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorProcess, start_emulator
from test_gating_promotion import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    running = start_emulator(tmp_path / "emulator")
    try:
        yield running
    finally:
        running.stop()


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
