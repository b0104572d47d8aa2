"""Training at deploy time: what ``RLEstimator.fit()`` adds to the stack.

A custom resource starts the training state machine; a CloudFormation wait condition (up to 12
hours, where a custom resource gives up after one) holds everything that needs the model until the
state machine signals the outcome. Both carry the training fingerprint, so an unchanged training
definition starts nothing on redeploy and a changed one trains a new job.

With ``fit(wait=False)`` followed by ``deploy()``, the custom resource starts the serving workflow
(``serving.workflow``) instead, which runs the training as a nested execution of the same name.
``deploy()`` comes after ``fit()``, so in that mode the machine the resource starts, the IAM
statements naming it and the fingerprint are rendered lazily, from whatever is the target when the
template is synthesized.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_cdk import (
    Aws,
    CfnMapping,
    CfnOutput,
    CfnWaitCondition,
    CfnWaitConditionHandle,
    CustomResource,
    Duration,
    Fn,
    Lazy,
    Stack,
    Token,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IDependable

from .._arns import TRAINING_LOG_GROUP, executions
from .._functions import bundled_function
from .._iam import acknowledge_wildcard
from .._lazy import Current
from ..errors import ValidationError

if TYPE_CHECKING:
    from ..serving import ServingWorkflow

#: A CloudFormation wait condition waits at most 12 hours; deploy-time training must fit in it.
WAIT_CONDITION_LIMIT_SECONDS = 12 * 3600
#: Head-room for instance provisioning, image download and model upload around MaxRuntime.
WAIT_MARGIN_SECONDS = 30 * 60


def _execution_arns(stack: Stack, machine: sfn.StateMachine) -> str:
    return executions(stack, machine.state_machine_name)


_STOP_REASON = (
    "Stops the execution and job it started; their name (<base>-<timestamp>) is chosen at "
    "deploy time."
)


class TrainingRun(Construct):
    """The deploy-time run of one estimator's training state machine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        job_name_base: str,
        training_job_arns: str,
        output_uri: str,
        fingerprint: str,
        job_window_seconds: int,
        window_argument: str,
        wait: bool,
        logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        job_window = job_window_seconds
        timeout = job_window + WAIT_MARGIN_SECONDS
        if wait and timeout > WAIT_CONDITION_LIMIT_SECONDS:
            argument = window_argument
            raise ValidationError(
                f"{argument}={job_window} seconds: fit(wait=True) holds the deploy in a "
                "CloudFormation wait condition, which waits at most "
                f"{WAIT_CONDITION_LIMIT_SECONDS} "
                f"seconds (12 h) including {WAIT_MARGIN_SECONDS} s of provisioning head-room; "
                f"allowed: at most {WAIT_CONDITION_LIMIT_SECONDS - WAIT_MARGIN_SECONDS} seconds. "
                "Use fit(wait=False) for longer jobs. See README.md#training-at-deploy-time."
            )
        self.fingerprint = fingerprint
        short = fingerprint[:10].upper()

        self.function = bundled_function(
            self,
            "Function",
            folder="custom_resources",
            handler="training_run.on_event",
            description="Starts (and on rollback or delete, stops) deploy-time RL training",
            timeout=Duration.minutes(2),
        )
        machine = state_machine
        #: The state machine the deploy starts: the training one, or after ``start_workflow``
        #: (fit(wait=False) + deploy()) the serving workflow.
        self.target: sfn.StateMachine = machine
        self._training_fingerprint = fingerprint
        self._stack = stack
        execution_arns = _execution_arns(stack, machine)
        target_arn: str = machine.state_machine_arn
        if wait:
            target_executions = execution_arns
        else:
            target_arn = Lazy.uncached_string(Current(lambda: self.target.state_machine_arn))
            target_executions = Lazy.uncached_string(
                Current(lambda: _execution_arns(stack, self.target))
            )
        # ListExecutions: the handler reuses the run a rollback's Update asks for again.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution", "states:ListExecutions"], resources=[target_arn]
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[target_executions],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
                resources=[training_job_arns],
            )
        )
        for resource in (
            execution_arns,
            training_job_arns,
        ):
            acknowledge_wildcard(
                self.function.role,  # type: ignore[arg-type]
                resource,
                _STOP_REASON,
            )

        properties: dict[str, object] = {
            "StateMachineArn": target_arn,
            "JobNameBase": job_name_base,
            # The handler appends /<job>/output/model.tar.gz.
            "OutputPath": output_uri.rstrip("/"),
            # Without a wait condition, deploy() may still add the serving definition to it.
            "Fingerprint": (
                fingerprint if wait else Lazy.uncached_string(Current(lambda: self.fingerprint))
            ),
        }
        self.handle: CfnWaitConditionHandle | None = None
        self.condition: CfnWaitCondition | None = None
        if wait:
            self.handle = CfnWaitConditionHandle(self, "Handle")
            # A wait condition cannot be updated: a new training needs a new one, so its logical
            # id (not its construct id) carries the fingerprint.
            self.handle.override_logical_id(_logical_id(self.handle, short))
            properties["WaitHandleUrl"] = self.handle.ref
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type="Custom::RLTrainingRun",
            properties=properties,
        )
        if wait and self.handle is not None:
            self.condition = CfnWaitCondition(
                self, "Completion", handle=self.handle.ref, timeout=str(timeout), count=1
            )
            self.condition.override_logical_id(_logical_id(self.condition, short))
            self.condition.node.add_dependency(self.resource)

        self.training_job_name = self.resource.get_att_string("TrainingJobName")
        self.model_data_url = self.resource.get_att_string("ModelDataUrl")
        self.model_data_object_arn = f"arn:{Aws.PARTITION}:s3:::" + Fn.select(
            1, Fn.split("s3://", self.model_data_url)
        )
        self.completion: IDependable = (
            self.condition if self.condition is not None else self.resource
        )

        CfnOutput(
            self,
            "TrainingJobName",
            value=self.training_job_name,
            description="The training job this deploy started",
        )
        CfnOutput(
            self,
            "ModelDataUrl",
            value=self.model_data_url,
            description="Where the trained model artifact is written",
        )
        CfnOutput(
            self,
            "StateMachineArn",
            value=machine.state_machine_arn,
            description="The training workflow; start it to retrain outside a deploy",
        )
        if logs:
            CfnOutput(
                self,
                "TrainingLogs",
                value=f"{TRAINING_LOG_GROUP} (streams {self.training_job_name}/*)",
                description="CloudWatch Logs group and stream prefix of the training job",
            )
            CfnOutput(
                self,
                "TrainingLogsConsole",
                value=Fn.join(
                    "",
                    [
                        "https://",
                        _console_host(self),
                        "/cloudwatch/home?region=",
                        Aws.REGION,
                        "#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs"
                        "$3FlogStreamNameFilter$3D",
                        self.training_job_name,
                    ],
                ),
                description="Console link to the training job's logs",
            )

    def start_workflow(
        self, workflow: ServingWorkflow, *, depends_on: Sequence[IDependable] = ()
    ) -> None:
        """Make the deploy start ``workflow`` (train, then serve) instead of the training alone.

        Only for ``fit(wait=False)``. The fingerprint then also covers what is served, so that a
        change to ``deploy()`` runs the workflow again: CloudFormation has no other resource
        that could bring the endpoint up to date. This resource depends on the workflow's
        cleanup, so that on deletion it stops the running workflow before the cleanup deletes
        what the workflow created.
        """
        if self.condition is not None:  # pragma: no cover - guarded by the estimator facade
            raise ValidationError("start_workflow() is only for fit(wait=False)")
        self.target = workflow.state_machine
        combined = f"{self._training_fingerprint}:{workflow.fingerprint()}"
        self.fingerprint = hashlib.sha256(combined.encode()).hexdigest()
        acknowledge_wildcard(
            self.function.role,  # type: ignore[arg-type]
            _execution_arns(self._stack, workflow.state_machine),
            _STOP_REASON,
        )
        self.resource.node.add_dependency(workflow.cleanup, *depends_on)


#: CloudFormation's limit on a logical id.
MAX_LOGICAL_ID = 255
#: CDK ends every logical id with an 8-character hash of the construct path.
_PATH_HASH_LENGTH = 8


def _logical_id(element: CfnWaitConditionHandle | CfnWaitCondition, suffix: str) -> str:
    """The element's logical id plus ``suffix``, within 255 characters.

    On a long construct path only the readable head is cut: the path hash CDK puts at the end
    stays, so the handle and the condition (and any two constructs) keep distinct ids.
    """
    base = str(Stack.of(element).resolve(element.logical_id))
    room = MAX_LOGICAL_ID - len(suffix)
    if len(base) > room:
        base = base[: room - _PATH_HASH_LENGTH] + base[-_PATH_HASH_LENGTH:]
    return f"{base}{suffix}"


#: The AWS console's host per partition (the link in the TrainingLogsConsole output).
CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def _console_host(scope: Construct) -> str:
    """A literal host in a stack with a known region, else a mapping lookup by partition."""
    stack = Stack.of(scope)
    if not Token.is_unresolved(stack.region):
        partition = (
            "aws-cn"
            if stack.region.startswith("cn-")
            else ("aws-us-gov" if stack.region.startswith("us-gov-") else "aws")
        )
        return CONSOLE_HOSTS[partition]
    mapping = stack.node.try_find_child("ConsoleHosts")
    if mapping is None:
        mapping = CfnMapping(
            stack,
            "ConsoleHosts",
            mapping={partition: {"host": host} for partition, host in CONSOLE_HOSTS.items()},
        )
    assert isinstance(mapping, CfnMapping)
    return mapping.find_in_map(Aws.PARTITION, "host")
