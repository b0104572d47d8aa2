"""``RLEndpoint``: a SageMaker endpoint serving one trained policy, and its predict function.

It is an ``aws_sagemaker.IEndpoint``, so what aws-cdk-lib builds on endpoints takes it as it is
(``aws_apigateway.SagemakerIntegration(endpoint)``, ``grant_invoke``), and it needs nothing from
an estimator: any ``model.tar.gz`` URL and a :class:`~.plan.ServingPlan` will do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Unpack

import jsii
from aws_cdk import CfnOutput, Duration, Resource, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.interfaces import aws_sagemaker as sagemaker_refs
from constructs import Construct, IDependable

from .._arns import sagemaker_arn
from .._naming import unique_physical_name
from ..errors import ValidationError
from ..images import BoundImage
from .autoscaling import AutoScaling, cloudformation_autoscaling
from .cloudformation import HostingResources, hosting_resources
from .data_capture import DataCapture, bind_data_capture
from .deployment import EndpointUpdate
from .gate_states import TRAINING_JOB_TAG, WorkflowGate
from .metrics import INSTANCE_NAMESPACE, MetricOptions, failed_requests, variant_metric
from .model_role import acknowledge_per_run_artifacts, model_role
from .options import EndpointOptions, endpoint_options
from .plan import ServingPlan
from .predict import add_function_url, predict_function
from .rollback_alarms import rollback_alarms
from .serverless import ServerlessInference
from .workflow import ServingWorkflow, WorkflowTarget

if TYPE_CHECKING:  # metrics.variant_metric imports it when a metric is built
    from aws_cdk import aws_cloudwatch as cloudwatch

#: The image of a serverless variant is chosen as for this CPU instance type: serverless
#: endpoints run on CPU only.
_SERVERLESS_PROCESSOR_PROXY = "ml.m5.large"


@jsii.implements(sagemaker.IEndpoint)
class RLEndpoint(Resource):
    """A SageMaker endpoint serving one trained policy, and a Lambda that calls ``predict``.

    Model and endpoint config names are left to CloudFormation, so a new model replaces them; the
    endpoint is updated in place to the new config, so its name survives retraining.

    With ``workflow`` (``fit(wait=False)``) the model does not exist while CloudFormation runs:
    a state machine trains, then creates the model and endpoint config and creates or updates an
    endpoint whose name is fixed at synth time (see :mod:`.workflow`). The CloudFormation
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
        instance_type: str | None = None,
        initial_instance_count: int = 1,
        entry_point: str | None = None,
        environment: Mapping[str, str] | None = None,
        serverless: ServerlessInference | None = None,
        update: EndpointUpdate | None = None,
        autoscaling: AutoScaling | None = None,
        data_capture: DataCapture | None = None,
        volume_size: int | Size | None = None,
        model_data_download_timeout: Duration | None = None,
        container_startup_health_check_timeout: Duration | None = None,
        kms_key: kms.IKey | str | None = None,
        model_kms_key: kms.IKey | None = None,
        variant_name: str = "AllTraffic",
        function_url: bool = False,
        function_url_auth_type: lambda_.FunctionUrlAuthType = lambda_.FunctionUrlAuthType.AWS_IAM,
        allow_unauthenticated_function_url: bool = False,
        depends_on: IDependable | None = None,
        workflow: WorkflowTarget | None = None,
        gate: WorkflowGate | None = None,
        served_training_job: str | None = None,
    ) -> None:
        # Checked before the construct exists: a refused option leaves no half-built endpoint.
        options = endpoint_options(
            scope,
            plan,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            entry_point=entry_point,
            environment=environment,
            serverless=serverless,
            update=update,
            autoscaling=autoscaling,
            data_capture=data_capture,
            volume_size=volume_size,
            model_data_download_timeout=model_data_download_timeout,
            container_startup_health_check_timeout=container_startup_health_check_timeout,
            kms_key_value=kms_key,
            model_kms_key=model_kms_key,
            variant_name=variant_name,
            function_url=function_url,
            function_url_auth_type=function_url_auth_type,
            allow_unauthenticated_function_url=allow_unauthenticated_function_url,
            with_workflow=workflow is not None,
        )
        super().__init__(scope, construct_id)
        self.plan = plan
        self.variant_name = options.variant_name
        self.workflow: ServingWorkflow | None = None
        self._hosting: HostingResources | None = None
        bound = _bind_image(self, plan, options)
        image_uri = bound.image_uri if bound is not None else plan.image_uri or ""
        #: The serving container (image, environment): what a registry version records.
        self.container: dict[str, Any] = {"Image": image_uri}
        if options.environment:
            self.container["Environment"] = dict(options.environment)
        # Fixed at synth time in both modes: the predict function, IAM and the model role's log
        # permission name it before it exists.
        self._endpoint_name: str = unique_physical_name(self)
        self.role = model_role(
            self,
            model_data_object_arn=model_data_object_arn,
            endpoint_name=self._endpoint_name,
            image=bound,
            model_kms_key=options.model_kms_key,
        )
        self._capture = bind_data_capture(self, options.data_capture, None)
        if self._capture is not None:
            self._capture.grant_write(self.role, self._endpoint_name)
        #: The alarms this endpoint created for itself (errors, latency); SageMaker rolls an
        #: update back when one fires (unless ``EndpointUpdate(default_alarms=False)``).
        self.alarms: list[cloudwatch.Alarm] = (
            rollback_alarms(
                self,
                self._endpoint_name,
                options.variant_name,
                options.update.rollback_thresholds,
            )
            if options.update.default_alarms
            else []
        )
        watched = options.update.watched_alarms(self.alarms)
        self._deployment_config = options.update.request([a.alarm_name for a in watched])
        if workflow is not None:
            self._serve_with_workflow(workflow, model_data_object_arn, image_uri, options, gate)
        else:
            self._hosting = hosting_resources(
                self,
                role=self.role,
                endpoint_name=self._endpoint_name,
                model_data_url=model_data_url,
                image_uri=image_uri,
                environment=options.environment,
                variant=options.variant,
                kms_key=options.kms_key,
                data_capture=self._capture,
                deployment_config=self._deployment_config,
                retain_variant_properties=options.autoscaling is not None,
                depends_on=depends_on,
            )
            if served_training_job is not None:
                # The next reward gate's champion: the job whose policy this endpoint serves.
                self._hosting.endpoint.tags.set_tag(TRAINING_JOB_TAG, served_training_job)
            if options.autoscaling is not None:
                cloudformation_autoscaling(
                    self,
                    options.autoscaling,
                    endpoint_name=self._endpoint_name,
                    variant_name=options.variant_name,
                    endpoint=self._hosting.endpoint,
                )
            # ``Ref`` of AWS::SageMaker::Endpoint is its ARN.
            self._endpoint_arn: str = self._hosting.endpoint.ref

        self.predict_function = predict_function(
            self,
            endpoint_name=self.endpoint_name,
            endpoint_arn=self.endpoint_arn,
            content_type=plan.content_type,
            accept=plan.accept,
        )
        self.function_url: lambda_.FunctionUrl | None = None
        if options.function_url:
            self.function_url = add_function_url(
                self, self.predict_function, options.function_url_auth_type
            )

        CfnOutput(self, "EndpointName", value=self.endpoint_name)
        CfnOutput(self, "PredictFunctionName", value=self.predict_function.function_name)
        CfnOutput(self, "PredictFunctionArn", value=self.predict_function.function_arn)
        CfnOutput(self, "ModelDataUrl", value=model_data_url)

    def _serve_with_workflow(
        self,
        target: WorkflowTarget,
        model_data_object_arn: str,
        image_uri: str,
        options: EndpointOptions,
        gate: WorkflowGate | None,
    ) -> None:
        """A state machine trains, then creates the model, config and (fixed-name) endpoint."""
        acknowledge_per_run_artifacts(self.role, model_data_object_arn)
        container: dict[str, Any] = {"Image": image_uri}
        if options.environment:
            container["Environment"] = options.environment
        self.workflow = ServingWorkflow(
            self,
            "Workflow",
            target=target,
            endpoint_name=self._endpoint_name,
            container=container,
            model_role=self.role,
            variant=options.variant,
            kms_key=options.kms_key,
            data_capture=self._capture,
            deployment_config=self._deployment_config,
            autoscaling=options.autoscaling,
            gate=gate,
        )
        self._endpoint_arn = sagemaker_arn(Stack.of(self), "endpoint", self._endpoint_name)

    # ------------------------------------------------------------------ aws_sagemaker.IEndpoint
    @property
    def endpoint_name(self) -> str:
        """The endpoint's name (fixed at synth time with ``fit(wait=False)``)."""
        return self._endpoint_name

    @property
    def endpoint_arn(self) -> str:
        return self._endpoint_arn

    @property
    def endpoint_ref(self) -> sagemaker_refs.EndpointReference:
        return sagemaker_refs.EndpointReference(endpoint_arn=self.endpoint_arn)

    @property
    def data_capture_uri(self) -> str | None:
        """Where SageMaker writes this endpoint's captured requests and responses (JSON Lines
        under ``yyyy/mm/dd/hh/``), None without ``data_capture``: a later
        ``fit(inputs={"experience": endpoint.data_capture_uri})`` trains on them."""
        if self._capture is None:
            return None
        return self._capture.uri_for(self._endpoint_name, self.variant_name)

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call the SageMaker endpoint (``sagemaker:InvokeEndpoint``)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )

    def grant_predict(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call the predict function (``lambda:InvokeFunction``)."""
        return self.predict_function.grant_invoke(grantee)

    # ------------------------------------------------------------------ CloudFormation resources
    def _hosted(self, name: str) -> HostingResources:
        if self._hosting is None:
            raise ValidationError(
                f"{self.node.path}.{name} is not available with fit(wait=False): the model only "
                "exists once training has finished, after the deploy, so the serving workflow "
                "creates the model, endpoint config and endpoint and CloudFormation has no "
                "resource for them. Use endpoint_name, endpoint_arn, predict_function or "
                "workflow.state_machine instead, or fit(wait=True). See README.md#deploying."
            )
        return self._hosting

    @property
    def model(self) -> sagemaker.CfnModel:
        """The ``AWS::SageMaker::Model`` (not with ``fit(wait=False)``: a workflow creates it)."""
        return self._hosted("model").model

    @property
    def endpoint_config(self) -> sagemaker.CfnEndpointConfig:
        """The ``AWS::SageMaker::EndpointConfig`` (not with ``fit(wait=False)``)."""
        return self._hosted("endpoint_config").endpoint_config

    @property
    def endpoint(self) -> sagemaker.CfnEndpoint:
        """The ``AWS::SageMaker::Endpoint`` (not with ``fit(wait=False)``: a workflow creates
        it under the fixed ``endpoint_name``)."""
        return self._hosted("endpoint").endpoint

    # ------------------------------------------------------------------------------ metrics
    def metric(self, metric_name: str, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Any ``AWS/SageMaker`` (invocation) metric of this endpoint's variant (default
        statistic Average); instance utilization is :meth:`metric_instance`."""
        return variant_metric(self.endpoint_name, self.variant_name, metric_name, props)

    def metric_instance(
        self, metric_name: str, **props: Unpack[MetricOptions]
    ) -> cloudwatch.Metric:
        """``CPUUtilization``, ``MemoryUtilization``, ``DiskUtilization``... of the variant's
        instances (``/aws/sagemaker/Endpoints``, Average): SageMaker publishes them there, not
        in ``AWS/SageMaker``."""
        return variant_metric(
            self.endpoint_name, self.variant_name, metric_name, props, namespace=INSTANCE_NAMESPACE
        )

    def metric_failed_requests(self, period: Duration | None = None) -> cloudwatch.IMetric:
        """Requests answered with a 5xx or a model error per ``period`` (default 5 minutes;
        the rollback alarms' rule)."""
        period = period if period is not None else Duration.minutes(5)
        return failed_requests(
            self.metric_invocation5xx_errors(), self.metric_invocation_model_errors(), period
        )

    def metric_invocations(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests sent to the variant (Sum)."""
        return self._metric("Invocations", "Sum", props)

    def metric_model_latency(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Time the model took to answer, in microseconds (Average)."""
        return self._metric("ModelLatency", "Average", props)

    def metric_invocation4xx_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests the model answered with a 4xx status (Sum)."""
        return self._metric("Invocation4XXErrors", "Sum", props)

    def metric_invocation5xx_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests the model answered with a 5xx status (Sum)."""
        return self._metric("Invocation5XXErrors", "Sum", props)

    def metric_invocation_model_errors(self, **props: Unpack[MetricOptions]) -> cloudwatch.Metric:
        """Requests that ended in a model error, timeouts included (Sum)."""
        return self._metric("InvocationModelErrors", "Sum", props)

    def _metric(self, name: str, statistic: str, props: MetricOptions) -> cloudwatch.Metric:
        return variant_metric(
            self.endpoint_name, self.variant_name, name, props, statistic=statistic
        )


def _bind_image(scope: Construct, plan: ServingPlan, options: EndpointOptions) -> BoundImage | None:
    """The serving image for the variant's instance type (a CPU one for serverless)."""
    if plan.image is None:
        return None
    if options.instance_type is not None:
        return plan.image.bind(scope, instance_type=options.instance_type)
    try:
        return plan.image.bind(scope, instance_type=_SERVERLESS_PROCESSOR_PROXY)
    except ValidationError as error:
        raise ValidationError(
            f"serverless=ServerlessInference(...) runs on CPU only (SageMaker), and the serving "
            f"image has no CPU variant: {error} Pass a CPU image to deploy(image=...), or an "
            "instance_type. See README.md#serverless-inference."
        ) from None
