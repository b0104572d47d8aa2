"""``PolicyGate``: where the reward gate runs for one estimator, and what it may touch.

After ``fit(wait=True)`` the gate is a custom resource (``Custom::RLPolicyGate``) between the
training's wait condition and the model: a failed verdict fails it, CloudFormation rolls the
update back, and the endpoint is never updated. After ``fit(wait=False)`` it is a task of the
TrainAndServe workflow (:mod:`cdk_sagemaker_rl.serving.gate_states`). The judgement is the same
function in both (``lambda/custom_resources/gate.py``).

The gate needs the endpoint it guards (to read the champion) and the container the endpoint runs
(to register a version that can be served as it is), both known only once ``deploy()`` created the
endpoint, which in turn must wait for the gate: so they are given later, by :meth:`bind_endpoint`,
and rendered lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, CustomResource, Duration, Lazy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, DependencyGroup, IDependable

from .._arns import sagemaker_arn
from .._functions import bundled_function
from .._iam import acknowledge_wildcards
from .._lazy import Later
from .._s3 import S3Location
from ..errors import ValidationError, invalid
from ..serving import TRAINING_JOB_TAG, RLEndpoint, WorkflowGate
from .gate import RewardGate
from .registry import ModelPackageGroup, ModelPackageGroupBase, ModelRegistry, group_from

_READ_REASON = (
    "Reads the gated job (and the serving policy's job) of this estimator; their names "
    "(<base>-<timestamp>) are chosen at deploy time."
)


_SEE = "README.md#gating-and-promotion"


def gated(
    estimator: Construct,
    gate: object,
    registry: object,
    *,
    wait: bool,
    metric_names: Sequence[str],
    job_name_base: str,
    training_job_arns: str,
    output: S3Location,
    output_key: kms.IKey | None,
    training_job_name: str,
    completion: IDependable,
) -> PolicyGate | None:
    """The gate (and registry) of ``deploy(gate=..., registry=...)``, checked; None without."""
    if gate is None and registry is None:
        return None
    if gate is not None and not isinstance(gate, RewardGate):
        raise invalid("gate", gate, "a RewardGate(metric=..., threshold=...) or None", see=_SEE)
    registry = ModelRegistry() if registry is None else registry
    if not isinstance(registry, ModelRegistry):
        raise invalid("registry", registry, "a ModelRegistry(...) or None", see=_SEE)
    if registry.manual_approval and wait:
        raise ValidationError(
            f"registry=ModelRegistry(manual_approval=True) on {estimator.node.path} needs "
            "fit(wait=False): with fit(wait=True) the model is served inside the CloudFormation "
            "deploy, which cannot wait for a person to approve it. Allowed: fit(wait=False) "
            "(the TrainAndServe workflow waits for the approval, then serves), or "
            f"manual_approval=False. See {_SEE}."
        )
    if gate is not None:
        gate.check_source(metric_names, estimator.node.path)
    # The estimator's own group is created by the gate on its first registration, not by
    # CloudFormation: AWS::SageMaker::ModelPackageGroup does not exist in every region (the
    # China regions), and a record of what was trained must outlive the stack anyway.
    own = registry.group is None
    group = (
        ModelPackageGroup.from_name(estimator, "Registry", job_name_base)
        if own
        else group_from(estimator, "RegistryGroup", registry.group)
    )
    return PolicyGate(
        estimator,
        "Gate",
        gate=gate,
        registry=registry,
        group=group,
        training_job_arns=training_job_arns,
        output_archives_arn=output.objects_arn(f"{job_name_base}-*/output/output.tar.gz"),
        output_key=output_key,
        wait=wait,
        training_job_name=training_job_name,
        after=completion if wait else None,
        create_group=(
            f"Policies trained by {estimator.node.path} (cdk-sagemaker-rl)" if own else None
        ),
    )


class PolicyGate(Construct):
    """The gate function of one estimator, its grants, and (``fit(wait=True)``) its resource."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        gate: RewardGate | None,
        registry: ModelRegistry,
        group: ModelPackageGroupBase,
        training_job_arns: str,
        output_archives_arn: str,
        output_key: kms.IKey | None,
        wait: bool,
        training_job_name: str,
        after: IDependable | None,
        create_group: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.gate = gate
        self.registry = registry
        self.group = group
        self._endpoint: RLEndpoint | None = None
        self.function: lambda_.Function = bundled_function(
            self,
            "Function",
            folder="custom_resources",
            handler="gate.on_event" if wait else "gate.on_task",
            description="Judges a trained RL policy against its reward gate and registers it",
            timeout=Duration.minutes(5),
        )
        role = self.function.role
        assert isinstance(role, iam.Role)  # bundled_function creates its own role
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob"], resources=[training_job_arns]
            )
        )
        wildcards = [(training_job_arns, _READ_REASON)]
        if gate is not None and gate.evaluation_file is not None:
            self.function.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[output_archives_arn])
            )
            wildcards.append((output_archives_arn, _READ_REASON))
            if output_key is not None:
                output_key.grant_decrypt(self.function)
        acknowledge_wildcards(role, wildcards)
        group.grant_register(self.function)
        if create_group is not None:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:CreateModelPackageGroup",
                        "sagemaker:DescribeModelPackageGroup",
                    ],
                    resources=[group.group_arn],
                )
            )

        properties: dict[str, Any] = {
            "TrainingJobName": training_job_name,
            "ModelPackageGroupName": group.group_name,
            "ApprovalStatus": registry.approval_status,
            "Container": Lazy.any(Later(self._container)),
        }
        if gate is not None:
            properties["Gate"] = gate.properties()
            if gate.max_regression is not None:
                properties["EndpointArn"] = Lazy.any(Later(self._endpoint_arn))
                properties["ChampionTag"] = TRAINING_JOB_TAG
        if create_group is not None:
            properties["CreateGroup"] = {"Description": create_group}
        if registry.manual_approval:
            properties["ApprovalTimeoutSeconds"] = str(int(registry.timeout.to_seconds()))
        self.properties = properties
        self.resource: CustomResource | None = None
        if wait:
            self.resource = CustomResource(
                self,
                "Resource",
                service_token=self.function.function_arn,
                resource_type="Custom::RLPolicyGate",
                properties=properties,
            )
            if after is not None:
                self.resource.node.add_dependency(after)
            CfnOutput(
                self,
                "GateVerdict",
                value=self.resource.get_att_string("Message"),
                description="The reward gate's verdict on the policy this deploy serves",
            )
            CfnOutput(
                self,
                "ModelPackageArn",
                value=self.resource.get_att_string("ModelPackageArn"),
                description="The registry version of the policy this deploy serves",
            )

    def serving_after(self, depends_on: IDependable | None) -> IDependable | None:
        """What the endpoint waits for: ``depends_on``, and with fit(wait=True) this gate."""
        if self.resource is None:
            return depends_on
        return DependencyGroup(*(d for d in (depends_on, self.resource) if d is not None))

    def workflow_gate(self) -> WorkflowGate:
        """The gate as TrainAndServe runs it (``fit(wait=False)``)."""
        payload = {k: v for k, v in self.properties.items() if k != "TrainingJobName"}
        poll = self.registry.poll if self.registry.manual_approval else None
        return WorkflowGate(function=self.function, payload=payload, poll=poll)

    def bind_endpoint(self, endpoint: RLEndpoint) -> None:
        """The endpoint the gate guards: its champion tag, and the container it serves with."""
        self._endpoint = endpoint
        if self.gate is not None and self.gate.max_regression is not None:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:ListTags"], resources=[self._endpoint_arn()]
                )
            )

    def _bound(self) -> RLEndpoint:
        if self._endpoint is None:  # pragma: no cover - the estimator binds it in deploy()
            raise RuntimeError("PolicyGate.bind_endpoint() was not called")
        return self._endpoint

    def _endpoint_arn(self) -> str:
        # From the name fixed at synth, not Ref: the endpoint itself waits for this gate.
        endpoint = self._bound()
        return sagemaker_arn(Stack.of(endpoint), "endpoint", endpoint.endpoint_name)

    def _container(self) -> dict[str, Any]:
        return dict(self._bound().container)
