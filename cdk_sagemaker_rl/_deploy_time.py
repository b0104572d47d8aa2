"""Training at deploy time: what ``RLEstimator.fit()`` adds to the stack.

A custom resource starts the training state machine; a CloudFormation wait condition (up to 12
hours, where a custom resource gives up after one) holds everything that needs the model until the
state machine signals the outcome. Both carry the training fingerprint, so an unchanged training
definition starts nothing on redeploy and a changed one trains a new job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import (
    ArnFormat,
    Aws,
    CfnOutput,
    CfnWaitCondition,
    CfnWaitConditionHandle,
    CustomResource,
    Duration,
    Fn,
    Stack,
)
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from ._functions import bundled_function
from ._iam import acknowledge_wildcard
from .errors import ValidationError

if TYPE_CHECKING:
    from .training import RLEstimator

from .training import TRAINING_LOG_GROUP, WAIT_CONDITION_LIMIT_SECONDS, WAIT_MARGIN_SECONDS


class TrainingRun(Construct):
    """The deploy-time run of one estimator's training state machine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        estimator: RLEstimator,
        wait: bool,
        logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        job_window = estimator.max_wait_seconds or estimator.max_run_seconds
        timeout = job_window + WAIT_MARGIN_SECONDS
        if wait and timeout > WAIT_CONDITION_LIMIT_SECONDS:
            argument = "max_wait" if estimator.max_wait_seconds else "train_max_run"
            raise ValidationError(
                f"{argument}={job_window} seconds: fit(wait=True) holds the deploy in a "
                f"CloudFormation wait condition, which waits at most {WAIT_CONDITION_LIMIT_SECONDS} "
                f"seconds (12 h) including {WAIT_MARGIN_SECONDS} s of provisioning head-room; "
                f"allowed: at most {WAIT_CONDITION_LIMIT_SECONDS - WAIT_MARGIN_SECONDS} seconds. "
                "Use fit(wait=False) for longer jobs. See README.md#training-at-deploy-time."
            )
        fingerprint = estimator.fingerprint()
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
        machine = estimator.state_machine
        execution_arns = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        estimator.state_machine.grant_start_execution(self.function)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[execution_arns],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
                resources=[estimator.training_job_arn_pattern],
            )
        )
        for resource in (
            execution_arns,
            estimator.training_job_arn_pattern,
        ):
            acknowledge_wildcard(
                self.function.role,  # type: ignore[arg-type]
                resource,
                "Stops the execution and job it started; their name (<base>-<timestamp>) is "
                "chosen at deploy time.",
            )

        properties: dict[str, object] = {
            "StateMachineArn": machine.state_machine_arn,
            "JobNameBase": estimator.job_name_base,
            "OutputPath": estimator.output_path.rstrip("/"),
            "Fingerprint": fingerprint,
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
        self.model_data_object_arn = (
            f"arn:{Aws.PARTITION}:s3:::"
            + Fn.select(1, Fn.split("s3://", self.model_data_url))
        )
        self.completion: IDependable = self.condition if self.condition is not None else self.resource

        CfnOutput(self, "TrainingJobName", value=self.training_job_name,
                  description="The training job this deploy started")
        CfnOutput(self, "ModelDataUrl", value=self.model_data_url,
                  description="Where the trained model artifact is written")
        CfnOutput(self, "StateMachineArn", value=machine.state_machine_arn,
                  description="The training workflow; start it to retrain outside a deploy")
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
                        "https://console.aws.amazon.com/cloudwatch/home?region=",
                        Aws.REGION,
                        "#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs"
                        "$3FlogStreamNameFilter$3D",
                        self.training_job_name,
                    ],
                ),
                description="Console link to the training job's logs",
            )


def _logical_id(element: CfnWaitConditionHandle | CfnWaitCondition, suffix: str) -> str:
    base = Stack.of(element).resolve(element.logical_id)
    return f"{str(base)[:200]}{suffix}"

