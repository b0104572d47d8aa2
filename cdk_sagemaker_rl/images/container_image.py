"""Container images for RL training and serving, chosen the way the SageMaker SDK v2 chose them.

The SDK resolved an image URI in Python at call time, for one region. A CDK app is synthesized once
and may be deployed to a region it does not know yet (an environment-agnostic stack), so selection
is split in two: :class:`ContainerImage` factories validate the user's choice immediately (a bad
toolkit version fails at construction, not at deploy), and :meth:`ContainerImage.bind` turns the
choice into a URI for one stack and one instance type. With a concrete region the URI is a plain
string; with a token region the registry account comes from a ``CfnMapping`` and a ``CfnRule``
fails the deployment, with a readable message, in a region where the image is not published.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from aws_cdk import Fn, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from .._tokens import REGION, URL_SUFFIX, is_token_string
from ..errors import ValidationError, invalid
from .bound import BoundImage
from .catalogue import (
    FrameworkFamily,
    FrameworkVersion,
    RLImageSpec,
    catalogue,
    dns_suffix_for_region,
    resolve_framework,
    resolve_rl,
    rl_versions_hint,
)
from .ecr_uri import parse_ecr_uri
from .registry import RegistryMapping
from .toolkits import (
    IMAGES_REFERENCE,
    Processor,
    RLFramework,
    RLToolkit,
    processor_for,
)
from .user_image_checks import (
    asset_platform,
    check_asset,
    check_image_uri,
    check_repository_and_tag,
)


class ContainerImage(ABC):
    """A training or serving container image, resolved against a stack by :meth:`bind`.

    Build one with the static factories: :meth:`rl` (the SageMaker RL toolkit images, what the
    SDK's RLEstimator chose from toolkit/version/framework), :meth:`pytorch_training` /
    :meth:`pytorch_inference` (AWS Deep Learning Containers, the maintained path for current
    toolkits), :meth:`tensorflow_serving` / :meth:`mxnet_serving` (the serving images the SDK
    picked for Coach models), :meth:`from_uri` (the SDK's ``image_uri``),
    :meth:`from_ecr_repository` and :meth:`from_asset`.
    """

    @abstractmethod
    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        """Resolve the image for the stack of ``scope`` and an instance type."""

    @property
    def is_custom(self) -> bool:
        """True for user-provided images (no default metric definitions, as in the SDK)."""
        return True

    @property
    def toolkit(self) -> RLToolkit | None:
        return None

    @property
    def toolkit_version(self) -> str | None:
        return None

    @property
    def framework(self) -> RLFramework | None:
        return None

    @property
    def framework_version(self) -> str | None:
        return None

    def serving_image(self) -> ContainerImage:
        """The image the SDK's ``deploy()`` would host a model trained with this image in.

        A custom image serves itself (the SDK built a FrameworkModel from the training image).
        """
        return self

    # ---- factories ---------------------------------------------------------------------

    @staticmethod
    def rl(
        toolkit: RLToolkit | str,
        toolkit_version: str | None = None,
        framework: RLFramework | str | None = None,
        framework_version: str | None = None,
    ) -> RLToolkitImage:
        """A SageMaker RL training image.

        Resolution, all at construction time so mistakes fail before synthesis finishes:

        * ``framework`` is required for Coach and Ray (as in the SDK) and must be omitted for
          Vowpal Wabbit, whose images carry no deep-learning framework.
        * ``toolkit_version`` is matched exactly: ``0.11`` and ``0.11.1`` are different image
          tags (a floating and a pinned one).
        * Without ``toolkit_version`` the latest *pinned* (three-part) toolkit version that
          supports the framework (and ``framework_version``, when given) is chosen; floating
          tags are only used when asked for by name, because their content can change.
        * ``framework_version`` is ``major.minor`` or ``major.minor.patch`` and matches a
          catalogue entry when both agree on every component they spell out, so ``2.5`` selects
          the image with TensorFlow 2.5.0. Among several matches the highest framework version,
          then the highest toolkit version, wins (the seed docs' "latest patch" rule).
        * With both versions given they must agree; the error says what the toolkit version
          carries.

        The region is not considered: the choice is the same for every stack, and :meth:`bind`
        reports a region where the chosen image is not published, naming the versions that are.
        """
        return RLToolkitImage(resolve_rl(toolkit, toolkit_version, framework, framework_version))

    @staticmethod
    def pytorch_training(version: str, py_version: str | None = None) -> ContainerImage:
        """An AWS Deep Learning Containers PyTorch training image (``pytorch-training``).

        ``version`` is a full version or a ``major.minor`` alias, and the tag spells it as
        given, like the SDK (``2.8`` -> ``2.8-gpu-py312``, a tag DLC moves to the newest patch).
        """
        return _FrameworkImage.create("pytorch-training", version, py_version, "version")

    @staticmethod
    def pytorch_inference(version: str, py_version: str | None = None) -> ContainerImage:
        """An AWS Deep Learning Containers PyTorch inference image (``pytorch-inference``)."""
        return _FrameworkImage.create("pytorch-inference", version, py_version, "version")

    @staticmethod
    def tensorflow_serving(framework_version: str) -> ContainerImage:
        """The TensorFlow Serving image the SDK's TensorFlowModel picks for ``framework_version``.

        1.11/1.12 (Coach with TensorFlow) live in ``sagemaker-tensorflow-serving``; 2.1/2.5 (the
        TensorFlow of the Ray images, whose SavedModels TF Serving can host) in
        ``tensorflow-inference``. A patch version the catalogue lacks (``2.5.0``) is served by
        the ``major.minor`` image of the same line.
        """
        return _FrameworkImage.create(
            "tensorflow-serving", framework_version, None, "framework_version", patch_fallback=True
        )

    @staticmethod
    def mxnet_serving(framework_version: str) -> ContainerImage:
        """The MXNet serving image the SDK's MXNetModel picks (py3), used for Coach with MXNet."""
        return _FrameworkImage.create(
            "mxnet-serving", framework_version, None, "framework_version", patch_fallback=True
        )

    @staticmethod
    def from_uri(uri: str) -> ContainerImage:
        """Any image URI, like the SDK's ``image_uri`` / the seed's ``image_name``.

        An ECR URI (``<account>.dkr.ecr.<region>.<suffix>/<repo>[:tag|@sha256:...]``) is parsed so
        the execution role's pull permission can be scoped to that repository. Other URIs (and
        tokens) are passed through and get no repository ARN: grant pull access yourself.
        """
        return _UriImage(uri)

    @staticmethod
    def from_ecr_repository(repository: ecr.IRepository, tag: str = "latest") -> ContainerImage:
        """An image in an ECR repository of this app or an imported one.

        ``tag`` may also be a ``sha256:`` digest, which pins the exact image.
        """
        return _EcrRepositoryImage(repository, tag)

    @staticmethod
    def from_asset(directory: str | os.PathLike[str], **kwargs: Any) -> ContainerImage:
        """An image built from a local Dockerfile and published as a CDK asset.

        ``kwargs`` are ``aws_ecr_assets.DockerImageAsset`` properties. Without ``platform`` the
        image is built for the instance it is bound to: linux/amd64 for every training instance
        (all x86) and linux/arm64 for Graviton endpoints (ml.c6g, ml.c7g, ...), so an image
        built on an ARM laptop does not fail with "exec format error" an hour into a deploy.
        """
        return _AssetImage(directory, kwargs)


# ---- SageMaker-provided images --------------------------------------------------------------


class _CatalogueImage(ContainerImage):
    """An image published by AWS in per-region registries listed in the catalogue."""

    def __init__(
        self,
        *,
        repository: str,
        tag_prefix: str,
        py_version: str | None,
        processors: tuple[Processor, ...],
        registry: str,
    ) -> None:
        self._repository = repository
        self._tag_prefix = tag_prefix
        self._py_version = py_version
        self._processors = processors
        self._registry = registry

    @property
    def is_custom(self) -> bool:
        return False

    def _label(self, processor: Processor | None = None) -> str:
        if processor is None:
            return f"{self._repository}:{self._tag_prefix}-<processor>"
        return f"{self._repository}:{self._tag(processor)}"

    def _tag(self, processor: Processor) -> str:
        return "-".join(p for p in (self._tag_prefix, processor.value, self._py_version) if p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._label()})"

    def _processor(self, instance_type: str) -> Processor:
        return processor_for(self._label(), self._processors, instance_type)

    def _unsupported_region_hint(self, region: str) -> str:
        return ""

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        processor = self._processor(instance_type)
        tag = self._tag(processor)
        stack = Stack.of(scope)
        region = stack.region
        accounts = catalogue().registries[self._registry]
        if not is_token_string(region):
            if region not in accounts:
                raise invalid(
                    "region",
                    region,
                    f"a region where {self._repository}:{tag} is published: "
                    f"{', '.join(sorted(accounts))}{self._unsupported_region_hint(region)}",
                    see=IMAGES_REFERENCE,
                )
            account = accounts[region]
            host = f"{account}.dkr.ecr.{region}.{dns_suffix_for_region(region)}"
            image_uri = f"{host}/{self._repository}:{tag}"
            arn_region = region
        else:
            registry = RegistryMapping.of(stack, self._registry)
            registry.description.images.add(f"{self._repository}:{tag}")
            account = registry.mapping.find_in_map(REGION, "account")
            image_uri = Fn.join(
                "",
                [
                    account,
                    ".dkr.ecr.",
                    REGION,
                    ".",
                    URL_SUFFIX,
                    f"/{self._repository}:{tag}",
                ],
            )
            arn_region = REGION
        arn = stack.format_arn(
            service="ecr",
            resource="repository",
            resource_name=self._repository,
            account=account,
            region=arn_region,
        )
        return BoundImage(
            image_uri=image_uri,
            repository_arns=(arn,),
            is_custom=False,
            toolkit=self.toolkit,
            toolkit_version=self.toolkit_version,
            framework=self.framework,
            framework_version=self.framework_version,
            processor=processor,
        )


class RLToolkitImage(_CatalogueImage):
    """A SageMaker RL toolkit image (Coach, Ray or Vowpal Wabbit); see :meth:`ContainerImage.rl`."""

    def __init__(self, spec: RLImageSpec) -> None:
        super().__init__(
            repository=spec.repository,
            tag_prefix=spec.tag_prefix,
            py_version=spec.py_version,
            processors=spec.processors,
            registry=spec.registry,
        )
        self.spec = spec

    @property
    def toolkit(self) -> RLToolkit:
        return self.spec.toolkit

    @property
    def toolkit_version(self) -> str:
        return self.spec.toolkit_version

    @property
    def framework(self) -> RLFramework | None:
        return self.spec.framework

    @property
    def framework_version(self) -> str | None:
        return self.spec.framework_version

    def _unsupported_region_hint(self, region: str) -> str:
        return rl_versions_hint(self.spec, region)

    def serving_image(self) -> ContainerImage:
        """The image to host a policy trained with this image.

        Coach follows the SDK's ``RLEstimator.deploy()``: TF Serving for TensorFlow, the MXNet
        serving image for MXNet. The SDK refused Ray; Ray with TensorFlow saves a SavedModel that
        TF Serving of the same TensorFlow line hosts, and Ray with PyTorch is hosted by the PyTorch
        inference image of its torch version (with an inference script), when the catalogue has
        one. Vowpal Wabbit models have no SageMaker serving image: a ValidationError names the
        alternatives.
        """
        spec = self.spec
        version = spec.framework_version
        reason = "Vowpal Wabbit models"
        if spec.toolkit is not RLToolkit.VW and version is not None:
            if spec.framework is RLFramework.TENSORFLOW:
                return ContainerImage.tensorflow_serving(version)
            if spec.framework is RLFramework.MXNET:
                return ContainerImage.mxnet_serving(version)
            if spec.framework is RLFramework.PYTORCH:
                try:
                    return ContainerImage.pytorch_inference(version)
                except ValidationError:
                    inference = catalogue().families["pytorch-inference"].accepted_versions()
                    reason = (
                        f"policies trained with torch {version}: pytorch-inference has "
                        f"{', '.join(inference)}"
                    )
        raise invalid(
            "serving image for",
            f"{spec.toolkit.value}-{spec.toolkit_version}"
            + (f"-{spec.framework.value}" if spec.framework else ""),
            "an image trained with TensorFlow, MXNet or a torch version that has a PyTorch "
            f"inference image (there is no SageMaker serving image for {reason}); pass a serving "
            "image explicitly, e.g. ContainerImage.pytorch_inference(...) with an inference "
            "script, or ContainerImage.from_uri(...)",
            see=IMAGES_REFERENCE,
        )


class _FrameworkImage(_CatalogueImage):
    """A framework image (TF Serving, MXNet serving, DLC PyTorch) chosen by version."""

    def __init__(
        self,
        family: FrameworkFamily,
        version: str,
        config: FrameworkVersion,
        py_version: str | None,
    ) -> None:
        super().__init__(
            repository=config.repository,
            tag_prefix=version,
            py_version=py_version,
            processors=family.processors,
            registry=config.registry,
        )
        self._family = family
        self._version = version

    @classmethod
    def create(
        cls,
        family_name: str,
        version: str,
        py_version: str | None,
        argument: str,
        *,
        patch_fallback: bool = False,
    ) -> _FrameworkImage:
        """Validate ``version`` (and ``py_version``) against the catalogue family.

        With ``patch_fallback`` a full version the catalogue lacks (TensorFlow 2.5.0, what the
        Ray 1.6.0 image trains with) is served by its ``major.minor`` image (``2.5``, which is
        2.5.1): a serving image only has to load a model of the same minor version, the reasoning
        behind the SDK's own TF 2.12.0 -> TFS 2.12.1 substitution.
        """
        family, version, config, py = resolve_framework(
            family_name, version, py_version, argument, patch_fallback=patch_fallback
        )
        return cls(family, version, config, py)

    @property
    def framework(self) -> RLFramework:
        return self._family.framework

    @property
    def framework_version(self) -> str:
        return self._version

    def serving_image(self) -> ContainerImage:
        """Inference images serve themselves; a DLC training image maps to the inference image of
        the same version (what the SDK's PyTorch estimator deployed)."""
        if self._family.purpose == "inference":
            return self
        counterpart = self._family.name.replace("-training", "-inference")
        return _FrameworkImage.create(counterpart, self._version, None, "version")


# ---- user-provided images ------------------------------------------------------------------


class _UriImage(ContainerImage):
    def __init__(self, uri: str) -> None:
        self.uri = check_image_uri(uri)
        self.ecr = parse_ecr_uri(uri)

    def __repr__(self) -> str:
        return f"ContainerImage.from_uri({self.uri!r})"

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        arns = (self.ecr.repository_arn(scope),) if self.ecr else ()
        return BoundImage(image_uri=self.uri, repository_arns=arns, is_custom=True)


class _EcrRepositoryImage(ContainerImage):
    def __init__(self, repository: ecr.IRepository, tag: str) -> None:
        check_repository_and_tag(repository, tag)
        self.repository = repository
        self.tag = tag

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        if not is_token_string(self.tag) and self.tag.startswith("sha256:"):
            uri = self.repository.repository_uri_for_digest(self.tag)
        else:
            uri = self.repository.repository_uri_for_tag(self.tag)
        return BoundImage(
            image_uri=uri, repository_arns=(self.repository.repository_arn,), is_custom=True
        )


class _AssetImage(ContainerImage):
    def __init__(self, directory: str | os.PathLike[str], options: Mapping[str, Any]) -> None:
        self.directory = check_asset(directory, options)
        self.options = dict(options)
        self._bound: list[tuple[Construct, str, BoundImage]] = []

    def __repr__(self) -> str:
        return f"ContainerImage.from_asset({self.directory!r})"

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        """One asset per scope and platform: training and serving on x86 share one build."""
        platform = asset_platform(self.options, instance_type)
        for bound_scope, bound_platform, bound in self._bound:
            if bound_scope is scope and bound_platform == platform.platform:
                return bound
        construct_id, n = "ImageAsset", 1
        while scope.node.try_find_child(construct_id) is not None:
            n += 1
            construct_id = f"ImageAsset{n}"
        options = {**self.options, "platform": platform}
        asset = ecr_assets.DockerImageAsset(
            scope, construct_id, directory=self.directory, **options
        )
        bound = BoundImage(
            image_uri=asset.image_uri,
            repository_arns=(asset.repository.repository_arn,),
            is_custom=True,
        )
        self._bound.append((scope, platform.platform, bound))
        return bound
