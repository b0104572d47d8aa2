"""``ApprovedPolicy``: serve, in another stack or account, a policy trained and approved elsewhere.

Teams that deploy per environment want prod to serve the very model that dev trained and that
passed its gate (or a person approved), not a second, different training run. The version is
resolved at deploy time by a read-only lookup (``Custom::RLApprovedModelVersion``, scoped to the
one group), so synthesis needs no AWS access and the template stays the same from run to run.

CloudFormation runs the lookup when the stack is created and whenever its properties change: a
new ``revision`` (for example ``-c release=...`` on the ``cdk deploy`` command line) promotes the
newest approved version; ``version`` pins one.
"""

from __future__ import annotations

from typing import Any, Unpack

from aws_cdk import CustomResource, Fn
from constructs import Construct

from .._functions import bundled_function
from .._iam import acknowledge_compliance
from .._tokens import PARTITION
from ..errors import ValidationError, invalid
from ..images import ContainerImage
from ..serving import DeployOptions, RLEndpoint, ServingPlan, check_deploy_options
from ..serving.plan import as_image
from ..training.attach import acknowledge_construct_policies
from .registry import ModelPackageGroup, ModelPackageGroupBase, group_from

_SEE = "README.md#gating-and-promotion"
#: Why the endpoint's rollback alarms notify nobody (HIPAA/NIST ``CloudWatchAlarmAction``).
_ROLLBACK_ALARMS_REASON = (
    "The endpoint's rollback alarms act through SageMaker: its AutoRollbackConfiguration rolls a "
    "failing update back (and the CloudFormation update fails with it). A promotion has no alarm "
    "topic; add an action to RLEndpoint.alarms to be notified as well."
)


class ApprovedPolicy(Construct):
    """The latest ``Approved`` version of a model package group (or a pinned one), to serve.

    ``model_package_group``: a :class:`ModelPackageGroup`, a group name (this account and region)
    or a group ARN (another account must share the group: README.md#cross-account).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_group: ModelPackageGroupBase | str,
        version: int | None = None,
        revision: str | None = None,
    ) -> None:
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise invalid("version", version, "a model package version number >= 1", see=_SEE)
        if revision is not None and (not isinstance(revision, str) or not revision):
            raise invalid("revision", revision, "a non-empty string, or None", see=_SEE)
        super().__init__(scope, construct_id)
        acknowledge_construct_policies(self)
        self.group = group_from(self, "Group", model_package_group)
        function = bundled_function(
            self,
            "LookupFunction",
            folder="custom_resources",
            handler="approved_version.on_event",
            description="Finds the approved model package version a promotion serves (read-only)",
        )
        self.group.grant_read(function)
        properties: dict[str, str] = {"ModelPackageGroup": self.group.group_arn}
        if version is not None:
            properties["Version"] = str(version)
        if revision is not None:
            properties["Revision"] = revision
        self.lookup = CustomResource(
            self,
            "Lookup",
            service_token=function.function_arn,
            resource_type="Custom::RLApprovedModelVersion",
            properties=properties,
        )
        if isinstance(self.group, ModelPackageGroup):
            self.lookup.node.add_dependency(self.group.resource)
        #: The version served, and what it is made of (resolved at deploy time).
        self.model_package_arn = self.lookup.get_att_string("ModelPackageArn")
        self.model_data_url = self.lookup.get_att_string("ModelDataUrl")
        self.image_uri = self.lookup.get_att_string("Image")
        self._endpoint: RLEndpoint | None = None

    def deploy(
        self,
        instance_type: str | None = None,
        initial_instance_count: int = 1,
        **options: Unpack[DeployOptions],
    ) -> RLEndpoint:
        """Serve the version with ``deploy()``'s options (README.md#deploying), by default in
        the image it was registered with."""
        check_deploy_options(options, _SEE)
        if self._endpoint is not None:
            raise ValidationError(
                f"deploy() was already called on {self.node.path}; use the RLEndpoint it "
                f"returned. See {_SEE}."
            )
        given: dict[str, Any] = dict(options)
        image = given.pop("image", None)
        plan = (
            ServingPlan("custom", as_image(image))
            if isinstance(image, (ContainerImage, str))
            else ServingPlan("custom", None, image_uri=self.image_uri)
        )
        if image is not None and not isinstance(image, (ContainerImage, str)):
            raise invalid("image", image, "a ContainerImage, an image URI, or None", see=_SEE)
        model_object = f"arn:{PARTITION}:s3:::" + Fn.select(
            1, Fn.split("s3://", self.model_data_url)
        )
        self._endpoint = RLEndpoint(
            self,
            "Serving",
            model_data_url=self.model_data_url,
            model_data_object_arn=model_object,
            plan=plan,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            depends_on=self.lookup,
            **given,
        )
        acknowledge_compliance(self._endpoint, "CloudWatchAlarmAction", _ROLLBACK_ALARMS_REASON)
        return self._endpoint
