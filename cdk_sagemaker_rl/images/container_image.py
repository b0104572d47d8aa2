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
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import aws_ecr as ecr
from constructs import Construct

from .bound import BoundImage
from .catalogue import (
    FrameworkFamily,
    FrameworkVersion,
    RLImageSpec,
    resolve_framework,
    resolve_rl,
    rl_versions_hint,
    serving_choice,
)
from .ecr_uri import EcrImageReference, parse_ecr_uri
from .groups import catalogue_processor, check_declared, parse_processors
from .notices import warn_if_unmaintained
from .registry import locate_image
from .toolkits import (
    Processor,
    RLFramework,
    RLToolkit,
)
from .user_image_checks import (
    asset_platform,
    check_asset,
    check_image_uri,
    docker_asset,
    repository_image_uri,
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
    def bind(
        self,
        scope: Construct,
        *,
        instance_type: str,
        instance_groups: Mapping[str, str] | None = None,
    ) -> BoundImage:
        """Resolve the image for the stack of ``scope`` and the instances that run it.

        ``instance_groups`` (group name -> instance type) is for a heterogeneous training job:
        SageMaker runs one image on every group, so every group's type is checked and one
        processor variant is chosen for all of them (README.md#container-images); the groups then
        decide and ``instance_type`` is not consulted.
        """

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

    @property
    def ray_version(self) -> str | None:
        """The Ray release of a maintained Ray catalogue entry (``2.60.0``), else None: a Deep
        Learning Container without Ray, where the job installs :attr:`ray_requirement`."""
        return None

    @property
    def ray_requirement(self) -> str | None:
        """The pip requirement of :attr:`ray_version` (``ray[rllib]==2.60.0``), else None."""
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
    def from_uri(uri: str, processors: Sequence[Processor | str] | None = None) -> ContainerImage:
        """Any image URI, like the SDK's ``image_uri`` / the seed's ``image_name``.

        An ECR URI (``<account>.dkr.ecr.<region>.<suffix>/<repo>[:tag|@sha256:...]``) is parsed so
        the execution role's pull permission can be scoped to that repository. Other URIs (and
        tokens) are passed through and get no repository ARN: grant pull access yourself.

        ``processors`` says what the image runs on (``("cpu",)``, ``("gpu",)`` or both); given,
        an instance type or instance group it cannot run on is refused at synth, as for the
        images AWS publishes. None (the default) means unknown: nothing is checked.
        """
        label = f"ContainerImage.from_uri({check_image_uri(uri)!r})"
        return _UserImage(uri, label, parse_processors(processors), reference=parse_ecr_uri(uri))

    @staticmethod
    def from_ecr_repository(
        repository: ecr.IRepository,
        tag: str = "latest",
        processors: Sequence[Processor | str] | None = None,
    ) -> ContainerImage:
        """An image in an ECR repository of this app or an imported one.

        ``tag`` may also be a ``sha256:`` digest, which pins the exact image; ``processors`` is
        the same declaration as :meth:`from_uri`'s.
        """
        uri = repository_image_uri(repository, tag)
        label = f"the image {tag} of ECR repository {repository.node.path}"
        return _UserImage(uri, label, parse_processors(processors), repository=repository)

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
        gpu_image_on_cpu_groups: bool = False,
    ) -> None:
        self._repository = repository
        self._tag_prefix = tag_prefix
        self._py_version = py_version
        self._processors = processors
        self._registry = registry
        self._gpu_image_on_cpu_groups = gpu_image_on_cpu_groups

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

    def _unsupported_region_hint(self, region: str) -> str:
        return ""

    def bind(
        self,
        scope: Construct,
        *,
        instance_type: str,
        instance_groups: Mapping[str, str] | None = None,
    ) -> BoundImage:
        processor = catalogue_processor(
            self._label(),
            self._processors,
            instance_type,
            instance_groups,
            gpu_image_on_cpu_groups=self._gpu_image_on_cpu_groups,
        )
        image_uri, arn = locate_image(
            scope,
            self._registry,
            self._repository,
            self._tag(processor),
            self._unsupported_region_hint,
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
            ray_version=self.ray_version,
            ray_requirement=self.ray_requirement,
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
            gpu_image_on_cpu_groups=spec.gpu_image_on_cpu_groups,
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

    @property
    def ray_version(self) -> str | None:
        spec = self.spec
        return spec.toolkit_version if spec.maintained and spec.toolkit is RLToolkit.RAY else None

    @property
    def ray_requirement(self) -> str | None:
        return self.spec.requirement if self.ray_version else None

    def _unsupported_region_hint(self, region: str) -> str:
        return rl_versions_hint(self.spec, region)

    def bind(
        self,
        scope: Construct,
        *,
        instance_type: str,
        instance_groups: Mapping[str, str] | None = None,
    ) -> BoundImage:
        """As for every catalogue image, plus a synth warning when the image is unmaintained."""
        bound = super().bind(scope, instance_type=instance_type, instance_groups=instance_groups)
        if bound.processor is not None:
            warn_if_unmaintained(scope, self.spec, self._label(bound.processor))
        return bound

    def serving_image(self) -> ContainerImage:
        """The image to host a policy trained with this image.

        Coach follows the SDK's ``RLEstimator.deploy()``: TF Serving for TensorFlow, the MXNet
        serving image for MXNet. The SDK refused Ray; Ray with TensorFlow saves a SavedModel that
        TF Serving of the same TensorFlow line hosts, Ray with PyTorch is hosted by the PyTorch
        inference image of its torch version (with an inference script). A maintained entry names
        its serving image in the catalogue: AWS publishes no PyTorch inference image after 2.6, so
        Ray 2.60.0 (torch 2.8.0) is served by pytorch-inference 2.6.0 on the same Python, loading
        the policy's state dict with plain torch. Vowpal Wabbit has no serving image (an error).
        """
        family, version, patch_fallback = serving_choice(self.spec)
        argument = "framework_version" if patch_fallback else "version"
        return _FrameworkImage.create(
            family, version, None, argument, patch_fallback=patch_fallback
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
            gpu_image_on_cpu_groups=family.gpu_image_on_cpu_groups,
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


class _UserImage(ContainerImage):
    """An image the user names: a URI, or a tag or digest of an ECR repository."""

    def __init__(
        self,
        uri: str,
        label: str,
        processors: tuple[Processor, ...] | None,
        *,
        reference: EcrImageReference | None = None,
        repository: ecr.IRepository | None = None,
    ) -> None:
        self.uri, self.label, self.processors = uri, label, processors
        self.reference, self.repository = reference, repository

    def __repr__(self) -> str:
        return self.label

    def bind(
        self,
        scope: Construct,
        *,
        instance_type: str,
        instance_groups: Mapping[str, str] | None = None,
    ) -> BoundImage:
        processor = check_declared(self.label, self.processors, instance_type, instance_groups)
        arns: tuple[str, ...] = ()
        if self.repository is not None:
            arns = (self.repository.repository_arn,)
        elif self.reference is not None:
            arns = (self.reference.repository_arn(scope),)
        return BoundImage(
            image_uri=self.uri, repository_arns=arns, is_custom=True, processor=processor
        )


class _AssetImage(ContainerImage):
    def __init__(self, directory: str | os.PathLike[str], options: Mapping[str, Any]) -> None:
        self.directory = check_asset(directory, options)
        self.options = dict(options)
        self._bound: list[tuple[Construct, str, BoundImage]] = []

    def __repr__(self) -> str:
        return f"ContainerImage.from_asset({self.directory!r})"

    def bind(
        self,
        scope: Construct,
        *,
        instance_type: str,
        instance_groups: Mapping[str, str] | None = None,
    ) -> BoundImage:
        """One asset per scope and platform: training and serving on x86 share one build."""
        platform = asset_platform(self.options, instance_type, instance_groups)
        for bound_scope, bound_platform, bound in self._bound:
            if bound_scope is scope and bound_platform == platform.platform:
                return bound
        asset = docker_asset(scope, self.directory, {**self.options, "platform": platform})
        bound = BoundImage(
            image_uri=asset.image_uri,
            repository_arns=(asset.repository.repository_arn,),
            is_custom=True,
        )
        self._bound.append((scope, platform.platform, bound))
        return bound
