"""Serving after ``fit(wait=False)``: a workflow, not CloudFormation, creates model and endpoint.

With ``fit(wait=False)`` the deploy returns while the policy is still training, so the model
artifact does not exist while CloudFormation runs and ``AWS::SageMaker::Model`` cannot be created
by it. Instead a second state machine, *TrainAndServe*, is what the deploy starts:

1. ``Train`` runs the estimator's training state machine as a nested execution
   (``states:startExecution.sync:2``) under the parent's own name, so the training job still has
   the name the deploy reported (``<base>-<timestamp>``);
2. ``CreateModel`` / ``CreateEndpointConfig`` serve that job's ``model.tar.gz``, both named after
   the execution (unique per run) and tagged with the endpoint they belong to;
3. the endpoint, whose name is fixed at synth time so the predict function can be configured at
   deploy time, is created when missing, updated when it exists (after waiting for a transition
   in progress; a ``Failed`` one is deleted and created again), and polled until ``InService``
   with the new configuration (see :mod:`.workflow_definition`).

``Custom::RLServingCleanup`` (:mod:`.cleanup`) removes what the workflow created when the stack is
deleted, since CloudFormation does not know about it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .._arns import executions, named_after, sagemaker_arn
from .._iam import acknowledge_wildcards, pass_role_to_sagemaker, sync_events_rule
from .._kms import KmsKeyRef
from .._tokens import ACCOUNT_ID, PARTITION, REGION
from ..errors import ValidationError
from .autoscaling import AutoScaling, retained_variant_properties
from .cleanup import ScalableTargetCleanup, serving_cleanup
from .data_capture import BoundDataCapture
from .gate_states import WorkflowGate, grant_gate
from .tags import ExtraTags, workflow_tags
from .variant import VariantSettings, endpoint_config_extras
from .workflow_definition import train_and_serve


@dataclass(frozen=True)
class WorkflowTarget:
    """What the serving workflow needs from the estimator: its training and its job names."""

    training_machine: sfn.StateMachine
    #: Job name base: every execution (and job, model, endpoint config) is ``<base>-...``.
    name_base: str
    #: Tags for the models, endpoint configs and endpoint the workflow creates, besides ours.
    extra_tags: ExtraTags | None = None


def workflow_key_arn(kms_key: KmsKeyRef | None) -> str | None:
    """The ARN to grant the endpoint's storage key on, refusing a key the workflow cannot use.

    The workflow role calls CreateEndpoint, so it must be granted the key; an alias names no key
    an IAM policy can scope (CloudFormation, by contrast, passes an alias on as it is).
    """
    if kms_key is None:
        return None
    if kms_key.key_arn is None:
        raise ValidationError(
            f"kms_key={kms_key.request_value!r} is not valid with fit(wait=False). Allowed: a KMS "
            "key ARN, a key id or an aws_kms.IKey: the serving workflow's role calls "
            "CreateEndpoint and must be granted the key, which an alias does not identify. "
            "See README.md#deploying."
        )
    return kms_key.key_arn


class ServingWorkflow(Construct):
    """The TrainAndServe state machine and the cleanup of what it creates."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target: WorkflowTarget,
        endpoint_name: str,
        container: dict[str, Any],
        model_role: iam.IRole,
        variant: VariantSettings,
        kms_key: KmsKeyRef | None,
        data_capture: BoundDataCapture | None,
        deployment_config: dict[str, Any],
        autoscaling: AutoScaling | None,
        gate: WorkflowGate | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.name_base = target.name_base
        self._stack = stack
        self.model_arns = named_after(stack, "model", target.name_base)
        self.endpoint_config_arns = named_after(stack, "endpoint-config", target.name_base)
        self.endpoint_arn = sagemaker_arn(stack, "endpoint", endpoint_name)
        self._kms_key_arn = workflow_key_arn(kms_key)

        def tags(training_job: bool) -> Any:
            return workflow_tags(
                endpoint_name, training_job=training_job, extra_tags=target.extra_tags
            )

        endpoint_config: dict[str, Any] = {
            "EndpointConfigName.$": "$.Serving.EndpointConfigName",
            "ProductionVariants": [variant.request({"ModelName.$": "$.Serving.ModelName"})],
            **endpoint_config_extras(data_capture),
            "Tags": tags(True),
        }
        if kms_key is not None:
            endpoint_config["KmsKeyId"] = kms_key.request_value
        primary_container = {
            **{k: v for k, v in container.items() if k != "ModelDataUrl"},
            "ModelDataUrl.$": "$.Training.ModelDataUrl",
        }
        #: What this workflow serves; a change must run the workflow again (see TrainingRun).
        self.serving_definition: dict[str, Any] = {
            "EndpointName": endpoint_name,
            "PrimaryContainer": primary_container,
            "ExecutionRoleArn": model_role.role_arn,
            "EndpointConfig": endpoint_config,
            "DeploymentConfig": deployment_config,
            "AutoScaling": (
                autoscaling.requests(endpoint_name, variant.variant_name) if autoscaling else None
            ),
        }
        if gate is not None:
            self.serving_definition["Gate"] = {
                "Payload": gate.payload,
                "PollSeconds": gate.poll.to_seconds() if gate.poll is not None else None,
            }
        # An autoscaled fleet keeps its scaled size across retraining.
        update_request: dict[str, Any] = {"DeploymentConfig": deployment_config}
        if autoscaling is not None:
            update_request.update(retained_variant_properties())
        self._autoscaling = autoscaling
        self._variant_name = variant.variant_name
        definition = train_and_serve(
            self,
            training_machine_arn=target.training_machine.state_machine_arn,
            endpoint_name=endpoint_name,
            model_request={
                "ModelName.$": "$.Serving.ModelName",
                "ExecutionRoleArn": model_role.role_arn,
                "PrimaryContainer": primary_container,
                "Tags": tags(True),
            },
            endpoint_config_request=endpoint_config,
            endpoint_tags=tags(False),
            update_request=update_request,
            autoscaling_requests=(
                autoscaling.requests(endpoint_name, variant.variant_name) if autoscaling else None
            ),
            gate=gate,
            endpoint_arn=self.endpoint_arn,
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
            comment="Trains an RL policy, then creates or updates its SageMaker endpoint "
            "(cdk-sagemaker-rl, fit(wait=False) + deploy())",
        )
        self._grant_state_machine(target, model_role)
        if gate is not None:
            grant_gate(self.state_machine, gate)
        self.cleanup = serving_cleanup(
            self,
            endpoint_name=endpoint_name,
            endpoint_arn=self.endpoint_arn,
            model_arns=self.model_arns,
            endpoint_config_arns=self.endpoint_config_arns,
            name_base=target.name_base,
            scalable_target=self._scalable_target_cleanup(),
        )

        CfnOutput(
            self,
            "TrainAndServeStateMachineArn",
            value=self.state_machine.state_machine_arn,
            description="Retrain and serve outside a deploy: start an execution named "
            f"{target.name_base}-<anything>",
        )

    def fingerprint(self) -> str:
        """A hash of what the workflow serves: a change must run the workflow again."""
        resolved = self._stack.resolve(self.serving_definition)
        text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _grant_state_machine(self, target: WorkflowTarget, model_role: iam.IRole) -> None:
        """Exactly what the states of :func:`.workflow_definition.train_and_serve` call."""
        stack = self._stack
        machine = self.state_machine
        training_executions = executions(stack, target.training_machine.state_machine_name)
        statements = [
            iam.PolicyStatement(
                sid="StartTraining",
                actions=["states:StartExecution"],
                resources=[target.training_machine.state_machine_arn],
            ),
            iam.PolicyStatement(
                sid="FollowTraining",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[training_executions],
            ),
            sync_events_rule(
                "SyncNestedExecutions", stack, "StepFunctionsGetEventsForStepFunctionsExecutionRule"
            ),
            iam.PolicyStatement(
                sid="CreateModels",
                actions=["sagemaker:CreateModel", "sagemaker:AddTags"],
                resources=[self.model_arns],
            ),
            iam.PolicyStatement(
                sid="CreateEndpointConfigs",
                actions=["sagemaker:CreateEndpointConfig", "sagemaker:AddTags"],
                resources=[self.endpoint_config_arns],
            ),
            iam.PolicyStatement(
                # Both resource types are required for these two actions.
                sid="DeployEndpointConfigs",
                actions=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
                resources=[self.endpoint_arn, self.endpoint_config_arns],
            ),
            iam.PolicyStatement(
                sid="ManageEndpoint",
                actions=[
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:AddTags",
                ],
                resources=[self.endpoint_arn],
            ),
            pass_role_to_sagemaker("PassModelRole", model_role.role_arn),
        ]
        statements += self._autoscaling_statements()
        if self._kms_key_arn is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="EndpointStorageKey",
                    actions=["kms:CreateGrant", "kms:DescribeKey"],
                    resources=[self._kms_key_arn],
                )
            )
        for statement in statements:
            machine.add_to_role_policy(statement)
        acknowledge_wildcards(
            machine.role,
            [
                *self._autoscaling_wildcards(),
                (
                    training_executions,
                    "Follows (and on stop, stops) the nested training execution it starts; its "
                    "name is chosen per run.",
                ),
                (
                    self.model_arns,
                    "Each run creates a model named after its training job (<base>-<timestamp>).",
                ),
                (
                    self.endpoint_config_arns,
                    "Each run creates an endpoint config named after its training job "
                    "(<base>-<timestamp>) and deploys it to the one endpoint.",
                ),
                (
                    "*",
                    "Log delivery (logs:*LogDelivery, DescribeLogGroups...) and X-Ray actions "
                    "have no resource type.",
                ),
            ],
            stack=stack,
        )

    def _scalable_target_cleanup(self) -> ScalableTargetCleanup | None:
        """The target the workflow registers, for the cleanup to deregister on delete."""
        if self._autoscaling is None:
            return None
        request = self._autoscaling.target_request(self.endpoint_name, self._variant_name)
        return ScalableTargetCleanup(
            target={
                key: request[key] for key in ("ServiceNamespace", "ResourceId", "ScalableDimension")
            },
            scalable_targets_arn=self._scalable_targets(),
            alarms_arn=self._scaling_alarms(),
        )

    def _scaling_alarms(self) -> str:
        return (
            f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:TargetTracking-endpoint/"
            f"{self.endpoint_name}/variant/{self._variant_name}-*"
        )

    def _scalable_targets(self) -> str:
        return f"arn:{PARTITION}:application-autoscaling:{REGION}:{ACCOUNT_ID}:scalable-target/*"

    def _autoscaling_statements(self) -> list[iam.PolicyStatement]:
        """What registering the endpoint with Application Auto Scaling needs of its caller."""
        if self._autoscaling is None:
            return []
        service = "sagemaker.application-autoscaling.amazonaws.com"
        return [
            iam.PolicyStatement(
                sid="RegisterAutoScaling",
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:PutScheduledAction",
                ],
                resources=[self._scalable_targets()],
            ),
            iam.PolicyStatement(
                # Application Auto Scaling checks that its caller may scale the variant.
                sid="ScaleEndpoint",
                actions=["sagemaker:UpdateEndpointWeightsAndCapacities"],
                resources=[self.endpoint_arn],
            ),
            iam.PolicyStatement(
                sid="DescribeScaledConfigs",
                actions=["sagemaker:DescribeEndpointConfig"],
                resources=[self.endpoint_config_arns],
            ),
            iam.PolicyStatement(
                # Target tracking creates and deletes its alarms with the caller's permissions.
                sid="TargetTrackingAlarms",
                actions=[
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:DeleteAlarms",
                ],
                resources=[self._scaling_alarms()],
            ),
            iam.PolicyStatement(
                sid="AutoScalingServiceLinkedRole",
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/aws-service-role/{service}/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": service}},
            ),
        ]

    def _autoscaling_wildcards(self) -> list[tuple[str, str]]:
        if self._autoscaling is None:
            return []
        return [
            (
                self._scalable_targets(),
                "Application Auto Scaling names a scalable target by a generated id; the "
                "requests name this endpoint's variant as the resource id.",
            ),
            (
                self._scaling_alarms(),
                "Target tracking names its alarms after the variant with a generated suffix.",
            ),
        ]
