"""The estimator's training state machine: the training step, then a report to a waiting deploy.

When the execution input holds ``WaitHandleUrl`` (a deploy waiting in ``fit(wait=True)``), the
signal function tells CloudFormation the outcome; otherwise the execution just ends. The pieces are
created directly under the estimator, so their construct ids (and logical ids) are the estimator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .._arns import training_log_group_streams, training_log_streams
from .._functions import bundled_function
from .._iam import acknowledge_wildcards
from .step import RLTrainingStep


@dataclass(frozen=True)
class TrainingStateMachine:
    state_machine: sfn.StateMachine
    log_group: logs.LogGroup
    signal_function: lambda_.Function


def _report(
    scope: Construct, state_id: str, function: lambda_.IFunction, **event: Any
) -> tasks.LambdaInvoke:
    """A task that hands the outcome to the signal function (docs/architecture.md event)."""
    return tasks.LambdaInvoke(
        scope,
        state_id,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(
            {
                "Status": event.pop("Status"),
                "WaitHandleUrl": sfn.JsonPath.string_at("$.WaitHandleUrl"),
                **event,
            }
        ),
        payload_response_only=True,
        result_path=sfn.JsonPath.DISCARD,
        retry_on_service_exceptions=True,
    )


def training_state_machine(scope: Construct, step: RLTrainingStep) -> TrainingStateMachine:
    log_group = logs.LogGroup(
        scope,
        "StateMachineLogs",
        retention=logs.RetentionDays.THREE_MONTHS,
        removal_policy=RemovalPolicy.DESTROY,
    )
    signal = bundled_function(
        scope,
        "SignalFunction",
        folder="custom_resources",
        handler="training_run.signal",
        description="Reports a training job's outcome to the CloudFormation deploy waiting on it",
        timeout=Duration.seconds(90),
    )
    succeeded = sfn.Succeed(scope, "Trained")
    failed = sfn.Fail(scope, "TrainingFailed", error="RLTrainingFailed", cause_path="$.Error.Cause")
    report_success = _report(
        scope,
        "ReportSuccess",
        signal,
        Status="SUCCESS",
        TrainingJobName=sfn.JsonPath.string_at("$.Training.TrainingJobName"),
        ModelDataUrl=sfn.JsonPath.string_at("$.Training.ModelDataUrl"),
    )
    report_failure = _report(
        scope,
        "ReportFailure",
        signal,
        Status="FAILURE",
        TrainingJobName=sfn.JsonPath.string_at("$$.Execution.Name"),
        Error=sfn.JsonPath.object_at("$.Error"),
    )
    deploy_waits = sfn.Condition.is_present("$.WaitHandleUrl")
    on_success = (
        sfn.Choice(scope, "DeployWaitingForSuccess?")
        .when(deploy_waits, report_success.next(succeeded))
        .otherwise(succeeded)
    )
    on_failure = (
        sfn.Choice(scope, "DeployWaitingForFailure?")
        .when(deploy_waits, report_failure.next(failed))
        .otherwise(failed)
    )
    step.add_catch(on_failure, errors=["States.ALL"], result_path="$.Error")
    machine = sfn.StateMachine(
        scope,
        "StateMachine",
        definition_body=sfn.DefinitionBody.from_chainable(step.next(on_success)),
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
        ),
        # No state machine timeout: MaxRuntime/MaxWait stop the job, and the .sync task with it.
        tracing_enabled=True,
        comment="Runs one SageMaker RL training job (cdk-sagemaker-rl RLEstimator)",
    )
    stack = Stack.of(scope)
    acknowledge_wildcards(
        machine.role,
        [
            (
                f"{signal.function_arn}:*",
                "The LambdaInvoke task's grant on the signal function's versions.",
            ),
            (
                "*",
                "Log delivery (logs:*LogDelivery, DescribeLogGroups...) and X-Ray actions have "
                "no resource type.",
            ),
        ],
        stack=stack,
    )
    _grant_signal_function(signal, step, stack)
    return TrainingStateMachine(machine, log_group, signal)


def _grant_signal_function(function: lambda_.Function, step: RLTrainingStep, stack: Stack) -> None:
    """It reads the failed job and the tail of that job's log streams, nothing else."""
    streams = training_log_streams(stack, step.job_name_base)
    jobs = step.training_job_arns
    log_group = training_log_group_streams(stack)
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[jobs])
    )
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["logs:DescribeLogStreams"], resources=[log_group])
    )
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[streams])
    )
    reason = (
        "Reads the failed job and the tail of its log streams; the job's name "
        "(<base>-<timestamp>) is only known at run time."
    )
    role: iam.IRole = function.role  # type: ignore[assignment]
    acknowledge_wildcards(
        role,
        [
            (jobs, reason),
            (streams, reason),
            (
                log_group,
                "logs:DescribeLogStreams acts on the log group; it lists stream names, the "
                "events of other jobs' streams stay unreadable.",
            ),
        ],
        stack=stack,
    )
