"""A training job that already exists (the seed's ``RLEstimator.attach``), ready to be served."""

from __future__ import annotations

from aws_cdk import Annotations, CustomResource, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from .._arns import sagemaker_arn
from .._functions import bundled_function
from .._iam import acknowledge_all, compliance_findings
from .._naming import check_sagemaker_name
from .._signature import named_options
from .._tokens import PARTITION
from ..errors import ValidationError
from ..images import ContainerImage, RLFramework, RLToolkit
from ..serving import RLEndpoint, serving_plan_for_attached


def acknowledge_construct_policies(scope: IConstruct) -> None:
    """HIPAA / NIST rules answered the same way for every role and log group we create."""
    acknowledge_all(
        scope,
        [
            *compliance_findings(
                "IAMNoInlinePolicy",
                "Each role's only policy holds the CDK grants for that one role, created and "
                "deleted with it; a managed policy would narrow nothing.",
            ),
            *compliance_findings(
                "CloudWatchLogGroupEncrypted",
                "CloudWatch Logs encrypts log groups at rest by default; no payload is logged.",
            ),
        ],
    )


def image_choice(
    scope: IConstruct,
    image: str | ContainerImage | None,
    toolkit: RLToolkit | str | None,
    toolkit_version: str | None,
    framework: RLFramework | str | None,
    framework_version: str | None,
    *,
    required: bool,
) -> ContainerImage | None:
    """The image from either an image or the toolkit arguments, as the SDK chose it."""
    if image is not None:
        if any(v is not None for v in (toolkit, toolkit_version, framework, framework_version)):
            # The SDK warned and used the image; so do we, visibly in `cdk synth`.
            Annotations.of(scope).add_warning_v2(
                "cdk-sagemaker-rl:image-overrides-toolkit",
                "An image was given together with toolkit/toolkit_version/framework/"
                "framework_version; the image is used and the toolkit arguments are ignored "
                "(as the SageMaker SDK did).",
            )
        return image if isinstance(image, ContainerImage) else ContainerImage.from_uri(image)
    if toolkit is None and not required:
        return None
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
    if missing and required:
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


class AttachedTrainingJob(Construct):
    """An existing training job whose model ``deploy()`` serves.

    The job is looked up at deploy time by a read-only custom resource, so synth needs no AWS
    access; a job that is not ``Completed`` fails the deploy with its status.
    """

    @named_options(see="README.md#attach")
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
        acknowledge_construct_policies(self)
        check_sagemaker_name(training_job_name, "training_job_name")
        self.training_job_name = training_job_name
        function = bundled_function(
            self,
            "LookupFunction",
            folder="custom_resources",
            handler="attach.on_event",
            description="Looks up an existing SageMaker training job for RLEstimator.attach",
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[sagemaker_arn(Stack.of(self), "training-job", training_job_name)],
            )
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
        self.image_spec = image_choice(
            self, image, toolkit, toolkit_version, framework, framework_version, required=False
        )
        self._endpoint: RLEndpoint | None = None

    @named_options(see="README.md#deploying")
    def deploy(
        self,
        instance_type: str,
        initial_instance_count: int = 1,
        *,
        entry_point: str | None = None,
        image: ContainerImage | str | None = None,
        kms_key: kms.IKey | str | None = None,
        model_kms_key: kms.IKey | None = None,
        variant_name: str = "AllTraffic",
        function_url: bool = False,
        function_url_auth_type: lambda_.FunctionUrlAuthType = lambda_.FunctionUrlAuthType.AWS_IAM,
        allow_unauthenticated_function_url: bool = False,
    ) -> RLEndpoint:
        """Serve the attached job's model; without toolkit/image, its training image serves it."""
        if self._endpoint is not None:
            raise ValidationError(
                f"deploy() was already called on {self.node.path}; use the RLEndpoint it "
                "returned. See README.md#deploying."
            )
        plan = serving_plan_for_attached(
            self, self.image_spec, self.training_image, instance_type, image
        )
        self._endpoint = RLEndpoint(
            self,
            "Serving",
            model_data_url=self.model_data_url,
            model_data_object_arn=f"arn:{PARTITION}:s3:::"
            + Fn.select(1, Fn.split("s3://", self.model_data_url)),
            plan=plan,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            depends_on=self.lookup,
            entry_point=entry_point,
            kms_key=kms_key,
            model_kms_key=model_kms_key,
            variant_name=variant_name,
            function_url=function_url,
            function_url_auth_type=function_url_auth_type,
            allow_unauthenticated_function_url=allow_unauthenticated_function_url,
        )
        return self._endpoint
