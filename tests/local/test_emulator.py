"""The local emulator (moto + plugins), driven the way the deploy-time flow drives it.

One emulator process serves the module (see ``conftest.local_emulator``); the process hygiene test
starts its own. Everything goes through boto3 against ``http://localhost:<port>``. The real
``cdk`` CLI path (bootstrap, deploy, failing update, destroy) is ``cli_check.py`` next to this
file: it takes longer than this module's budget.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import EmulatorProcess, free_port, spawn_emulator, start_emulator

from cdk_sagemaker_rl.local.process_table import process_table

# Records every request in S3 (LOG_BUCKET) and answers SUCCESS, or FAILED for the request type
# named by the FailOn property; the physical id follows the Name property, so a new Name replaces.
GREETER = """
    import json, os, time, urllib.request
    import boto3

    def handler(event, context):
        props = event["ResourceProperties"]
        key = f"{event['LogicalResourceId']}/{time.time_ns()}-{event['RequestType']}"
        boto3.client("s3").put_object(Bucket=os.environ["LOG_BUCKET"], Key=key,
                                      Body=json.dumps(event).encode())
        failed = props.get("FailOn") == event["RequestType"]
        body = {
            "Status": "FAILED" if failed else "SUCCESS",
            "Reason": f"refusing {event['RequestType']} as asked" if failed else "",
            "PhysicalResourceId": f"greeter-{props['Name']}",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {"Greeting": f"hello {props['Name']}"},
        }
        request = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(),
                                         method="PUT", headers={"Content-Type": ""})
        urllib.request.urlopen(request).read()
"""

INFERENCE = """
    import json, os

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as f:
            return json.load(f)

    def input_fn(body, content_type):
        return json.loads(body)

    def predict_fn(data, model):
        if data == "boom":
            raise RuntimeError("model exploded on purpose")
        return [x * model["scale"] for x in data]

    def output_fn(prediction, accept):
        return json.dumps({"predictions": prediction})
"""

TRAIN_OK = """
    import json, os, sys
    print("training with", sys.argv[1:], flush=True)
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "policy.json"), "w") as f:
        json.dump({"epochs": sys.argv[sys.argv.index("--epochs") + 1]}, f)
    print("saved the policy", flush=True)
"""

TRAIN_FAIL = """
    print("episode 1 reward nan", flush=True)
    raise ValueError("the reward went NaN")
"""

TRAIN_SLOW = """
    import time
    print("a long training starts", flush=True)
    time.sleep(120)
"""


# --- helpers ----------------------------------------------------------------------------------


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, textwrap.dedent(text))
    return buffer.getvalue()


def tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def role_arn(emulator: EmulatorProcess, name: str = "emulator-test-role") -> str:
    iam = emulator.client("iam")
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def create_function(
    emulator: EmulatorProcess,
    name: str,
    source: str,
    *,
    environment: dict[str, str] | None = None,
    timeout: int = 30,
) -> str:
    response = emulator.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn(emulator),
        Handler="index.handler",
        Code={"ZipFile": zip_files({"index.py": source})},
        Environment={"Variables": environment or {}},
        Timeout=timeout,
    )
    return str(response["FunctionArn"])


def bucket(emulator: EmulatorProcess, name: str) -> str:
    emulator.client("s3").create_bucket(Bucket=name)
    return name


def wait_until(predicate: Callable[[], Any], timeout: float = 60, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout} s")


def settled_stack(emulator: EmulatorProcess, name: str, timeout: float = 60) -> dict[str, Any]:
    cfn = emulator.client("cloudformation")

    def settled() -> dict[str, Any] | None:
        stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("_IN_PROGRESS") else stack

    result: dict[str, Any] = wait_until(settled, timeout)
    return result


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def resource_events(emulator: EmulatorProcess, stack: str) -> list[tuple[str, str, str]]:
    """(logical id, status, reason) oldest first."""
    events = emulator.client("cloudformation").describe_stack_events(StackName=stack)
    return [
        (e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason") or "")
        for e in reversed(events["StackEvents"])
    ]


def recorded_requests(emulator: EmulatorProcess, log_bucket: str, logical_id: str) -> list[Any]:
    s3 = emulator.client("s3")
    listing = s3.list_objects_v2(Bucket=log_bucket, Prefix=f"{logical_id}/").get("Contents", [])
    keys = sorted(item["Key"] for item in listing)
    return [json.loads(s3.get_object(Bucket=log_bucket, Key=key)["Body"].read()) for key in keys]


def physical_id(emulator: EmulatorProcess, stack: str, logical_id: str) -> str | None:
    try:
        resources = emulator.client("cloudformation").describe_stack_resources(StackName=stack)
    except ClientError:
        return None  # not created yet
    for resource in resources["StackResources"]:
        if resource["LogicalResourceId"] == logical_id:
            return str(resource["PhysicalResourceId"])
    return None


def put_json(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def signal_when_ready(
    emulator: EmulatorProcess,
    stack: str,
    status: str,
    reason: str,
    data: str,
    delay: float = 0.0,
    *,
    go: threading.Event | None = None,
) -> threading.Thread:
    """In a thread: wait for the stack's Handle (and for ``go``, if given), then ``delay`` s, then
    PUT one signal to it (like the trainer). The handle keeps a signal that comes early."""

    def run() -> None:
        url = wait_until(lambda: physical_id(emulator, stack, "Handle"), 60)
        if go is not None:
            go.wait(60)
        time.sleep(delay)
        put_json(url, {"Status": status, "Reason": reason, "UniqueId": "trainer", "Data": data})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def greeter_template(service_token: str, name: str, *, fail_on: str = "") -> str:
    properties: dict[str, Any] = {
        "ServiceToken": service_token,
        "Name": name,
        "Options": {"Retries": 3, "Verbose": True, "Tags": ["a", 1]},
    }
    if fail_on:
        properties["FailOn"] = fail_on
    template = {
        "Resources": {
            "Greeter": {"Type": "Custom::Greeter", "Properties": properties},
            "Greeting": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": f"/emulator-test/{service_token.rsplit(':', 1)[-1]}",
                    "Type": "String",
                    "Value": {"Fn::GetAtt": ["Greeter", "Greeting"]},
                },
            },
        },
        "Outputs": {"Greeting": {"Value": {"Fn::GetAtt": ["Greeter", "Greeting"]}}},
    }
    return json.dumps(template)


def wait_condition_template(timeout: str = "60") -> str:
    template = {
        "Resources": {
            "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
            "Wait": {
                "Type": "AWS::CloudFormation::WaitCondition",
                "Properties": {"Handle": {"Ref": "Handle"}, "Timeout": timeout, "Count": 1},
            },
        },
        "Outputs": {"Data": {"Value": {"Fn::GetAtt": ["Wait", "Data"]}}},
    }
    return json.dumps(template)


# --- Lambda -----------------------------------------------------------------------------------


def test_lambda_runs_the_handler_of_its_zip_with_its_environment(
    local_emulator: EmulatorProcess,
) -> None:
    target = bucket(local_emulator, "lambda-writes-here")
    create_function(
        local_emulator,
        "echo",
        """
        import os, time, boto3

        def handler(event, context):
            if "raise" in event:
                raise KeyError(event["raise"])
            if "sleep" in event:
                time.sleep(event["sleep"])
            boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Key="proof", Body=b"hi")
            return {"greeting": os.environ["GREETING"], "event": event,
                    "region": os.environ["AWS_REGION"], "function": context.function_name,
                    "has_time_left": context.get_remaining_time_in_millis() > 0}
        """,
        environment={"GREETING": "bonjour", "BUCKET": target},
    )
    lam = local_emulator.client("lambda")

    answer = lam.invoke(FunctionName="echo", Payload=json.dumps({"x": 1}))
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {
        "greeting": "bonjour",
        "event": {"x": 1},
        "region": "us-east-1",
        "function": "echo",
        "has_time_left": True,
    }
    # The handler's boto3 reached the emulator (AWS_ENDPOINT_URL and dummy credentials).
    assert (
        local_emulator.client("s3").get_object(Bucket=target, Key="proof")["Body"].read() == b"hi"
    )

    failed = lam.invoke(FunctionName="echo", Payload=json.dumps({"raise": "no such key"}))
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "KeyError"
    assert "no such key" in error["errorMessage"]
    assert any("index.py" in frame for frame in error["stackTrace"])

    # The timeout counts from the process start, imports included: a 1 s timeout set at creation
    # could expire on a busy machine before the handler above returned. Set it for this call.
    lam.update_function_configuration(FunctionName="echo", Timeout=1)
    slow = lam.invoke(FunctionName="echo", Payload=json.dumps({"sleep": 5}))
    assert slow["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in json.loads(slow["Payload"].read())["errorMessage"]

    streams = local_emulator.client("logs").describe_log_streams(logGroupName="/aws/lambda/echo")
    assert len(streams["logStreams"]) == 3


def test_a_handler_in_a_package_imports_its_sibling_packages_from_the_task_root(
    local_emulator: EmulatorProcess,
) -> None:
    """Like the library's functions (``custom_resources.training_run.on_event`` importing
    ``_shared.json_logger``): a dotted module, the zip's root first on ``sys.path``."""
    local_emulator.client("lambda").create_function(
        FunctionName="packaged",
        Runtime="python3.12",
        Role=role_arn(local_emulator),
        Handler="handlers.greet.handler",
        Code={
            "ZipFile": zip_files(
                {
                    "_common/__init__.py": "",
                    "_common/words.py": "HELLO = 'hello'\n",
                    "handlers/__init__.py": "",
                    "handlers/greet.py": """
                    import os, sys
                    from _common.words import HELLO

                    def handler(event, context):
                        return {"said": HELLO, "module": __name__,
                                "first_on_path": sys.path[0] == os.environ["LAMBDA_TASK_ROOT"]}
                    """,
                }
            )
        },
    )
    answer = local_emulator.client("lambda").invoke(FunctionName="packaged", Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    assert json.loads(answer["Payload"].read()) == {
        "said": "hello",
        "module": "handlers.greet",
        "first_on_path": True,
    }


def test_a_non_python_runtime_gets_a_clear_error(local_emulator: EmulatorProcess) -> None:
    local_emulator.client("lambda").create_function(
        FunctionName="node-fn",
        Runtime="nodejs20.x",
        Role=role_arn(local_emulator),
        Handler="index.handler",
        Code={"ZipFile": zip_files({"index.js": "exports.handler = async () => 1;"})},
    )
    answer = local_emulator.client("lambda").invoke(FunctionName="node-fn", Payload=b"{}")
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert "Python Lambda functions only" in error["errorMessage"]
    assert "nodejs20.x" in error["errorMessage"]


# --- CloudFormation: custom resources -------------------------------------------------------


def test_custom_resource_data_reaches_dependents_and_update_and_delete_are_sent(
    local_emulator: EmulatorProcess,
) -> None:
    log_bucket = bucket(local_emulator, "greeter-log")
    token = create_function(
        local_emulator, "greeter", GREETER, environment={"LOG_BUCKET": log_bucket}
    )
    cfn = local_emulator.client("cloudformation")
    ssm = local_emulator.client("ssm")
    parameter = "/emulator-test/greeter"

    started = time.monotonic()
    cfn.create_stack(StackName="greeting", TemplateBody=greeter_template(token, "world"))
    assert time.monotonic() - started < 5, "CreateStack must not wait for the resources"
    stack = settled_stack(local_emulator, "greeting")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(stack) == {"Greeting": "hello world"}
    # The dependent saw the custom resource's Data: Create is synchronous.
    assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == "hello world"
    assert physical_id(local_emulator, "greeting", "Greeter") == "greeter-world"

    cfn.update_stack(StackName="greeting", TemplateBody=greeter_template(token, "moon"))
    stack = settled_stack(local_emulator, "greeting")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(stack) == {"Greeting": "hello moon"}
    # The parameter's template did not change, the value it references did: it is updated too.
    assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == "hello moon"

    cfn.delete_stack(StackName="greeting")
    deleted = settled_stack(local_emulator, stack["StackId"])
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    with pytest.raises(ClientError):
        ssm.get_parameter(Name=parameter)

    requests = recorded_requests(local_emulator, log_bucket, "Greeter")
    summary = [(r["RequestType"], r.get("PhysicalResourceId")) for r in requests]
    # Update answered a new physical id: the old one gets a Delete at clean-up, like CloudFormation.
    assert summary == [
        ("Create", None),
        ("Update", "greeter-world"),
        ("Delete", "greeter-world"),
        ("Delete", "greeter-moon"),
    ]
    # CloudFormation sends scalar property values as strings.
    assert requests[0]["ResourceProperties"]["Options"] == {
        "Retries": "3",
        "Verbose": "true",
        "Tags": ["a", "1"],
    }
    update = requests[1]
    assert update["ResourceProperties"]["Name"] == "moon"
    assert update["OldResourceProperties"]["Name"] == "world"
    assert update["ResponseURL"].startswith(local_emulator.endpoint_url)


def test_a_failed_custom_resource_fails_and_rolls_back_the_stack(
    local_emulator: EmulatorProcess,
) -> None:
    log_bucket = bucket(local_emulator, "refuser-log")
    token = create_function(
        local_emulator, "refuser", GREETER, environment={"LOG_BUCKET": log_bucket}
    )
    cfn = local_emulator.client("cloudformation")
    cfn.create_stack(
        StackName="refused", TemplateBody=greeter_template(token, "x", fail_on="Create")
    )
    stack = settled_stack(local_emulator, "refused")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "[Greeter]" in stack["StackStatusReason"]
    failures = [e for e in resource_events(local_emulator, "refused") if e[1] == "CREATE_FAILED"]
    assert failures == [
        (
            "Greeter",
            "CREATE_FAILED",
            failures[0][2],
        )
    ]
    assert failures[0][2].startswith(
        "Received response status [FAILED] from custom resource. Message returned: "
        "refusing Create as asked"
    )
    # The dependent was never created, and the rollback sent Delete for the failed Create.
    assert [r["RequestType"] for r in recorded_requests(local_emulator, log_bucket, "Greeter")] == [
        "Create",
        "Delete",
    ]
    with pytest.raises(ClientError):
        local_emulator.client("ssm").get_parameter(Name="/emulator-test/refuser")

    # --no-rollback (DisableRollback): the stack stays CREATE_FAILED, nothing is deleted.
    cfn.create_stack(
        StackName="refused-kept",
        TemplateBody=greeter_template(token, "x", fail_on="Create"),
        DisableRollback=True,
    )
    kept = settled_stack(local_emulator, "refused-kept")
    assert kept["StackStatus"] == "CREATE_FAILED"
    assert "refusing Create as asked" not in kept["StackStatusReason"]
    assert "[Greeter]" in kept["StackStatusReason"]


# --- CloudFormation: wait conditions --------------------------------------------------------


def test_a_wait_condition_waits_for_its_signal(local_emulator: EmulatorProcess) -> None:
    cfn = local_emulator.client("cloudformation")
    started = time.monotonic()
    cfn.create_stack(StackName="waits", TemplateBody=wait_condition_template())
    assert time.monotonic() - started < 5
    go = threading.Event()
    signaller = signal_when_ready(
        local_emulator, "waits", "SUCCESS", "trained", "s3://bucket/model.tar.gz", go=go
    )
    # Without its signal the stack waits. The signal is sent only once this was seen: on a busy
    # machine a signal sent after a fixed delay could come first.
    wait_until(lambda: physical_id(local_emulator, "waits", "Handle"))
    time.sleep(0.2)
    assert cfn.describe_stacks(StackName="waits")["Stacks"][0]["StackStatus"] == (
        "CREATE_IN_PROGRESS"
    )
    go.set()
    stack = settled_stack(local_emulator, "waits")
    signaller.join(30)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert json.loads(outputs(stack)["Data"]) == {"trainer": "s3://bucket/model.tar.gz"}
    url = physical_id(local_emulator, "waits", "Handle")
    assert url is not None and url.startswith(f"{local_emulator.endpoint_url}/_local/")


def test_a_failure_signal_or_a_timeout_fails_the_stack(local_emulator: EmulatorProcess) -> None:
    cfn = local_emulator.client("cloudformation")
    cfn.create_stack(StackName="diverges", TemplateBody=wait_condition_template())
    cfn.create_stack(StackName="times-out", TemplateBody=wait_condition_template(timeout="1"))
    signal_when_ready(local_emulator, "diverges", "FAILURE", "training diverged", "")

    stack = settled_stack(local_emulator, "diverges")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert (
        "Wait",
        "CREATE_FAILED",
        "WaitCondition received failed message: 'training diverged' for uniqueId: trainer",
    ) in resource_events(local_emulator, "diverges")

    stack = settled_stack(local_emulator, "times-out")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert (
        "Wait",
        "CREATE_FAILED",
        "WaitCondition timed out. Received 0 conditions when expecting 1",
    ) in resource_events(local_emulator, "times-out")


def test_deleting_a_stack_that_waits_cancels_the_wait(local_emulator: EmulatorProcess) -> None:
    cfn = local_emulator.client("cloudformation")
    stack_id = cfn.create_stack(StackName="abandoned", TemplateBody=wait_condition_template())[
        "StackId"
    ]
    wait_until(lambda: physical_id(local_emulator, "abandoned", "Handle"))
    started = time.monotonic()
    cfn.delete_stack(StackName="abandoned")
    assert settled_stack(local_emulator, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert time.monotonic() - started < 30  # not after the wait condition's 60 s
    assert (
        "Wait",
        "CREATE_FAILED",
        "Resource creation cancelled",
    ) in resource_events(local_emulator, stack_id)


# --- Step Functions + SageMaker training ----------------------------------------------------


def training_state_machine_template() -> str:
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {
                    "TrainingJobName.$": "$$.Execution.Name",
                    "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
                    "AlgorithmSpecification": {"TrainingImage": "rl", "TrainingInputMode": "File"},
                    "HyperParameters": {
                        "sagemaker_program": '"train.py"',
                        "sagemaker_submit_directory.$": "$.SourceDir",
                        "epochs": "3",
                    },
                    "OutputDataConfig": {"S3OutputPath": "s3://training/out"},
                    "ResourceConfig": {
                        "InstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                        "VolumeSizeInGB": 10,
                    },
                    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
                },
                "ResultSelector": {
                    "TrainingJobName.$": "$.TrainingJobName",
                    "ModelDataUrl.$": "$.ModelArtifacts.S3ModelArtifacts",
                },
                "ResultPath": "$.Training",
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Failed"}
                ],
                "End": True,
            },
            "Failed": {"Type": "Fail", "Error": "TrainingFailed", "CausePath": "$.Error.Cause"},
        },
    }
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {"Statement": []}},
            },
            "Training": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": json.dumps(definition),
                },
            },
        },
        "Outputs": {"StateMachineArn": {"Value": {"Ref": "Training"}}},
    }
    return json.dumps(template)


@pytest.fixture(scope="module")
def training_state_machine(local_emulator: EmulatorProcess) -> str:
    """A CloudFormation-created training state machine, and sources for it in S3."""
    s3 = local_emulator.client("s3")
    bucket(local_emulator, "training")
    for name, script in (("ok", TRAIN_OK), ("fail", TRAIN_FAIL), ("slow", TRAIN_SLOW)):
        s3.put_object(
            Bucket="training",
            Key=f"src/{name}/sourcedir.tar.gz",
            Body=tar_gz({"train.py": script}),
        )
    local_emulator.client("cloudformation").create_stack(
        StackName="training", TemplateBody=training_state_machine_template()
    )
    stack = settled_stack(local_emulator, "training")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return outputs(stack)["StateMachineArn"]


def start_training(emulator: EmulatorProcess, state_machine: str, name: str, source: str) -> str:
    execution = emulator.client("stepfunctions").start_execution(
        stateMachineArn=state_machine,
        name=name,
        input=json.dumps({"SourceDir": f'"s3://training/src/{source}/sourcedir.tar.gz"'}),
    )
    return str(execution["executionArn"])


def finished_execution(emulator: EmulatorProcess, arn: str) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")

    def finished() -> dict[str, Any] | None:
        description: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        return None if description["status"] == "RUNNING" else description

    result: dict[str, Any] = wait_until(finished, 60)
    return result


def test_the_state_machine_trains_through_create_training_job_sync(
    local_emulator: EmulatorProcess, training_state_machine: str
) -> None:
    good = start_training(local_emulator, training_state_machine, "rl-good-1", "ok")
    bad = start_training(local_emulator, training_state_machine, "rl-bad-1", "fail")

    done = finished_execution(local_emulator, good)
    assert done["status"] == "SUCCEEDED"
    result = json.loads(done["output"])["Training"]
    assert result == {
        "TrainingJobName": "rl-good-1",
        "ModelDataUrl": "s3://training/out/rl-good-1/output/model.tar.gz",
    }
    model = local_emulator.client("s3").get_object(
        Bucket="training", Key="out/rl-good-1/output/model.tar.gz"
    )
    with tarfile.open(fileobj=io.BytesIO(model["Body"].read())) as archive:
        policy = archive.extractfile("policy.json")
        assert policy is not None and json.load(policy) == {"epochs": "3"}
    job = local_emulator.client("sagemaker").describe_training_job(TrainingJobName="rl-good-1")
    assert job["TrainingJobStatus"] == "Completed"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == result["ModelDataUrl"]
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]

    failed = finished_execution(local_emulator, bad)
    assert failed["status"] == "FAILED"
    assert failed["error"] == "TrainingFailed"
    cause = json.loads(failed["cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert "ValueError: the reward went NaN" in cause["FailureReason"]

    # The job's log: CloudWatch Logs like SageMaker, and the state directory's training log.
    logs = local_emulator.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="rl-good-1/algo-1-"
    )["logStreams"]
    assert len(streams) == 1
    messages = [
        event["message"]
        for event in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"]
        )["events"]
    ]
    assert "saved the policy" in messages
    training_log = (local_emulator.state_dir / "training.log").read_text()
    assert "rl-good-1 | saved the policy" in training_log
    assert "rl-bad-1 | episode 1 reward nan" in training_log


def test_sync_output_timestamps_are_epoch_milliseconds(
    local_emulator: EmulatorProcess, training_state_machine: str
) -> None:
    sfn = local_emulator.client("stepfunctions")
    definition = json.loads(
        sfn.describe_state_machine(stateMachineArn=training_state_machine)["definition"]
    )
    train = definition["States"]["Train"]
    del train["ResultSelector"], train["ResultPath"]
    raw = sfn.create_state_machine(
        name="training-raw", definition=json.dumps(definition), roleArn=role_arn(local_emulator)
    )["stateMachineArn"]
    done = finished_execution(local_emulator, start_training(local_emulator, raw, "rl-raw-1", "ok"))
    assert done["status"] == "SUCCEEDED"  # DescribeExecution does not choke on timestamps
    description = json.loads(done["output"])
    assert description["TrainingJobStatus"] == "Completed"
    assert isinstance(description["CreationTime"], int)
    assert isinstance(description["TrainingEndTime"], int)


def test_stopping_the_execution_stops_the_training_job(
    local_emulator: EmulatorProcess, training_state_machine: str
) -> None:
    arn = start_training(local_emulator, training_state_machine, "rl-slow-1", "slow")
    sagemaker = local_emulator.client("sagemaker")

    def training() -> bool:
        try:
            job = sagemaker.describe_training_job(TrainingJobName="rl-slow-1")
        except ClientError:
            return False
        return bool(job["SecondaryStatus"] == "Training")

    wait_until(training, 30)
    local_emulator.client("stepfunctions").stop_execution(executionArn=arn)
    stopped = wait_until(
        lambda: (
            sagemaker.describe_training_job(TrainingJobName="rl-slow-1")["TrainingJobStatus"]
            in ("Stopped", "Failed", "Completed")
        ),
        30,
    )
    assert stopped
    job = sagemaker.describe_training_job(TrainingJobName="rl-slow-1")
    assert job["TrainingJobStatus"] == "Stopped"
    assert finished_execution(local_emulator, arn)["status"] == "ABORTED"


# --- SageMaker endpoints ----------------------------------------------------------------------


def test_an_endpoint_serves_its_model_and_reports_model_errors(
    local_emulator: EmulatorProcess,
) -> None:
    s3 = local_emulator.client("s3")
    sagemaker = local_emulator.client("sagemaker")
    runtime = local_emulator.client("sagemaker-runtime")
    bucket(local_emulator, "models")
    for version, scale in (("v1", 2), ("v2", 10)):
        archive = tar_gz(
            {"weights.json": json.dumps({"scale": scale}), "code/inference.py": INFERENCE}
        )
        s3.put_object(Bucket="models", Key=f"{version}/model.tar.gz", Body=archive)
        sagemaker.create_model(
            ModelName=f"policy-{version}",
            ExecutionRoleArn=role_arn(local_emulator),
            PrimaryContainer={
                "Image": "serving",
                "ModelDataUrl": f"s3://models/{version}/model.tar.gz",
            },
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"config-{version}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"policy-{version}",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )

    def status() -> str:
        return str(sagemaker.describe_endpoint(EndpointName="policy")["EndpointStatus"])

    sagemaker.create_endpoint(EndpointName="policy", EndpointConfigName="config-v1")
    assert status() == "Creating"
    wait_until(lambda: status() != "Creating", 60)
    assert status() == "InService"

    def predict(payload: Any) -> Any:
        answer = runtime.invoke_endpoint(
            EndpointName="policy",
            Body=json.dumps(payload),
            ContentType="application/json",
            Accept="application/json",
        )
        assert answer["ContentType"] == "application/json"
        return json.loads(answer["Body"].read())

    assert predict([1, 2, 3]) == {"predictions": [2, 4, 6]}
    with pytest.raises(ClientError) as model_error:
        predict("boom")
    assert model_error.value.response["Error"]["Code"] == "ModelError"
    assert model_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert model_error.value.response["OriginalStatusCode"] == 500
    assert "model exploded on purpose" in model_error.value.response["OriginalMessage"]

    sagemaker.update_endpoint(EndpointName="policy", EndpointConfigName="config-v2")
    assert predict([1]) in ({"predictions": [2]}, {"predictions": [10]})  # old one serves meanwhile
    wait_until(lambda: status() != "Updating", 60)
    assert status() == "InService"
    assert sagemaker.describe_endpoint(EndpointName="policy")["EndpointConfigName"] == "config-v2"
    assert predict([1, 2, 3]) == {"predictions": [10, 20, 30]}

    sagemaker.delete_endpoint(EndpointName="policy")
    with pytest.raises(ClientError) as gone:
        predict([1])
    assert gone.value.response["Error"]["Code"] == "ValidationError"


def endpoint_stack_template(model_url: str, role: str) -> str:
    template = {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {
                    "ExecutionRoleArn": role,
                    "PrimaryContainer": {"Image": "serving", "ModelDataUrl": model_url},
                },
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                        }
                    ]
                },
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "EndpointName": "cfn-policy",
                    "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                },
            },
        },
        "Outputs": {"Endpoint": {"Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}}},
    }
    return json.dumps(template)


def test_a_cloudformation_endpoint_is_in_service_when_created_and_follows_a_new_model(
    local_emulator: EmulatorProcess,
) -> None:
    s3 = local_emulator.client("s3")
    bucket(local_emulator, "cfn-models")
    for version, scale in (("v1", 3), ("v2", 7)):
        archive = tar_gz(
            {"weights.json": json.dumps({"scale": scale}), "code/inference.py": INFERENCE}
        )
        s3.put_object(Bucket="cfn-models", Key=f"{version}/model.tar.gz", Body=archive)
    cfn = local_emulator.client("cloudformation")
    runtime = local_emulator.client("sagemaker-runtime")
    role = role_arn(local_emulator)

    def predict() -> Any:
        answer = runtime.invoke_endpoint(
            EndpointName="cfn-policy", Body=b"[1]", ContentType="application/json"
        )
        return json.loads(answer["Body"].read())

    template = endpoint_stack_template("s3://cfn-models/v1/model.tar.gz", role)
    cfn.create_stack(StackName="serving", TemplateBody=template)
    stack = settled_stack(local_emulator, "serving")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(stack) == {"Endpoint": "cfn-policy"}  # the EndpointName property is honoured
    # CloudFormation waited for InService: the endpoint answers as soon as the stack is complete.
    assert predict() == {"predictions": [3]}

    # A new ModelDataUrl replaces the model; the config and the endpoint follow (the retrain path).
    template = endpoint_stack_template("s3://cfn-models/v2/model.tar.gz", role)
    cfn.update_stack(StackName="serving", TemplateBody=template)
    assert settled_stack(local_emulator, "serving")["StackStatus"] == "UPDATE_COMPLETE"
    assert predict() == {"predictions": [7]}

    cfn.create_stack(
        StackName="serving-broken",
        TemplateBody=endpoint_stack_template("s3://cfn-models/missing.tar.gz", role).replace(
            "cfn-policy", "cfn-broken"
        ),
    )
    broken = settled_stack(local_emulator, "serving-broken")
    assert broken["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [
        e[2] for e in resource_events(local_emulator, "serving-broken") if e[1] == "CREATE_FAILED"
    ]
    assert len(reasons) == 1 and "s3://cfn-models/missing.tar.gz" in reasons[0]

    cfn.delete_stack(StackName="serving")
    assert settled_stack(local_emulator, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"
    with pytest.raises(ClientError):
        predict()


# --- process hygiene ------------------------------------------------------------------------


IN_PROCESS = """
    import json, sys, boto3
    from cdk_sagemaker_rl.local.emulator import Emulator, EmulatorError

    def s3_works(emulator):
        s3 = boto3.client("s3", endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s")
        s3.create_bucket(Bucket="in-process")
        return [b["Name"] for b in s3.list_buckets()["Buckets"]]

    state = sys.argv[1]
    first = Emulator(0, state)
    first.start()
    try:
        Emulator(0, state + "-second").start()
    except EmulatorError as error:
        refused = str(error)
    buckets = s3_works(first)
    port = first.port
    first.stop()
    with Emulator(0, state) as again:  # the plugins stay installed, moto's state is reset
        s3 = boto3.client("s3", endpoint_url=again.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s")
        buckets_again = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    print(json.dumps({"port": port, "refused": refused, "buckets": buckets,
                      "buckets_again": buckets_again}))
"""


def test_the_python_api_runs_in_process_on_any_free_port(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(IN_PROCESS), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["port"] > 0
    assert "another emulator is running in this process" in report["refused"]
    assert report["buckets"] == ["in-process"]
    assert report["buckets_again"] == []  # a stopped emulator forgets everything
    assert not (tmp_path / "state" / "emulator.pid").exists()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in process_table():
        tree.setdefault(entry.ppid, []).append(entry.pid)
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_port_is_free_again_as_soon_as_its_emulator_stopped() -> None:
    from cdk_sagemaker_rl.local.emulator import EmulatorError, _check_port

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = int(server.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            accepted.close()  # the server side closes first: its port is in TIME_WAIT
        with pytest.raises(EmulatorError, match=f"port {port} on 127.0.0.1 is in use"):
            _check_port(port)  # still listening
    _check_port(port)  # TIME_WAIT only: a restarted emulator can bind it, so it is not refused


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="walks /proc for child processes")
def test_process_hygiene_pid_file_port_and_no_orphans(tmp_path: Path) -> None:
    state = tmp_path / "emulator"
    state.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (state / "emulator.pid").write_text(f"{dead.pid}\n")  # a stale pid file is cleaned up

    emulator = start_emulator(state)
    try:
        assert (state / "emulator.pid").read_text().strip() == str(emulator.process.pid)
        info = json.loads((state / "emulator.json").read_text())
        assert info["port"] == emulator.port
        assert "stale pid file" in (state / "emulator.log").read_text()

        other = tmp_path / "other"
        same_dir = spawn_emulator(state, free_port())
        same_port = spawn_emulator(other, emulator.port)
        assert same_dir.wait(60) == 2
        assert (
            f"an emulator (pid {emulator.process.pid}) already uses"
            in (state / "process.out").read_text()
        )
        assert same_port.wait(60) == 2
        assert f"port {emulator.port} on 127.0.0.1 is in use" in (other / "process.out").read_text()

        # Leave work running: a training job, a model server and a Lambda invocation.
        s3 = emulator.client("s3")
        bucket(emulator, "hygiene")
        s3.put_object(Bucket="hygiene", Key="src.tar.gz", Body=tar_gz({"train.py": TRAIN_SLOW}))
        s3.put_object(
            Bucket="hygiene",
            Key="model.tar.gz",
            Body=tar_gz({"weights.json": '{"scale": 1}', "code/inference.py": INFERENCE}),
        )
        sagemaker = emulator.client("sagemaker")
        sagemaker.create_training_job(
            TrainingJobName="left-running",
            RoleArn=role_arn(emulator),
            AlgorithmSpecification={"TrainingImage": "rl", "TrainingInputMode": "File"},
            HyperParameters={
                "sagemaker_program": '"train.py"',
                "sagemaker_submit_directory": '"s3://hygiene/src.tar.gz"',
            },
            OutputDataConfig={"S3OutputPath": "s3://hygiene/out"},
            ResourceConfig={"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )
        sagemaker.create_model(
            ModelName="m",
            ExecutionRoleArn=role_arn(emulator),
            PrimaryContainer={"Image": "serving", "ModelDataUrl": "s3://hygiene/model.tar.gz"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName="e", EndpointConfigName="c")
        create_function(
            emulator, "sleeper", "import time\ndef handler(e, c):\n    time.sleep(60)\n"
        )
        emulator.client("lambda").invoke(
            FunctionName="sleeper", InvocationType="Event", Payload=b"{}"
        )
        wait_until(
            lambda: sagemaker.describe_endpoint(EndpointName="e")["EndpointStatus"] != "Creating",
            60,
        )
        wait_until(
            lambda: (
                sagemaker.describe_training_job(TrainingJobName="left-running")["SecondaryStatus"]
                == "Training"
            ),
            30,
        )
        children = descendants(emulator.process.pid)
        assert len(children) >= 3  # the script, the model server, the Lambda handler
    finally:
        code = emulator.stop()
    assert code == 0
    assert not [pid for pid in children if alive(pid)]
    assert not (state / "emulator.pid").exists()
