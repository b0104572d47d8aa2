"""RLEstimator: the SageMaker SDK's RLEstimator as a CDK construct, composed of public pieces.

The facade maps the seed's (and the SDK v2's) argument names onto the composable pieces and adds
what ``cdk deploy`` needs to train and then serve:

* :class:`~cdk_sagemaker_rl.source.TrainingSource` (the code) and
  :class:`~cdk_sagemaker_rl.images.ContainerImage` (the image),
* an artifact bucket and a least-privilege execution role (``training.artifacts``,
  ``training.execution_role``),
* an :class:`~cdk_sagemaker_rl.training.RLTrainingStep` in a state machine
  (``training.state_machine``), started at deploy time by ``fit()`` (``training.deploy_time``),
* an :class:`~cdk_sagemaker_rl.serving.RLEndpoint` from ``deploy()``.

Every piece is created directly under the estimator, so construct ids (and the logical ids that
follow from them) are the same as when this was one class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Annotations, Duration, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct, IDependable

from ._signature import named_options
from .distributed.ray_cluster import RayCluster
from .errors import ValidationError, invalid
from .gating import ModelRegistry, PolicyGate, RewardGate, gated
from .images import ContainerImage, RLFramework, RLToolkit
from .observability import EstimatorMonitoring, Monitoring
from .serving import (
    AutoScaling,
    DataCapture,
    EndpointUpdate,
    RLEndpoint,
    ServerlessInference,
    ServingPlan,
    WorkflowTarget,
    serving_plan,
)
from .training import arguments
from .training.artifacts import LOG_DELIVERY_BY_POLICY
from .training.attach import AttachedTrainingJob, acknowledge_construct_policies, image_choice
from .training.config import DEFAULT_CONTAINER_LOG_LEVEL, InputMode, TrainingConfig
from .training.deploy_time import WAIT_CONDITION_LIMIT_SECONDS, WAIT_MARGIN_SECONDS, TrainingRun
from .training.execution_role import grant_inputs
from .training.inputs import TrainingInput, uris
from .training.instance_groups import InstanceGroup, refuse_with_groups
from .training.job import job_source, training_job_parts
from .training.outputs import artifact_key, capture_destination, output_location
from .training.state_machine import training_state_machine
from .training.step import RLTrainingStep

_DEPLOYING = "README.md#deploying"
#: The arguments of one instance type and count (seed names, SDK v2 aliases): not with groups.
_SINGLE_TYPE = ("train_instance_type", "instance_type", "train_instance_count", "instance_count")


class RLEstimator(Construct):
    """Train a reinforcement-learning policy on SageMaker, the way the SDK's RLEstimator did.

    Arguments keep the seed document's names (``train_instance_type`` ...) and accept the SDK v2
    names as aliases (``instance_type`` ...). See README.md#argument-reference for each one.
    """

    @named_options(see="README.md#argument-reference")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entry_point: str,
        toolkit: RLToolkit | str | None = None,
        toolkit_version: str | None = None,
        framework: RLFramework | str | None = None,
        framework_version: str | None = None,
        role: str | iam.IRole | None = None,
        train_instance_type: str | None = None,
        train_instance_count: int | None = None,
        train_volume_size: int | Size | None = None,
        train_max_run: int | Duration | None = None,
        instance_type: str | None = None,
        instance_count: int | None = None,
        volume_size: int | Size | None = None,
        max_run: int | Duration | None = None,
        image_name: str | ContainerImage | None = None,
        image_uri: str | ContainerImage | None = None,
        source_dir: str | None = None,
        dependencies: Sequence[str] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        input_mode: InputMode | str = InputMode.FILE,
        output_path: str | s3.IBucket | None = None,
        output_prefix: str | None = None,
        output_kms_key: str | kms.IKey | None = None,
        job_name: str | None = None,
        base_job_name: str | None = None,
        metric_definitions: Sequence[Mapping[str, str]] | None = None,
        environment: Mapping[str, str] | None = None,
        container_log_level: int = DEFAULT_CONTAINER_LOG_LEVEL,
        use_spot_instances: bool = False,
        max_wait: int | Duration | None = None,
        checkpoint_s3_uri: str | s3.IBucket | None = None,
        checkpoint_prefix: str | None = None,
        checkpoint_local_path: str | None = None,
        artifact_bucket: s3.IBucket | None = None,
        bucket_encryption_key: kms.IKey | None = None,
        training_revision: str | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        subnets: Sequence[str] | None = None,
        security_group_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
        max_retry_attempts: int | None = None,
        enable_network_isolation: bool = False,
        encrypt_inter_container_traffic: bool = False,
        debugger_hook_config: bool = True,
        disable_profiler: bool = False,
        monitoring: Monitoring | None = None,
        instance_groups: Sequence[InstanceGroup] | None = None,
        distribution: RayCluster | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.node.set_context(LOG_DELIVERY_BY_POLICY, True)
        acknowledge_construct_policies(self)
        self._stack = Stack.of(self)
        pick = arguments.pick
        if instance_groups is not None:  # each group has its own type and count
            single = (train_instance_type, instance_type, train_instance_count, instance_count)
            refuse_with_groups(dict(zip(_SINGLE_TYPE, single, strict=True)))
        self.config = TrainingConfig(
            instance_type=pick(
                "train_instance_type", train_instance_type, "instance_type", instance_type
            ),
            instance_count=pick(
                "train_instance_count", train_instance_count, "instance_count", instance_count
            ),
            instance_groups=instance_groups,
            volume_size=pick("train_volume_size", train_volume_size, "volume_size", volume_size),
            max_run=pick("train_max_run", train_max_run, "max_run", max_run),
            input_mode=input_mode,
            hyperparameters=hyperparameters,
            metric_definitions=metric_definitions,
            environment=environment,
            container_log_level=container_log_level,
            use_spot_instances=use_spot_instances,
            max_wait=max_wait,
            checkpoint_local_path=checkpoint_local_path,
            max_retry_attempts=max_retry_attempts,
            enable_network_isolation=enable_network_isolation,
            encrypt_inter_container_traffic=encrypt_inter_container_traffic,
            debugger_hook_config=debugger_hook_config,
            disable_profiler=disable_profiler,
            tags=tags,
        )
        # Changing the revision retrains on the next deploy even when nothing else changed.
        self.training_revision = training_revision

        image_given = pick("image_name", image_name, "image_uri", image_uri)
        chosen = image_choice(
            self, image_given, toolkit, toolkit_version, framework, framework_version, required=True
        )
        assert chosen is not None  # required=True raises instead
        self.image_spec: ContainerImage = chosen
        if job_name is not None and base_job_name is not None:
            raise invalid("job_name", job_name, "None when base_job_name is given (one name base)")
        self.job_name = job_name
        self.source = job_source(
            self,
            "SourceCode",
            image=chosen,
            config=self.config,
            distribution=distribution,
            entry_point=entry_point,
            source_dir=source_dir,
            dependencies=dependencies,
        )
        self.source_bundle, self.source_asset = self.source.bundle, self.source.asset
        output_path, output_prefix = output_location(
            self, output_path, output_prefix, artifact_bucket, bucket_encryption_key
        )

        # --- the job: image, role, locations, network; then the step and its state machine -----
        self.parts = training_job_parts(
            self,
            config=self.config,
            image=self.image_spec,
            source=self.source,
            output_path=output_path,
            output_prefix=output_prefix,
            job_name_base=job_name or base_job_name,
            job_name_argument="job_name" if job_name else "base_job_name",
            role=role,
            output_kms_key=output_kms_key,
            checkpoint_s3_uri=checkpoint_s3_uri,
            checkpoint_prefix=checkpoint_prefix,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            subnets=subnets,
            security_group_ids=security_group_ids,
            distribution=distribution,
        )
        assert self.parts.job_name_base is not None  # training_job_parts always sets it
        self.job_name_base: str = self.parts.job_name_base
        self.image, self.role = self.parts.image, self.parts.role
        self.bucket: s3.IBucket | None = self.parts.output.bucket
        #: Verbatim, as the SDK sends it (a trailing slash included).
        self.output_path = self.parts.output.uri
        self.step = RLTrainingStep(self, "Train", parts=self.parts)
        built = training_state_machine(self, self.step)
        self.state_machine = built.state_machine
        self.log_group = built.log_group
        self.signal_function = built.signal_function
        #: The dashboard and alarms (README.md#monitoring); None with Monitoring.disabled().
        self.monitoring = _monitoring(self, monitoring)
        self._fitted = False
        self._wait = True
        self._endpoint: RLEndpoint | None = None

    # ------------------------------------------------------------------------------ public API
    def grant_start_training(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start (and so retrain) this estimator's training workflow."""
        return self.state_machine.grant_start_execution(grantee)

    def training_request(self) -> dict[str, Any]:
        """The CreateTrainingJob request the state machine sends (for review and parity tests)."""
        return self.step.request()

    def fit(
        self,
        inputs: str | TrainingInput | Mapping[str, str | TrainingInput] | None = None,
        wait: bool = True,
        logs: bool = True,
    ) -> None:
        """Train at deploy time: ``cdk deploy`` starts the training state machine.

        ``inputs`` are the channels (an S3 URI or a ``TrainingInput`` is the ``training``
        channel; a dict maps channel names to either). With ``wait=True`` the stack waits (up
        to 12 hours) for the job before creating dependents such as the endpoint; with
        ``wait=False`` the deploy only starts it.
        """
        if self._fitted:
            raise ValidationError(
                f"fit() was already called on {self.node.path}; one estimator trains once per "
                "deploy. Create a second RLEstimator for a second training."
            )
        arguments.boolean(wait, "wait")
        arguments.boolean(logs, "logs")
        channels = arguments.channels(inputs)
        self.step.add_inputs(channels)
        grant_inputs(self.role, uris(channels))
        if wait:
            _cap_default_max_run(self)
        self._fitted = True
        self._wait = wait
        self.training_run = TrainingRun(
            self,
            "DeployTime",
            state_machine=self.state_machine,
            job_name_base=self.job_name_base,
            training_job_arns=self.step.training_job_arns,
            output_uri=self.output_path,
            fingerprint=self.step.fingerprint(self.training_revision),
            job_window_seconds=self.config.job_window_seconds,
            window_argument="max_wait" if self.config.max_wait_seconds else "train_max_run",
            wait=wait,
            logs=logs,
        )

    @named_options(see=_DEPLOYING)
    def deploy(
        self,
        instance_type: str | None = None,
        initial_instance_count: int = 1,
        *,
        entry_point: str | None = None,
        image: ContainerImage | str | None = None,
        environment: Mapping[str, str] | None = None,
        serverless: ServerlessInference | None = None,
        update: EndpointUpdate | None = None,
        autoscaling: AutoScaling | None = None,
        data_capture: DataCapture | None = None,
        volume_size: int | Size | None = None,
        model_data_download_timeout: Duration | None = None,
        container_startup_health_check_timeout: Duration | None = None,
        gate: RewardGate | None = None,
        registry: ModelRegistry | None = None,
        kms_key: kms.IKey | str | None = None,
        variant_name: str = "AllTraffic",
        function_url: bool = False,
        function_url_auth_type: lambda_.FunctionUrlAuthType = lambda_.FunctionUrlAuthType.AWS_IAM,
        allow_unauthenticated_function_url: bool = False,
        depends_on: IDependable | None = None,
    ) -> RLEndpoint:
        """Serve the trained policy: SageMaker model, endpoint config, endpoint, predict Lambda.

        After ``fit(wait=True)`` they are CloudFormation resources created once the training has
        completed. After ``fit(wait=False)`` the model does not exist during the deploy, so the
        deploy starts a workflow that trains and then creates the model and endpoint config and
        creates or updates the endpoint (its name is fixed at synth time); see
        README.md#deploying for what is not available then.

        ``update``, ``serverless``, ``autoscaling``, ``data_capture`` and the container options:
        README.md#production-serving (a ``DataCapture()`` without a destination writes under
        ``data-capture/`` of the artifact bucket); ``gate``, ``registry``:
        README.md#gating-and-promotion.
        """
        _check_deployable(self)
        policy_gate = _gate(self, gate, registry)
        plan = _serving_plan(self, image)
        depends_on, model_object, workflow = _serving_target(self, depends_on)
        if policy_gate is not None:
            depends_on = policy_gate.serving_after(depends_on)
        endpoint = RLEndpoint(
            self,
            "Serving",
            model_data_url=self.training_run.model_data_url,
            model_data_object_arn=model_object,
            plan=plan,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            depends_on=depends_on,
            workflow=workflow,
            entry_point=entry_point,
            environment=environment,
            serverless=serverless,
            update=update,
            autoscaling=autoscaling,
            data_capture=capture_destination(data_capture, self.parts),
            volume_size=volume_size,
            model_data_download_timeout=model_data_download_timeout,
            container_startup_health_check_timeout=container_startup_health_check_timeout,
            kms_key=kms_key,
            # The serving role must decrypt the artifact the training wrote with these keys.
            model_kms_key=artifact_key(self, self.parts),
            variant_name=variant_name,
            function_url=function_url,
            function_url_auth_type=function_url_auth_type,
            allow_unauthenticated_function_url=allow_unauthenticated_function_url,
            gate=policy_gate.workflow_gate() if policy_gate and workflow else None,
            served_training_job=(
                self.training_run.training_job_name if policy_gate and not workflow else None
            ),
        )
        #: The reward gate and registry (README.md#gating-and-promotion); None without them.
        self.policy_gate = policy_gate
        _wire_endpoint(self, endpoint, policy_gate)
        self._endpoint = endpoint
        return endpoint

    #: ``RLEstimator.attach(scope, id, training_job_name=...)``: serve a training job that
    #: already exists (the seed's classmethod; the class it builds is the public piece).
    attach = AttachedTrainingJob


def _serving_plan(estimator: RLEstimator, image: ContainerImage | str | None) -> ServingPlan:
    """deploy()'s image (the training image's serving image unless ``image`` is given) and what
    it needs from the training: the user's entry point, never the Ray launcher."""
    return serving_plan(
        estimator.image_spec,
        estimator.image,
        image,
        program=estimator.source.entry_point,
        submit_directory=estimator.source.s3_url,
        container_log_level=estimator.config.container_log_level,
    )


def _cap_default_max_run(estimator: RLEstimator) -> None:
    """The SDK's 24 h default cannot be waited for by a deploy: it is lowered and said so (an
    explicit value that long is an error, in TrainingRun)."""
    window = WAIT_CONDITION_LIMIT_SECONDS - WAIT_MARGIN_SECONDS
    if estimator.config.cap_default_max_run(window):
        Annotations.of(estimator).add_info(
            f"train_max_run defaults to {window} s (not the SDK's 86400 s) because fit(wait="
            "True) waits for the job inside the deploy; set train_max_run to choose."
        )


def _wire_endpoint(
    estimator: RLEstimator, endpoint: RLEndpoint, policy_gate: PolicyGate | None
) -> None:
    """What follows the endpoint: the gate watches it, the dashboard charts it, and after
    fit(wait=False) the deploy starts the workflow that serves it."""
    if policy_gate is not None:
        policy_gate.bind_endpoint(endpoint)
    if estimator.monitoring is not None:
        estimator.monitoring.add_endpoint(endpoint, alarms=endpoint.alarms)
    if endpoint.workflow is not None:
        estimator.training_run.start_workflow(endpoint.workflow, depends_on=[endpoint.role])


def _monitoring(estimator: RLEstimator, options: object) -> EstimatorMonitoring | None:
    """One dashboard and the alarms per estimator, unless switched off."""
    if options is None:
        options = Monitoring()
    if isinstance(options, Monitoring) and not options.enabled:
        return None
    return EstimatorMonitoring(
        estimator,
        "Monitoring",
        name_base=estimator.job_name_base,
        metric_definitions=estimator.config.metric_definitions(estimator.image),
        state_machine=estimator.state_machine,
        options=options,  # type: ignore[arg-type]  # checked by EstimatorMonitoring
    )


def _gate(estimator: RLEstimator, gate: object, registry: object) -> PolicyGate | None:
    """deploy()'s gate and registry (gating.gated checks them), fed the estimator's pieces."""
    return gated(
        estimator,
        gate,
        registry,
        wait=estimator._wait,
        metric_names=[d["Name"] for d in estimator.config.metric_definitions(estimator.image)],
        job_name_base=estimator.job_name_base,
        training_job_arns=estimator.step.training_job_arns,
        output=estimator.parts.output,
        output_key=artifact_key(estimator, estimator.parts),
        training_job_name=estimator.training_run.training_job_name,
        completion=estimator.training_run.completion,
    )


def _check_deployable(estimator: RLEstimator) -> None:
    """deploy() needs a fit() and happens once per estimator."""
    if not estimator._fitted:
        raise ValidationError(
            f"deploy() on {estimator.node.path} needs a model: call fit() first (or use "
            "RLEstimator.attach(...) for an existing training job). See README.md#deploying."
        )
    if estimator._endpoint is not None:
        raise ValidationError(
            f"deploy() was already called on {estimator.node.path}: one estimator serves one "
            f"endpoint ({estimator._endpoint.node.path}); use that RLEndpoint (grant_invoke, "
            "predict_function), or create a second RLEstimator for a second endpoint. "
            "See README.md#deploying."
        )


def _serving_target(
    estimator: RLEstimator, depends_on: IDependable | None
) -> tuple[IDependable | None, str, WorkflowTarget | None]:
    """What the endpoint waits for, the artifact it reads, and the workflow that serves it."""
    workflow: WorkflowTarget | None = None
    model_object = estimator.training_run.model_data_object_arn
    if estimator._wait:
        depends_on = depends_on or estimator.training_run.completion
    else:
        # fit(wait=False): the deploy starts TrainAndServe, which serves what it trained.
        if depends_on is not None:
            raise invalid(
                "depends_on",
                depends_on,
                "nothing with fit(wait=False): the endpoint is created after the deploy, so "
                "no CloudFormation resource can wait for it (or be waited for by it)",
                see=_DEPLOYING,
            )
        model_object = estimator.parts.output.objects_arn(
            f"{estimator.job_name_base}-*/output/model.tar.gz"
        )
        workflow = WorkflowTarget(
            training_machine=estimator.state_machine,
            name_base=estimator.job_name_base,
            # Tags.of(...) reaches what the workflow creates, as it reaches the CloudFormation
            # model and endpoint config after fit(wait=True); explicit tags are the job's.
            extra_tags=estimator.step.inherited_tags,
        )
    return depends_on, model_object, workflow
