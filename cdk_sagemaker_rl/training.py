"""RLEstimator: the training half of the SageMaker SDK's RLEstimator as a CDK construct.

The construct owns the execution role, the artifact bucket, the source asset and a Step Functions
state machine whose one SageMaker task sends exactly the CreateTrainingJob request the SDK's
``fit()`` sent for the same arguments. ``fit()`` makes ``cdk deploy`` run that state machine and,
with ``wait=True``, hold the serving resources until the training job has completed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

import jsii
from aws_cdk import (
    ArnFormat,
    Aws,
    CustomResource,
    Duration,
    Fn,
    IStableAnyProducer,
    Lazy,
    RemovalPolicy,
    Size,
    Stack,
    Token,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._functions import bundled_function
from ._iam import (
    S3Location,
    acknowledge,
    acknowledge_compliance,
    acknowledge_wildcard,
    parse_s3_uri,
    pass_role_to_sagemaker,
    sync_events_rule,
)
from .errors import ValidationError, invalid
from .images import BoundImage, ContainerImage, RLFramework, RLToolkit
from .instance_types import validate_training_instance_type
from .source import SourceBundle, build_source_bundle, source_asset

if TYPE_CHECKING:
    from .serving import RLEndpoint, ServingPlan

#: SageMaker's training job name rule (CreateTrainingJob TrainingJobName).
JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
#: ``-YYYY-MM-DD-HH-MM-SS-mmm``: the SDK-style suffix the deploy-time run appends to the base name.
JOB_NAME_SUFFIX_LENGTH = 24
MAX_JOB_NAME_BASE = 63 - JOB_NAME_SUFFIX_LENGTH
#: SageMaker's MaxRuntimeInSeconds limits (28 days).
MAX_RUN_LIMIT_SECONDS = 28 * 24 * 3600
#: A CloudFormation wait condition waits at most 12 hours; deploy-time training must fit in it.
WAIT_CONDITION_LIMIT_SECONDS = 12 * 3600
#: Head-room for instance provisioning, image download and model upload around MaxRuntime.
WAIT_MARGIN_SECONDS = 30 * 60

DEFAULT_VOLUME_SIZE_GB = 30
DEFAULT_MAX_RUN_SECONDS = 24 * 3600
DEFAULT_CONTAINER_LOG_LEVEL = 20
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"

#: Regions without SageMaker Debugger / profiler (SDK v2 ``fw_utils``): no DebugHookConfig there.
DEBUGGER_UNSUPPORTED_REGIONS = frozenset(
    {
        "us-iso-east-1",
        "us-isob-east-1",
        "ap-southeast-3",
        "ap-southeast-4",
        "eu-south-2",
        "me-central-1",
        "ap-south-2",
        "eu-central-2",
        "us-gov-east-1",
    }
)
#: Where the training container finds the code when network isolation forbids S3 downloads.
ISOLATED_SUBMIT_DIRECTORY = "/opt/ml/input/data/code/sourcedir.tar.gz"

#: Hyperparameters the SDK injects and this construct injects likewise; users may not set them.
INJECTED_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
    "sagemaker_s3_output",
    "sagemaker_estimator",
)


class InputMode(str, Enum):  # noqa: UP042 - str() of a member stays as it was released
    """How the training container receives its channels (CreateTrainingJob TrainingInputMode)."""

    FILE = "File"
    PIPE = "Pipe"
    FAST_FILE = "FastFile"

    @classmethod
    def parse(cls, value: InputMode | str) -> InputMode:
        if isinstance(value, InputMode):
            return value
        for mode in cls:
            if str(value).lower() == mode.value.lower():
                return mode
        raise invalid("input_mode", value, [m.value for m in cls])


DEFAULT_METRIC_DEFINITIONS: Mapping[RLToolkit, tuple[tuple[str, str], ...]] = {
    RLToolkit.COACH: (
        ("reward-training", "^Training>.*Total reward=(.*?),"),
        ("reward-testing", "^Testing>.*Total reward=(.*?),"),
    ),
    RLToolkit.RAY: (
        ("episode_reward_mean", "episode_reward_mean: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)"),
        ("episode_reward_max", "episode_reward_max: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)"),
    ),
}


def encode_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """JSON-encode every value as the SDK does: keys through ``str``, values through ``json.dumps``.

    The training toolkit inside the container JSON-decodes them again, so ``1`` arrives as an int
    and ``"x"`` as a string; sending raw strings would change what a training script receives.
    """
    return {str(key): json.dumps(value) for key, value in hyperparameters.items()}


def _seconds(value: int | float | Duration | None, argument: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, Duration):
        if Token.is_unresolved(value.to_seconds()):
            raise invalid(argument, value, "a literal duration")
        seconds = value.to_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(argument, value, "seconds as an int, or an aws_cdk.Duration")
    else:
        seconds = value
    if int(seconds) != seconds:
        raise invalid(argument, value, "a whole number of seconds")
    return int(seconds)


def _pick(
    seed_name: str, seed_value: Any, sdk_name: str, sdk_value: Any, default: Any = None
) -> Any:
    """Accept the seed's argument name and the SDK v2 alias, but never both at once."""
    if seed_value is not None and sdk_value is not None:
        raise ValidationError(
            f"{seed_name}={seed_value!r} and {sdk_name}={sdk_value!r} name the same argument; "
            f"give only one of them ({sdk_name} is the SageMaker SDK v2 alias of {seed_name}). "
            "See README.md#argument-reference."
        )
    if seed_value is not None:
        return seed_value
    return sdk_value if sdk_value is not None else default


@jsii.implements(IStableAnyProducer)
class _Later:
    """A value only final after ``fit()`` (channels, default run time), rendered at synth."""

    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self) -> Any:
        return self._produce()


class RLEstimator(Construct):
    """Train a reinforcement-learning policy on SageMaker, the way the SDK's RLEstimator did.

    Arguments keep the seed document's names (``train_instance_type`` ...) and accept the SDK v2
    names as aliases (``instance_type`` ...). See README.md#argument-reference for each one.
    """

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
        output_path: str | None = None,
        output_kms_key: str | kms.IKey | None = None,
        job_name: str | None = None,
        base_job_name: str | None = None,
        metric_definitions: Sequence[Mapping[str, str]] | None = None,
        environment: Mapping[str, str] | None = None,
        container_log_level: int = DEFAULT_CONTAINER_LOG_LEVEL,
        use_spot_instances: bool = False,
        max_wait: int | Duration | None = None,
        checkpoint_s3_uri: str | None = None,
        checkpoint_local_path: str | None = None,
        artifact_bucket: s3.IBucket | None = None,
        bucket_encryption_key: kms.IKey | None = None,
        training_revision: str | None = None,
        subnets: Sequence[str] | None = None,
        security_group_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
        max_retry_attempts: int | None = None,
        enable_network_isolation: bool = False,
        encrypt_inter_container_traffic: bool = False,
        debugger_hook_config: bool = True,
        disable_profiler: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stack = Stack.of(self)
        _acknowledge_construct_policies(self)

        # --- arguments, seed names first -------------------------------------------------------
        self.instance_type: str = _pick(
            "train_instance_type", train_instance_type, "instance_type", instance_type
        )
        if self.instance_type is None:
            raise invalid(
                "train_instance_type",
                None,
                "a SageMaker training instance type such as ml.m5.large",
            )
        validate_training_instance_type(self.instance_type, "train_instance_type")
        self.instance_count: int = _pick(
            "train_instance_count", train_instance_count, "instance_count", instance_count, 1
        )
        if (
            isinstance(self.instance_count, bool)
            or not isinstance(self.instance_count, int)
            or (self.instance_count < 1)
        ):
            raise invalid("train_instance_count", self.instance_count, "an integer >= 1")
        volume = _pick("train_volume_size", train_volume_size, "volume_size", volume_size)
        self.volume_size_gb = self._volume_gb(volume)
        run = _pick("train_max_run", train_max_run, "max_run", max_run)
        self.max_run_seconds = _seconds(run, "train_max_run", DEFAULT_MAX_RUN_SECONDS)
        self._max_run_given = run is not None
        if not 1 <= self.max_run_seconds <= MAX_RUN_LIMIT_SECONDS:
            raise invalid(
                "train_max_run",
                run,
                f"1 to {MAX_RUN_LIMIT_SECONDS} seconds (SageMaker's 28-day MaxRuntimeInSeconds)",
            )
        self.use_spot_instances = use_spot_instances
        self.max_wait_seconds: int | None = None
        if use_spot_instances:
            self.max_wait_seconds = _seconds(max_wait, "max_wait", self.max_run_seconds)
            if not self.max_run_seconds <= self.max_wait_seconds <= MAX_RUN_LIMIT_SECONDS:
                raise invalid(
                    "max_wait",
                    max_wait,
                    f"train_max_run ({self.max_run_seconds}) to {MAX_RUN_LIMIT_SECONDS} seconds",
                )
        elif max_wait is not None:
            raise invalid("max_wait", max_wait, "None unless use_spot_instances=True")
        self.input_mode = InputMode.parse(input_mode)
        if not isinstance(container_log_level, int) or isinstance(container_log_level, bool):
            raise invalid("container_log_level", container_log_level, "a logging level int")
        self.container_log_level = container_log_level

        # --- the image ---------------------------------------------------------------------------
        image_arg = _pick("image_name", image_name, "image_uri", image_uri)
        self.image_spec = self._image_spec(
            image_arg, toolkit, toolkit_version, framework, framework_version
        )
        self.image: BoundImage = self.image_spec.bind(self, instance_type=self.instance_type)

        # --- names, hyperparameters, metrics ------------------------------------------------------
        if job_name is not None and not JOB_NAME_PATTERN.match(job_name):
            raise invalid(
                "job_name",
                job_name,
                "1-63 letters, digits and hyphens, starting with a letter or "
                "digit (SageMaker's ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})",
            )
        if base_job_name is not None and not JOB_NAME_PATTERN.match(base_job_name):
            raise invalid(
                "base_job_name",
                base_job_name,
                "letters, digits and hyphens (SageMaker job name rule)",
            )
        self.job_name = job_name
        self.job_name_base = self._job_name_base(job_name or base_job_name)
        self.hyperparameters = dict(hyperparameters or {})
        for key in self.hyperparameters:
            if str(key) in INJECTED_HYPERPARAMETERS:
                raise invalid(
                    f"hyperparameters[{key!r}]",
                    self.hyperparameters[key],
                    "any key except the ones the estimator injects: "
                    + ", ".join(INJECTED_HYPERPARAMETERS),
                )
        self.metric_definitions = self._metric_definitions(metric_definitions)
        self.environment = dict(environment or {})
        # Changing the revision retrains on the next deploy even when nothing else changed.
        self.training_revision = training_revision
        self.subnets = list(subnets or [])
        self.security_group_ids = list(security_group_ids or [])
        if bool(self.subnets) != bool(self.security_group_ids):
            raise invalid(
                "subnets/security_group_ids",
                {"subnets": self.subnets, "security_group_ids": self.security_group_ids},
                "both or neither (SageMaker's VpcConfig needs subnets and security groups)",
            )
        self.tags = self._tags(tags)
        if max_retry_attempts is not None and (
            isinstance(max_retry_attempts, bool)
            or not isinstance(max_retry_attempts, int)
            or not 1 <= max_retry_attempts <= 30
        ):
            raise invalid("max_retry_attempts", max_retry_attempts, "an integer from 1 to 30")
        self.max_retry_attempts = max_retry_attempts
        self.enable_network_isolation = enable_network_isolation
        self.encrypt_inter_container_traffic = encrypt_inter_container_traffic
        region = Stack.of(self).region
        # As the SDK: Debugger and the profiler are on by default where SageMaker offers them.
        # An environment-agnostic stack cannot know; it sends the default configuration.
        supported = Token.is_unresolved(region) or region not in DEBUGGER_UNSUPPORTED_REGIONS
        self.debugger_hook_config = debugger_hook_config and supported
        self.disable_profiler = disable_profiler or not supported

        # --- source code -------------------------------------------------------------------------
        self.source_bundle: SourceBundle = build_source_bundle(
            entry_point, source_dir, list(dependencies or [])
        )
        self.source_asset = source_asset(self, "SourceCode", self.source_bundle)

        # --- storage -----------------------------------------------------------------------------
        self.output_kms_key = self._kms_key(output_kms_key)
        self.bucket: s3.IBucket | None
        if output_path is not None:
            if artifact_bucket is not None:
                raise ValidationError(
                    f"output_path={output_path!r} and artifact_bucket are two ways to name where "
                    "artifacts go; give one. See README.md#argument-reference."
                )
            self.output_location = parse_s3_uri(output_path, "output_path")
            self.bucket = None
        else:
            self.bucket = artifact_bucket or self._artifact_bucket(bucket_encryption_key)
            self.output_location = S3Location(self.bucket.bucket_name, "training")
        # Verbatim, as the SDK sends it (a trailing slash included).
        self.output_path = output_path if output_path is not None else self.output_location.uri
        self.checkpoint_location = (
            parse_s3_uri(checkpoint_s3_uri, "checkpoint_s3_uri") if checkpoint_s3_uri else None
        )
        if checkpoint_local_path is not None and self.checkpoint_location is None:
            raise invalid(
                "checkpoint_local_path",
                checkpoint_local_path,
                "None unless checkpoint_s3_uri is given",
            )
        self.checkpoint_local_path = checkpoint_local_path

        # --- role --------------------------------------------------------------------------------
        self.role = self._execution_role(role)
        self._inputs: dict[str, str] = {}
        self._fitted = False
        self._wait = True
        self._served = False

        # --- the workflow ------------------------------------------------------------------------
        self.log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.signal_function = bundled_function(
            self,
            "SignalFunction",
            folder="custom_resources",
            handler="training_run.signal",
            description="Reports a training job's outcome to the CloudFormation deploy "
            "waiting on it",
            timeout=Duration.seconds(90),
        )
        self.state_machine = self._state_machine()
        self._grant_signal_function()

    # ------------------------------------------------------------------------------ public API
    @property
    def training_job_arn_pattern(self) -> str:
        """ARN pattern of the jobs this estimator starts (SageMaker lowercases names in ARNs)."""
        return self._stack.format_arn(
            service="sagemaker",
            resource="training-job",
            resource_name=f"{self.job_name_base.lower()}-*",
        )

    def grant_start_training(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start (and so retrain) this estimator's training workflow."""
        return self.state_machine.grant_start_execution(grantee)

    def fit(
        self,
        inputs: str | Mapping[str, str] | None = None,
        wait: bool = True,
        logs: bool = True,
    ) -> None:
        """Train at deploy time: ``cdk deploy`` starts the training state machine.

        ``inputs`` are the channels (an S3 URI is the ``training`` channel; a dict maps channel
        names to S3 URIs). With ``wait=True`` the stack waits (up to 12 hours) for the job before
        creating dependents such as the endpoint; with ``wait=False`` the deploy only starts it.
        """
        if self._fitted:
            raise ValidationError(
                f"fit() was already called on {self.node.path}; one estimator trains once per "
                "deploy. Create a second RLEstimator for a second training."
            )
        self._inputs = self._parse_inputs(inputs)
        self._grant_inputs()
        window = WAIT_CONDITION_LIMIT_SECONDS - WAIT_MARGIN_SECONDS
        if wait and not self._max_run_given and self.max_run_seconds > window:
            # The SDK's 24 h default cannot be waited for by a deploy; an explicit value that
            # long is an error (in TrainingRun), the default is lowered and said so.
            self.max_run_seconds = window
            from aws_cdk import Annotations

            Annotations.of(self).add_info(
                f"train_max_run defaults to {window} s (not the SDK's 86400 s) because fit(wait="
                "True) waits for the job inside the deploy; set train_max_run to choose."
            )
        self._fitted = True
        self._wait = wait
        from ._deploy_time import TrainingRun  # local import: keeps module import order simple

        self.training_run = TrainingRun(self, "DeployTime", estimator=self, wait=wait, logs=logs)

    def deploy(
        self,
        instance_type: str,
        initial_instance_count: int = 1,
        **kwargs: Any,
    ) -> RLEndpoint:
        """Serve the trained policy: SageMaker model, endpoint config, endpoint, predict Lambda.

        After ``fit(wait=True)`` they are CloudFormation resources created once the training has
        completed. After ``fit(wait=False)`` the model does not exist during the deploy, so the
        deploy starts a workflow that trains and then creates the model and endpoint config and
        creates or updates the endpoint (its name is fixed at synth time); see
        README.md#deploying for what is not available then.
        """
        if not self._fitted:
            raise ValidationError(
                f"deploy() on {self.node.path} needs a model: call fit() first (or use "
                "RLEstimator.attach(...) for an existing training job). See README.md#deploying."
            )
        from .serving import RLEndpoint, serving_plan

        plan = serving_plan(
            self.image_spec,
            self.image,
            kwargs.pop("image", None),
            program=self.source_bundle.entry_point,
            submit_directory=self.source_asset.s3_object_url,
            container_log_level=self.container_log_level,
        )
        # The serving role must decrypt the artifact the training wrote with these keys.
        kwargs.setdefault("model_kms_key", self._artifact_key())
        if not self._wait:
            return self._deploy_with_workflow(plan, instance_type, initial_instance_count, kwargs)
        return RLEndpoint(
            self,
            "Serving",
            model_data_url=self.training_run.model_data_url,
            model_data_object_arn=self.training_run.model_data_object_arn,
            plan=plan,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            depends_on=self.training_run.completion,
            **kwargs,
        )

    def _deploy_with_workflow(
        self,
        plan: ServingPlan,
        instance_type: str,
        initial_instance_count: int,
        kwargs: dict[str, Any],
    ) -> RLEndpoint:
        """``fit(wait=False)`` + ``deploy()``: the deploy-time run starts TrainAndServe instead."""
        from ._workflow_serving import WorkflowTarget
        from .serving import RLEndpoint

        if self._served:
            raise ValidationError(
                f"deploy() was already called on {self.node.path}: with fit(wait=False) the one "
                "deploy-time workflow trains and serves one endpoint. Create a second "
                "RLEstimator for a second endpoint. See README.md#deploying."
            )
        if "depends_on" in kwargs:
            raise invalid(
                "depends_on",
                kwargs["depends_on"],
                "nothing with fit(wait=False): the endpoint is created after the deploy, so no "
                "CloudFormation resource can wait for it (or be waited for by it)",
                see="README.md#deploying",
            )
        out = self.output_location
        trained_models = (
            f"{out.bucket_arn}/{out.prefix + '/' if out.prefix else ''}"
            f"{self.job_name_base}-*/output/model.tar.gz"
        )
        endpoint = RLEndpoint(
            self,
            "Serving",
            model_data_url=self.training_run.model_data_url,
            model_data_object_arn=trained_models,
            plan=plan,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            workflow=WorkflowTarget(
                training_machine=self.state_machine, name_base=self.job_name_base
            ),
            **kwargs,
        )
        if endpoint.workflow is None:  # pragma: no cover - RLEndpoint builds it for a target
            raise ValidationError(f"{endpoint.node.path} has no serving workflow")
        self._served = True
        self.training_run.start_workflow(endpoint.workflow, depends_on=[endpoint.role])
        return endpoint

    @classmethod
    def attach(
        cls,
        scope: Construct,
        construct_id: str,
        *,
        training_job_name: str,
        image: ContainerImage | str | None = None,
        toolkit: RLToolkit | str | None = None,
        toolkit_version: str | None = None,
        framework: RLFramework | str | None = None,
        framework_version: str | None = None,
    ) -> AttachedTrainingJob:
        """Bind to an existing training job so ``deploy()`` serves its model (seed ``attach``)."""
        return AttachedTrainingJob(
            scope,
            construct_id,
            training_job_name=training_job_name,
            image=image,
            toolkit=toolkit,
            toolkit_version=toolkit_version,
            framework=framework,
            framework_version=framework_version,
        )

    # ----------------------------------------------------------------------------- the request
    def training_request(self, job_name: str = "$$.Execution.Name") -> dict[str, Any]:
        """The CreateTrainingJob request the state machine sends (JSONPath keys end in ``.$``).

        Kept as one function so tests can compare it with what the SDK's ``fit()`` sent.
        """
        algorithm: dict[str, Any] = {
            "TrainingImage": self.image.image_uri,
            "TrainingInputMode": self.input_mode.value,
        }
        if self.metric_definitions:
            algorithm["MetricDefinitions"] = [dict(m) for m in self.metric_definitions]
        output: dict[str, Any] = {"S3OutputPath": self.output_path}
        if self.output_kms_key is not None:
            output["KmsKeyId"] = self.output_kms_key
        request: dict[str, Any] = {
            "TrainingJobName.$": job_name,
            "AlgorithmSpecification": algorithm,
            "RoleArn": self.role.role_arn,
            "OutputDataConfig": output,
            "ResourceConfig": {
                "InstanceCount": self.instance_count,
                "InstanceType": self.instance_type,
                "VolumeSizeInGB": self.volume_size_gb,
            },
            "StoppingCondition": self._stopping_condition(),
            "HyperParameters": self._hyperparameters(job_name),
        }
        channels = self._input_data_config()
        if channels:
            request["InputDataConfig"] = channels
        if self.environment:
            request["Environment"] = dict(self.environment)
        if self.use_spot_instances:
            request["EnableManagedSpotTraining"] = True
        if self.checkpoint_location is not None:
            checkpoint: dict[str, Any] = {"S3Uri": self.checkpoint_location.uri}
            if self.checkpoint_local_path:
                checkpoint["LocalPath"] = self.checkpoint_local_path
            request["CheckpointConfig"] = checkpoint
        if self.debugger_hook_config:
            request["DebugHookConfig"] = {
                "S3OutputPath": self.output_path,
                "CollectionConfigurations": [],
            }
        request["ProfilerConfig"] = (
            {"DisableProfiler": True}
            if self.disable_profiler
            else {"S3OutputPath": self.output_path, "DisableProfiler": False}
        )
        if self.subnets:
            request["VpcConfig"] = {
                "SecurityGroupIds": list(self.security_group_ids),
                "Subnets": list(self.subnets),
            }
        if self.tags:
            request["Tags"] = [dict(tag) for tag in self.tags]
        if self.max_retry_attempts is not None:
            request["RetryStrategy"] = {"MaximumRetryAttempts": self.max_retry_attempts}
        if self.enable_network_isolation:
            request["EnableNetworkIsolation"] = True
        if self.encrypt_inter_container_traffic:
            request["EnableInterContainerTrafficEncryption"] = True
        return request

    def _stopping_condition(self) -> dict[str, int]:
        stopping = {"MaxRuntimeInSeconds": self.max_run_seconds}
        if self.max_wait_seconds is not None:
            stopping["MaxWaitTimeInSeconds"] = self.max_wait_seconds
        return stopping

    def _hyperparameters(self, job_name_path: str) -> dict[str, str]:
        encoded = encode_hyperparameters(self.hyperparameters)
        encoded.update(
            {
                "sagemaker_program": json.dumps(self.source_bundle.entry_point),
                "sagemaker_submit_directory": json.dumps(
                    ISOLATED_SUBMIT_DIRECTORY
                    if self.enable_network_isolation
                    else self.source_asset.s3_object_url
                ),
                "sagemaker_container_log_level": json.dumps(self.container_log_level),
                "sagemaker_region": json.dumps(Aws.REGION),
                "sagemaker_s3_output": json.dumps(self.output_path),
                "sagemaker_estimator": json.dumps("RLEstimator"),
            }
        )
        # The job name is only known when the execution runs: JSON-encode it there.
        encoded["sagemaker_job_name.$"] = f"States.Format('\"{{}}\"', {job_name_path})"
        return encoded

    def _input_data_config(self) -> list[dict[str, Any]]:
        channels = dict(self._inputs)
        if self.enable_network_isolation:
            # The container may not reach S3: SageMaker delivers the code as a channel.
            channels["code"] = self.source_asset.s3_object_url
        return [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for name, uri in channels.items()
        ]

    # ---------------------------------------------------------------------------- construction
    @staticmethod
    def _volume_gb(value: int | Size | None) -> int:
        if value is None:
            return DEFAULT_VOLUME_SIZE_GB
        if isinstance(value, Size):
            gb = value.to_gibibytes()
        elif isinstance(value, bool) or not isinstance(value, int):
            raise invalid("train_volume_size", value, "an int number of GB or an aws_cdk.Size")
        else:
            gb = value
        if gb < 1 or int(gb) != gb:
            raise invalid("train_volume_size", value, "a whole number of GB >= 1")
        return int(gb)

    def _image_spec(
        self,
        image: str | ContainerImage | None,
        toolkit: RLToolkit | str | None,
        toolkit_version: str | None,
        framework: RLFramework | str | None,
        framework_version: str | None,
    ) -> ContainerImage:
        if image is not None:
            if any(v is not None for v in (toolkit, toolkit_version, framework, framework_version)):
                # The SDK warned and used the image; so do we, visibly in `cdk synth`.
                from aws_cdk import Annotations

                Annotations.of(self).add_warning_v2(
                    "cdk-sagemaker-rl:image-overrides-toolkit",
                    "An image was given together with toolkit/toolkit_version/framework/"
                    "framework_version; the image is used and the toolkit arguments are ignored "
                    "(as the SageMaker SDK did).",
                )
            return image if isinstance(image, ContainerImage) else ContainerImage.from_uri(image)
        parsed = RLToolkit.parse(toolkit, "toolkit") if toolkit is not None else None
        missing = [
            name
            for name, value in (
                ("toolkit", toolkit),
                ("toolkit_version", toolkit_version or framework_version),
                # Vowpal Wabbit images carry no deep-learning framework.
                ("framework", framework if parsed is not RLToolkit.VW else "-"),
            )
            if value is None
        ]
        if missing:
            raise ValidationError(
                "Please provide `toolkit`, `toolkit_version`, `framework` or `image_uri` "
                f"(`image_name`): missing {', '.join(missing)} (got toolkit={toolkit!r}, "
                f"toolkit_version={toolkit_version!r}, framework={framework!r}). "
                "See README.md#container-images."
            )
        assert toolkit is not None  # checked just above: "toolkit" would be missing
        return ContainerImage.rl(
            toolkit=toolkit,
            toolkit_version=toolkit_version,
            framework=framework,
            framework_version=framework_version,
        )

    def _job_name_base(self, name: str | None) -> str:
        if name is None:
            # The SDK derived the base from the image's repository name.
            uri = self.image.image_uri
            repo = "rl-training"
            if not Token.is_unresolved(uri) or "/" in uri.rsplit(":", 1)[0]:
                tail = uri.split("/")[-1].split("@")[0].split(":")[0]
                if tail and JOB_NAME_PATTERN.match(tail):
                    repo = tail
            name = repo
        # SageMaker names are unique forever: every deploy-time run appends a timestamp.
        return name[:MAX_JOB_NAME_BASE].rstrip("-")

    def _metric_definitions(
        self, given: Sequence[Mapping[str, str]] | None
    ) -> list[dict[str, str]]:
        if given is not None:
            result = []
            for item in given:
                if set(item) != {"Name", "Regex"}:
                    raise invalid(
                        "metric_definitions", item, "a list of {'Name': ..., 'Regex': ...} dicts"
                    )
                result.append({"Name": str(item["Name"]), "Regex": str(item["Regex"])})
            return result
        if self.image.is_custom or self.image.toolkit is None:
            return []
        return [
            {"Name": name, "Regex": regex}
            for name, regex in DEFAULT_METRIC_DEFINITIONS.get(self.image.toolkit, ())
        ]

    def _artifact_key(self) -> kms.IKey | None:
        """The key that encrypts model.tar.gz: output_kms_key, else the bucket's own key."""
        if self._output_key is not None:
            return self._output_key
        if self.output_kms_key is not None and self.output_kms_key.startswith("arn:"):
            return kms.Key.from_key_arn(self, "OutputKey", self.output_kms_key)
        return self.bucket.encryption_key if self.bucket is not None else None

    def _kms_key(self, key: str | kms.IKey | None) -> str | None:
        self._output_key: kms.IKey | None = None
        if key is None:
            return None
        if isinstance(key, str):
            if not key.strip():
                raise invalid("output_kms_key", key, "a KMS key id, key ARN, alias or IKey")
            return key
        self._output_key = key
        return key.key_arn

    def _artifact_bucket(self, key: kms.IKey | None) -> s3.Bucket:
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            access_logs,
            "AwsSolutions::AwsSolutions-S1",
            "This bucket receives the artifact bucket's server access logs; logging it into "
            "itself would loop.",
        )
        acknowledge_compliance(
            access_logs,
            "S3DefaultEncryptionKMS",
            "S3 delivers server access logs only to buckets encrypted with SSE-S3, not SSE-KMS.",
        )
        acknowledge_compliance(
            access_logs,
            "S3BucketReplicationEnabled",
            "A log sink of this stack; replication needs a bucket in another region that a "
            "single-region stack cannot own. Versioned and retained instead.",
        )
        bucket = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=key,
            bucket_key_enabled=key is not None,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge_compliance(
            bucket,
            "S3BucketReplicationEnabled",
            "Artifacts can be rebuilt by retraining from the fingerprinted source; replication "
            "needs a bucket in another region that a single-region stack cannot own. Versioned "
            "and retained instead.",
        )
        return bucket

    def _execution_role(self, role: str | iam.IRole | None) -> iam.IRole:
        if isinstance(role, str):
            if Token.is_unresolved(role) or role.startswith("arn:"):
                # A role the user manages is used as it is: we do not attach policies to it.
                return iam.Role.from_role_arn(self, "ExecutionRole", role, mutable=False)
            if not re.match(r"^[\w+=,.@-]{1,64}$", role):
                raise invalid("role", role, "an IAM role name, a role ARN or an iam.IRole")
            return iam.Role.from_role_name(self, "ExecutionRole", role)
        if role is not None:
            return role
        created = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker execution role for RL training jobs (least privilege)",
        )
        self._grant_execution_role(created)
        return created

    def _grant_execution_role(self, role: iam.Role) -> None:
        stack = self._stack
        out = self.output_location
        statements = [
            iam.PolicyStatement(
                sid="ReadSourceCode",
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{Aws.PARTITION}:s3:::{self.source_asset.s3_bucket_name}/"
                    f"{self.source_asset.s3_object_key}"
                ],
            ),
            iam.PolicyStatement(
                sid="WriteArtifacts",
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[out.objects_arn()],
            ),
            iam.PolicyStatement(
                sid="ListArtifacts",
                actions=["s3:ListBucket"],
                resources=[out.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="TrainingLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{TRAINING_LOG_GROUP}:*",
                        arn_format=_COLON,
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="TrainingLogGroup",
                actions=["logs:CreateLogGroup"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=TRAINING_LOG_GROUP,
                        arn_format=_COLON,
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="TrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
        ]
        if self.checkpoint_location is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="Checkpoints",
                    actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                    resources=[self.checkpoint_location.objects_arn()],
                )
            )
            statements.append(
                iam.PolicyStatement(
                    sid="ListCheckpoints",
                    actions=["s3:ListBucket"],
                    resources=[self.checkpoint_location.bucket_arn],
                )
            )
        if self.subnets:
            statements.extend(self._vpc_statements())
        for statement in statements:
            role.add_to_policy(statement)
        # Named actions only (grant_encrypt_decrypt would add kms:ReEncrypt* / GenerateDataKey*).
        for key in (self.bucket.encryption_key if self.bucket else None, self._output_key):
            if key is not None:
                key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        self.image.grant_pull(role)
        acknowledge_wildcard(
            role,
            out.objects_arn(),
            "SageMaker writes <output path>/<job name>/output/... with a job name chosen per run.",
        )
        acknowledge_wildcard(
            role,
            self._training_log_streams_arn(),
            "SageMaker names the job's log streams in /aws/sagemaker/TrainingJobs at run time.",
        )
        acknowledge_wildcard(
            role,
            "*",
            "cloudwatch:PutMetricData (limited by a namespace condition) and "
            "ecr:GetAuthorizationToken have no resource type.",
        )
        if self.subnets:
            acknowledge_wildcard(
                role,
                self._stack.format_arn(
                    service="ec2", resource="network-interface", resource_name="*"
                ),
                "SageMaker creates the job's network interfaces; their ids are not known "
                "in advance.",
            )
        if self.checkpoint_location is not None:
            acknowledge_wildcard(
                role,
                self.checkpoint_location.objects_arn(),
                "SageMaker syncs checkpoint files it names under the checkpoint prefix.",
            )

    def _vpc_statements(self) -> list[iam.PolicyStatement]:
        """What SageMaker needs to attach the job's network interfaces to the user's subnets."""
        stack = self._stack
        interfaces = stack.format_arn(
            service="ec2", resource="network-interface", resource_name="*"
        )
        attach_to = [
            stack.format_arn(service="ec2", resource="subnet", resource_name=subnet)
            for subnet in self.subnets
        ] + [
            stack.format_arn(service="ec2", resource="security-group", resource_name=group)
            for group in self.security_group_ids
        ]
        return [
            iam.PolicyStatement(
                sid="JobNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=[interfaces, *attach_to],
            ),
            iam.PolicyStatement(
                sid="DescribeNetwork",
                actions=[
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            ),
        ]

    def _grant_inputs(self) -> None:
        if not isinstance(self.role, iam.Role):
            return
        for name, uri in self._inputs.items():
            location = parse_s3_uri(uri, f"inputs[{name!r}]")
            self.role.add_to_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[location.objects_arn()])
            )
            self.role.add_to_policy(
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[location.bucket_arn])
            )

    @staticmethod
    def _tags(
        tags: Mapping[str, str] | Sequence[Mapping[str, str]] | None,
    ) -> list[dict[str, str]]:
        if tags is None:
            return []
        if isinstance(tags, Mapping):
            return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
        result = []
        for tag in tags:
            if not isinstance(tag, Mapping) or set(tag) != {"Key", "Value"}:
                raise invalid(
                    "tags", tag, "a dict of key -> value, or [{'Key': ..., 'Value': ...}]"
                )
            result.append({"Key": str(tag["Key"]), "Value": str(tag["Value"])})
        return result

    @staticmethod
    def _parse_inputs(inputs: str | Mapping[str, str] | None) -> dict[str, str]:
        if inputs is None:
            return {}
        if isinstance(inputs, str):
            parse_s3_uri(inputs, "inputs")
            return {"training": inputs}
        if isinstance(inputs, Mapping):
            result = {}
            for name, uri in inputs.items():
                if not re.match(r"^[A-Za-z0-9\.\-_]{1,64}$", str(name)):
                    raise invalid(
                        "inputs channel name",
                        name,
                        "1-64 letters, digits, '.', '-' or '_' (SageMaker ChannelName)",
                    )
                if not isinstance(uri, str):
                    raise invalid(f"inputs[{name!r}]", uri, "an s3:// URI string")
                parse_s3_uri(uri, f"inputs[{name!r}]")
                result[str(name)] = uri
            return result
        raise invalid(
            "inputs", inputs, "None, an s3:// URI, or a dict of channel name -> s3:// URI"
        )

    def _state_machine(self) -> sfn.StateMachine:
        request = self.training_request()
        request["InputDataConfig"] = Lazy.any(
            _Later(lambda: self._input_data_config() or None), omit_empty_array=True
        )
        request["StoppingCondition"] = Lazy.any(_Later(self._stopping_condition))
        train = sfn.CustomState(
            self,
            "Train",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTrainingJob.sync",
                "Parameters": request,
                "ResultSelector": {
                    "TrainingJobName.$": "$.TrainingJobName",
                    "TrainingJobArn.$": "$.TrainingJobArn",
                    "ModelDataUrl.$": "$.ModelArtifacts.S3ModelArtifacts",
                },
                "ResultPath": "$.Training",
            },
        )
        succeeded = sfn.Succeed(self, "Trained")
        failed = sfn.Fail(
            self, "TrainingFailed", error="RLTrainingFailed", cause_path="$.Error.Cause"
        )
        report_success = self._report(
            "ReportSuccess",
            Status="SUCCESS",
            TrainingJobName=sfn.JsonPath.string_at("$.Training.TrainingJobName"),
            ModelDataUrl=sfn.JsonPath.string_at("$.Training.ModelDataUrl"),
        )
        report_failure = self._report(
            "ReportFailure",
            Status="FAILURE",
            TrainingJobName=sfn.JsonPath.string_at("$$.Execution.Name"),
            Error=sfn.JsonPath.object_at("$.Error"),
        )
        deploy_waits = sfn.Condition.is_present("$.WaitHandleUrl")
        on_success = (
            sfn.Choice(self, "DeployWaitingForSuccess?")
            .when(deploy_waits, report_success.next(succeeded))
            .otherwise(succeeded)
        )
        on_failure = (
            sfn.Choice(self, "DeployWaitingForFailure?")
            .when(deploy_waits, report_failure.next(failed))
            .otherwise(failed)
        )
        train.add_catch(on_failure, errors=["States.ALL"], result_path="$.Error")
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(train.next(on_success)),
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            # No state machine timeout: MaxRuntime/MaxWait stop the job, and the .sync task ends
            # with it.
            tracing_enabled=True,
            comment="Runs one SageMaker RL training job (cdk-sagemaker-rl RLEstimator)",
        )
        self._grant_state_machine(machine)
        return machine

    def _report(self, state_id: str, **event: Any) -> tasks.LambdaInvoke:
        """A task that hands the outcome to the signal function (docs/architecture.md event)."""
        return tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self.signal_function,
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

    def _grant_state_machine(self, machine: sfn.StateMachine) -> None:
        stack = self._stack
        machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="RunTrainingJobs",
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[self.training_job_arn_pattern],
            )
        )
        machine.add_to_role_policy(pass_role_to_sagemaker("PassExecutionRole", self.role.role_arn))
        machine.add_to_role_policy(
            sync_events_rule(
                "SyncTrainingJobEvents", stack, "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
            )
        )
        acknowledge_wildcard(
            machine.role,
            self.training_job_arn_pattern,
            "Each execution names its job <base>-<timestamp>; the ARN is fixed up to the base.",
        )
        acknowledge_wildcard(
            machine.role,
            f"{self.signal_function.function_arn}:*",
            "The LambdaInvoke task's grant on the signal function's versions.",
        )
        acknowledge_wildcard(
            machine.role,
            "*",
            "Log delivery (logs:*LogDelivery, DescribeLogGroups...) and X-Ray actions have no "
            "resource type.",
        )

    def _grant_signal_function(self) -> None:
        stack = self._stack
        self.signal_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[self.training_job_arn_pattern],
            )
        )
        self.signal_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["logs:DescribeLogStreams", "logs:GetLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{TRAINING_LOG_GROUP}:*",
                        arn_format=_COLON,
                    )
                ],
            )
        )
        for resource in (self.training_job_arn_pattern, self._training_log_streams_arn()):
            acknowledge_wildcard(
                self.signal_function.role,  # type: ignore[arg-type]
                resource,
                "Reads the failed job and the tail of its log streams; the job's name "
                "(<base>-<timestamp>) is only known at run time.",
            )

    def _training_log_streams_arn(self) -> str:
        return self._stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{TRAINING_LOG_GROUP}:*",
            arn_format=_COLON,
        )

    def fingerprint(self) -> str:
        """A hash of everything that defines the training; any change means a new training job."""
        resolved = self._stack.resolve(
            {
                "request": self.training_request(),
                "inputs": self._input_data_config(),
                "source": self.source_bundle.tar_sha256,
                "revision": self.training_revision,
            }
        )
        text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_COLON = ArnFormat.COLON_RESOURCE_NAME


def _acknowledge_construct_policies(scope: Construct) -> None:
    """HIPAA / NIST rules answered the same way for every role and log group we create."""
    acknowledge_compliance(
        scope,
        "IAMNoInlinePolicy",
        "Each role's only policy holds the CDK grants for that one role, created and deleted "
        "with it; a managed policy would narrow nothing.",
    )
    acknowledge_compliance(
        scope,
        "CloudWatchLogGroupEncrypted",
        "CloudWatch Logs encrypts log groups at rest by default; no payload is logged.",
    )


class AttachedTrainingJob(Construct):
    """An existing training job (seed ``RLEstimator.attach``) whose model ``deploy()`` serves.

    The job is looked up at deploy time by a read-only custom resource, so synth needs no AWS
    access; a job that is not ``Completed`` fails the deploy with its status.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        training_job_name: str,
        image: ContainerImage | str | None = None,
        toolkit: RLToolkit | str | None = None,
        toolkit_version: str | None = None,
        framework: RLFramework | str | None = None,
        framework_version: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        _acknowledge_construct_policies(self)
        if not Token.is_unresolved(training_job_name) and not JOB_NAME_PATTERN.match(
            training_job_name
        ):
            raise invalid(
                "training_job_name",
                training_job_name,
                "a SageMaker training job name (^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})",
            )
        self.training_job_name = training_job_name
        stack = Stack.of(self)
        job_arn = stack.format_arn(
            service="sagemaker", resource="training-job", resource_name=training_job_name.lower()
        )
        function = bundled_function(
            self,
            "LookupFunction",
            folder="custom_resources",
            handler="attach.on_event",
            description="Looks up an existing SageMaker training job for RLEstimator.attach",
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[job_arn])
        )
        self.lookup = CustomResource(
            self,
            "Lookup",
            service_token=function.function_arn,
            resource_type="Custom::RLTrainingJobLookup",
            properties={"TrainingJobName": training_job_name},
        )
        self.model_data_url = self.lookup.get_att_string("ModelDataUrl")
        self.training_image = self.lookup.get_att_string("TrainingImage")
        if image is not None:
            self.image_spec: ContainerImage | None = (
                image if isinstance(image, ContainerImage) else ContainerImage.from_uri(image)
            )
        elif toolkit is not None:
            self.image_spec = ContainerImage.rl(
                toolkit=toolkit,
                toolkit_version=toolkit_version,
                framework=framework,
                framework_version=framework_version,
            )
        else:
            self.image_spec = None

    def deploy(
        self, instance_type: str, initial_instance_count: int = 1, **kwargs: Any
    ) -> RLEndpoint:
        """Serve the attached job's model; without toolkit/image, its training image serves it."""
        from .serving import RLEndpoint, serving_plan_for_attached

        plan = serving_plan_for_attached(
            self, self.image_spec, self.training_image, instance_type, kwargs.pop("image", None)
        )
        return RLEndpoint(
            self,
            "Serving",
            model_data_url=self.model_data_url,
            model_data_object_arn=f"arn:{Aws.PARTITION}:s3:::"
            + Fn.select(1, Fn.split("s3://", self.model_data_url)),
            plan=plan,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            depends_on=self.lookup,
            **kwargs,
        )
