"""Serving a trained policy: SageMaker model, endpoint config, endpoint and the predict Lambda.

The serving image follows what the SDK chose for each kind of trained policy (TensorFlow Serving
for TensorFlow policies, MXNet with an entry point for MXNet, the training image for custom images),
and adds what the SDK refused: Ray policies served from their TensorFlow SavedModel, and PyTorch
policies served by the PyTorch inference container with an inference script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IDependable

from ._functions import bundled_function
from ._iam import acknowledge_wildcard
from .errors import ValidationError, invalid
from .images import BoundImage, ContainerImage, RLFramework
from .instance_types import validate_serving_instance_type

if TYPE_CHECKING:
    from ._workflow_serving import ServingWorkflow, WorkflowTarget

JSON = "application/json"


@dataclass(frozen=True)
class ServingPlan:
    """How one trained policy is served: the image and what the container needs to know."""

    kind: str
    image: ContainerImage | None
    image_uri: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    needs_entry_point: bool = False
    content_type: str = JSON
    accept: str = JSON


def serving_plan(
    training_image: ContainerImage,
    bound: BoundImage,
    override: ContainerImage | str | None,
    *,
    program: str | None = None,
    submit_directory: str | None = None,
    container_log_level: int = 20,
) -> ServingPlan:
    """Choose the serving image for a policy trained with ``training_image`` (facts table)."""
    if override is not None:
        image = (
            override if isinstance(override, ContainerImage) else ContainerImage.from_uri(override)
        )
        return ServingPlan("custom", image)
    if bound.is_custom:
        return ServingPlan("custom", training_image)
    framework, version = bound.framework, bound.framework_version
    if framework is RLFramework.TENSORFLOW and version is not None:
        # Coach and Ray both export a TensorFlow SavedModel; TensorFlow Serving speaks
        # {"instances": ...} -> {"predictions": ...}.
        return ServingPlan("tensorflow-serving", ContainerImage.tensorflow_serving(version))
    if framework is RLFramework.MXNET and version is not None:
        env = {
            "SAGEMAKER_PROGRAM": program or "",
            "SAGEMAKER_SUBMIT_DIRECTORY": submit_directory or "",
            "SAGEMAKER_REGION": Aws.REGION,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": str(container_log_level),
        }
        return ServingPlan("mxnet", ContainerImage.mxnet_serving(version), environment=env)
    if framework is RLFramework.PYTORCH and version is not None:
        try:
            image = ContainerImage.pytorch_inference(version)
        except ValidationError as error:
            raise ValidationError(
                f"A PyTorch policy trained with torch {version} has no way to be served: the "
                f"catalogue has no PyTorch inference image for it ({error}). Pass "
                "image=ContainerImage.pytorch_inference('<version>') (or any image) and "
                "entry_point='<inference script>' to deploy(). See README.md#deploying."
            ) from None
        return ServingPlan("pytorch", image, needs_entry_point=True)
    raise ValidationError(
        f"No serving image is known for a policy trained with toolkit={bound.toolkit!r} and "
        f"framework={framework!r}; pass image=ContainerImage.from_uri(...) to deploy(). "
        "See README.md#deploying."
    )


def serving_plan_for_attached(
    scope: Construct,
    image_spec: ContainerImage | None,
    training_image_uri: str,
    instance_type: str,
    override: ContainerImage | str | None,
) -> ServingPlan:
    """Serving for an attached job: the given toolkit's image, or the job's own training image."""
    if override is not None or image_spec is None:
        if override is not None:
            image = (
                override
                if isinstance(override, ContainerImage)
                else ContainerImage.from_uri(override)
            )
            return ServingPlan("custom", image)
        return ServingPlan("custom", None, image_uri=training_image_uri)
    bound = image_spec.bind(scope, instance_type=instance_type)
    return serving_plan(image_spec, bound, None)


class RLEndpoint(Construct):
    """A SageMaker endpoint serving one trained policy, and a Lambda that calls ``predict``.

    Model and endpoint config names are left to CloudFormation, so a new model replaces them; the
    endpoint is updated in place to the new config, so its name survives retraining.

    With ``workflow`` (``fit(wait=False)``) the model does not exist while CloudFormation runs:
    a state machine trains, then creates the model and endpoint config and creates or updates an
    endpoint whose name is fixed at synth time (see ``_workflow_serving``). The CloudFormation
    resources ``model``, ``endpoint_config`` and ``endpoint`` do not exist then.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_data_url: str,
        model_data_object_arn: str,
        plan: ServingPlan,
        instance_type: str,
        initial_instance_count: int = 1,
        entry_point: str | None = None,
        kms_key: kms.IKey | str | None = None,
        model_kms_key: kms.IKey | None = None,
        variant_name: str = "AllTraffic",
        function_url: bool = False,
        function_url_auth_type: lambda_.FunctionUrlAuthType = lambda_.FunctionUrlAuthType.AWS_IAM,
        allow_unauthenticated_function_url: bool = False,
        depends_on: IDependable | None = None,
        workflow: WorkflowTarget | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._workflow_target = workflow
        self.workflow: ServingWorkflow | None = None
        self._model: sagemaker.CfnModel | None = None
        self._endpoint_config: sagemaker.CfnEndpointConfig | None = None
        self._endpoint: sagemaker.CfnEndpoint | None = None
        validate_serving_instance_type(instance_type, "instance_type")
        if (
            isinstance(initial_instance_count, bool)
            or not isinstance(initial_instance_count, int)
            or initial_instance_count < 1
        ):
            raise invalid("initial_instance_count", initial_instance_count, "an integer >= 1")
        if function_url_auth_type != lambda_.FunctionUrlAuthType.AWS_IAM and not (
            allow_unauthenticated_function_url
        ):
            raise invalid(
                "function_url_auth_type",
                function_url_auth_type,
                "FunctionUrlAuthType.AWS_IAM, unless allow_unauthenticated_function_url=True "
                "says you really want a public predict URL",
            )
        environment = dict(plan.environment)
        if plan.needs_entry_point and not entry_point:
            raise ValidationError(
                f"deploy() of a {plan.kind} policy needs entry_point: the name of the "
                "inference script (model_fn/input_fn/predict_fn/output_fn) that your training "
                "script saved under <model dir>/code/, e.g. entry_point='inference.py'. "
                "See README.md#deploying."
            )
        if entry_point is not None:
            if plan.kind == "tensorflow-serving":
                raise invalid(
                    "entry_point",
                    entry_point,
                    "None: TensorFlow Serving serves the SavedModel without a script",
                )
            if "/" in entry_point or not entry_point.endswith(".py"):
                raise invalid(
                    "entry_point", entry_point, "a .py file name inside the model's code/ directory"
                )
            environment["SAGEMAKER_PROGRAM"] = entry_point
        if plan.image is not None:
            bound: BoundImage | None = plan.image.bind(self, instance_type=instance_type)
            image_uri = bound.image_uri if bound else ""
        else:
            bound = None
            image_uri = plan.image_uri or ""

        endpoint_logs = (
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
            "/aws/sagemaker/Endpoints/*"
        )
        attached_repositories = f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:*:repository/*"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker model role: reads exactly one model artifact, pulls one image",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadModelArtifact",
                actions=["s3:GetObject"],
                resources=[model_data_object_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EndpointLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[endpoint_logs],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        if bound is not None:
            bound.grant_pull(self.role)
        else:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="PullTrainingImage",
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    resources=[attached_repositories],
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
            )
        if model_kms_key is not None:
            model_kms_key.grant_decrypt(self.role)
        acknowledge_wildcard(
            self.role,
            endpoint_logs,
            "SageMaker names the endpoint's log group and streams at run time.",
        )
        acknowledge_wildcard(
            self.role,
            "*",
            "cloudwatch:PutMetricData (limited by a namespace condition) and "
            "ecr:GetAuthorizationToken have no resource type.",
        )
        if bound is None:
            acknowledge_wildcard(
                self.role,
                attached_repositories,
                "An attached job's training image is only known at deploy time.",
            )

        if workflow is not None:
            self._serve_with_workflow(
                workflow,
                model_data_object_arn=model_data_object_arn,
                image_uri=image_uri,
                environment=environment,
                instance_type=instance_type,
                initial_instance_count=initial_instance_count,
                variant_name=variant_name,
                kms_key=kms_key,
            )
        else:
            self._serve_with_cloudformation(
                model_data_url=model_data_url,
                image_uri=image_uri,
                environment=environment,
                instance_type=instance_type,
                initial_instance_count=initial_instance_count,
                variant_name=variant_name,
                kms_key=kms_key,
                depends_on=depends_on,
            )

        self.predict_function = bundled_function(
            self,
            "PredictFunction",
            folder="predict",
            handler="index.handler",
            description="Calls predict on the RL policy endpoint",
            timeout=Duration.seconds(90),
            environment={
                "ENDPOINT_NAME": self.endpoint_name,
                "CONTENT_TYPE": plan.content_type,
                "ACCEPT": plan.accept,
            },
        )
        self.predict_function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[self.endpoint_arn])
        )
        self.function_url: lambda_.FunctionUrl | None = None
        if function_url:
            self.function_url = self.predict_function.add_function_url(
                auth_type=function_url_auth_type
            )
            CfnOutput(self, "PredictFunctionUrl", value=self.function_url.url)

        CfnOutput(self, "EndpointName", value=self.endpoint_name)
        CfnOutput(self, "PredictFunctionName", value=self.predict_function.function_name)
        CfnOutput(self, "PredictFunctionArn", value=self.predict_function.function_arn)
        CfnOutput(self, "ModelDataUrl", value=model_data_url)

    # ------------------------------------------------------------------ the two ways to serve
    def _serve_with_cloudformation(
        self,
        *,
        model_data_url: str,
        image_uri: str,
        environment: dict[str, str],
        instance_type: str,
        initial_instance_count: int,
        variant_name: str,
        kms_key: kms.IKey | str | None,
        depends_on: IDependable | None,
    ) -> None:
        """Model, endpoint config and endpoint as CloudFormation resources (the model exists)."""
        container: dict[str, Any] = {"image": image_uri, "modelDataUrl": model_data_url}
        if environment:
            container["environment"] = environment
        self._model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=container,
        )
        # The model must not be created before its role may read the artifact.
        self._model.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        if depends_on is not None:
            self._model.node.add_dependency(depends_on)

        kms_key_id = kms_key if kms_key is None or isinstance(kms_key, str) else kms_key.key_arn
        self._endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    model_name=self._model.attr_model_name,
                    variant_name=variant_name,
                    initial_instance_count=initial_instance_count,
                    instance_type=instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            kms_key_id=kms_key_id,
        )
        self._endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_config_name=self._endpoint_config.attr_endpoint_config_name,
        )
        self.endpoint_name: str = self._endpoint.attr_endpoint_name
        #: ``Ref`` of AWS::SageMaker::Endpoint is its ARN.
        self.endpoint_arn: str = self._endpoint.ref

    def _serve_with_workflow(
        self,
        target: WorkflowTarget,
        *,
        model_data_object_arn: str,
        image_uri: str,
        environment: dict[str, str],
        instance_type: str,
        initial_instance_count: int,
        variant_name: str,
        kms_key: kms.IKey | str | None,
    ) -> None:
        """A state machine trains, then creates the model, config and (fixed-name) endpoint."""
        from ._workflow_serving import ServingWorkflow, fixed_endpoint_name

        acknowledge_wildcard(
            self.role,
            model_data_object_arn,
            "The workflow serves the model of the job it trained; the job's name "
            "(<base>-<timestamp>) is chosen per run.",
        )
        container: dict[str, Any] = {"Image": image_uri}
        if environment:
            container["Environment"] = environment
        self.endpoint_name = fixed_endpoint_name(self)
        self.workflow = ServingWorkflow(
            self,
            "Workflow",
            target=target,
            endpoint_name=self.endpoint_name,
            container=container,
            model_role=self.role,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            variant_name=variant_name,
            kms_key=kms_key,
        )
        # SageMaker ARNs carry the name in lowercase.
        self.endpoint_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.endpoint_name.lower()
        )

    def _cloudformation_resource(self, name: str, resource: Any) -> Any:
        if resource is None:
            raise ValidationError(
                f"{self.node.path}.{name} is not available with fit(wait=False): the model only "
                "exists once training has finished, after the deploy, so the serving workflow "
                "creates the model, endpoint config and endpoint and CloudFormation has no "
                "resource for them. Use endpoint_name, endpoint_arn, predict_function or "
                "workflow.state_machine instead, or fit(wait=True). See README.md#deploying."
            )
        return resource

    @property
    def model(self) -> sagemaker.CfnModel:
        """The ``AWS::SageMaker::Model`` (not with ``fit(wait=False)``: a workflow creates it)."""
        return self._cloudformation_resource("model", self._model)  # type: ignore[no-any-return]

    @property
    def endpoint_config(self) -> sagemaker.CfnEndpointConfig:
        """The ``AWS::SageMaker::EndpointConfig`` (not with ``fit(wait=False)``)."""
        return self._cloudformation_resource(  # type: ignore[no-any-return]
            "endpoint_config", self._endpoint_config
        )

    @property
    def endpoint(self) -> sagemaker.CfnEndpoint:
        """The ``AWS::SageMaker::Endpoint`` (not with ``fit(wait=False)``: a workflow creates
        it under the fixed ``endpoint_name``)."""
        return self._cloudformation_resource(  # type: ignore[no-any-return]
            "endpoint", self._endpoint
        )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call the predict function (``lambda:InvokeFunction``)."""
        return self.predict_function.grant_invoke(grantee)

    def grant_invoke_endpoint(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call the SageMaker endpoint directly (``sagemaker:InvokeEndpoint``)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )
