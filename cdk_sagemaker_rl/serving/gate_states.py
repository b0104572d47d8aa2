"""TrainAndServe's gate: judge the trained policy (and wait for its approval) before serving it.

The judgement itself lives in the gate function (``lambda/custom_resources/gate.py``); this module
only places it in the workflow, between ``Train`` and ``CreateModel``, so that a failed verdict
ends the execution before anything on the endpoint changes. With manual approval the execution
then polls the registered version until someone approves it (then it serves), rejects it, or the
approval timeout passes (then it fails, serving nothing new).

``serving`` knows nothing of gates beyond :class:`WorkflowGate`: the gating package builds the
function and the payload, and hands them over here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .._iam import acknowledge_wildcards
from .._tokens import PARTITION

#: The endpoint tag naming the training job whose policy it serves: the champion of the next
#: gate. The gate function is told this key (its ``ChampionTag`` property) with the endpoint.
TRAINING_JOB_TAG = "cdk-sagemaker-rl:training-job"


@dataclass(frozen=True)
class WorkflowGate:
    """The gate function and what it is told; ``poll`` is set when a person must approve."""

    function: lambda_.IFunction
    payload: dict[str, Any] = field(default_factory=dict)
    poll: Duration | None = None


def _invoke(
    scope: Construct,
    state_id: str,
    function: lambda_.IFunction,
    payload: Any,
    selector: dict[str, str],
    result_path: str,
) -> sfn.CustomState:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": f"arn:{PARTITION}:states:::lambda:invoke",
        "Parameters": {"FunctionName": function.function_arn, "Payload": payload},
        "ResultSelector": {f"{k}.$": f"$.Payload.{v}" for k, v in selector.items()},
        "ResultPath": result_path,
        "Retry": [
            {
                "ErrorEquals": [
                    "Lambda.ServiceException",
                    "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException",
                ],
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2,
            }
        ],
    }
    return sfn.CustomState(scope, state_id, state_json=state)


def gate_states(
    scope: Construct, gate: WorkflowGate, serve: sfn.IChainable, failed: sfn.IChainable
) -> sfn.IChainable:
    """``Gate`` -> (``failed`` verdict: ``GateFailed``) -> [approval loop] -> ``serve``.

    ``failed`` receives the task errors (``$.Error``): a gate that could not be evaluated.
    """
    judge = _invoke(
        scope,
        "Gate",
        gate.function,
        {**gate.payload, "TrainingJobName.$": "$.Training.TrainingJobName"},
        {
            "Verdict": "Verdict",
            "Message": "Message",
            "ModelPackageArn": "ModelPackageArn",
            "ApprovalStatus": "ApprovalStatus",
            "ApprovalDeadline": "ApprovalDeadline",
        },
        "$.Gate",
    )
    judge.add_catch(failed, errors=["States.ALL"], result_path="$.Error")
    refused = sfn.Fail(
        scope,
        "GateFailed",
        comment="The policy did not pass the reward gate: the endpoint is not touched",
        error="RewardGateFailed",
        cause_path="$.Gate.Message",
    )
    verdict = sfn.Choice(scope, "GatePassed?").when(
        sfn.Condition.string_equals("$.Gate.Verdict", "failed"), refused
    )
    if gate.poll is None:
        judge.next(verdict.otherwise(serve))
        return judge
    wait = sfn.Wait(
        scope,
        "WaitForApproval",
        comment="The version is PendingManualApproval: nothing is served until it is approved",
        time=sfn.WaitTime.duration(gate.poll),
    )
    check = _invoke(
        scope,
        "CheckApproval",
        gate.function,
        {
            "Action": "CheckApproval",
            "ModelPackageArn.$": "$.Gate.ModelPackageArn",
            "Deadline.$": "$.Gate.ApprovalDeadline",
        },
        {"Status": "Status", "Message": "Message"},
        "$.Approval",
    )
    check.add_catch(failed, errors=["States.ALL"], result_path="$.Error")
    not_approved = sfn.Fail(
        scope,
        "NotApproved",
        comment="Rejected, or not approved within the approval timeout: nothing new is served",
        error="ModelPackageNotApproved",
        cause_path="$.Approval.Message",
    )
    wait.next(check)
    check.next(
        sfn.Choice(scope, "Approved?")
        .when(sfn.Condition.string_equals("$.Approval.Status", "Approved"), serve)
        .when(sfn.Condition.string_equals("$.Approval.Status", "Pending"), wait)
        .otherwise(not_approved)
    )
    judge.next(
        verdict.when(
            sfn.Condition.string_equals("$.Gate.ApprovalStatus", "PendingManualApproval"), wait
        ).otherwise(serve)
    )
    return judge


def tag_champion(scope: Construct, endpoint_arn: str) -> sfn.CustomState:
    """Record on the endpoint which job's policy it now serves (the next gate's champion)."""
    return sfn.CustomState(
        scope,
        "TagServedPolicy",
        state_json={
            "Type": "Task",
            "Resource": f"arn:{PARTITION}:states:::aws-sdk:sagemaker:addTags",
            "Parameters": {
                "ResourceArn": endpoint_arn,
                "Tags": [{"Key": TRAINING_JOB_TAG, "Value.$": "$.Training.TrainingJobName"}],
            },
            "ResultPath": None,
        },
    )


def grant_gate(machine: sfn.StateMachine, gate: WorkflowGate) -> None:
    """lambda:InvokeFunction on the gate function (and its versions) only."""
    gate.function.grant_invoke(machine)
    acknowledge_wildcards(
        machine.role,
        [(f"{gate.function.function_arn}:*", "The Gate task's grant on the function's versions.")],
        stack=Stack.of(machine),
    )
