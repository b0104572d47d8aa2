"""Container images for RL training and serving, chosen the way the SageMaker SDK v2 chose them.

The SDK resolved an image URI in Python at call time, for one region. A CDK app is synthesized once
and may be deployed to a region it does not know yet (an environment-agnostic stack), so selection
is split in two: :class:`ContainerImage` factories validate the user's choice immediately (a bad
toolkit version fails at construction, not at deploy), and :meth:`ContainerImage.bind` turns the
choice into a URI for one stack and one instance type. With a concrete region the URI is a plain
string; with a token region the registry account comes from a ``CfnMapping`` and a ``CfnRule``
fails the deployment, with a readable message, in a region where the image is not published.

The catalogue itself (accounts, regions, repositories, tags) is data, in ``_data/images.json``, so
that a refresh is a data change that the parity tests check against the SDK's recorded URIs.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Self

import jsii
from aws_cdk import (
    Aws,
    CfnMapping,
    CfnRule,
    CfnRuleAssertion,
    Fn,
    IStableStringProducer,
    Lazy,
    Stack,
    Token,
)
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

from .errors import ValidationError, invalid

IMAGES_REFERENCE = "README.md#container-images"
"""Where the user-facing documentation of image selection lives (used in error messages)."""

_ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
)

# --------------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------------


class _ParsableEnum(StrEnum):
    """A string enum that also accepts its values as plain, case-insensitive strings.

    Users port code from the SDK, where ``RLToolkit.COACH`` was a different class, and from config
    files, where the value is a string; both should work without an import dance. Members are
    ``str`` instances equal to their values, so they drop into templates and f-strings as is.
    """

    @classmethod
    def parse(cls, value: object, argument_name: str) -> Self:
        """Return the member for ``value`` or raise a ValidationError naming the allowed values.

        Accepts a member of this enum, any other enum whose value is one of ours (the SDK's
        ``sagemaker.rl.RLToolkit.COACH`` for example), or a string matching a value or a member
        name in any case.
        """
        if isinstance(value, cls):
            return value
        raw: object = value.value if isinstance(value, Enum) else value
        if isinstance(raw, str):
            wanted = raw.strip().lower()
            for member in cls:
                if wanted in (member.value, member.name.lower()):
                    return member
        raise invalid(argument_name, value, [m.value for m in cls], see=IMAGES_REFERENCE)


class RLToolkit(_ParsableEnum):
    """The RL toolkits SageMaker published training images for."""

    COACH = "coach"
    RAY = "ray"
    VW = "vw"


class RLFramework(_ParsableEnum):
    """The deep-learning framework an RL image carries (Vowpal Wabbit images carry none)."""

    TENSORFLOW = "tensorflow"
    MXNET = "mxnet"
    PYTORCH = "pytorch"


_INSTANCE_TYPE_RE = re.compile(r"^ml\.(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9-]+)$")
# Arm hosts: Graviton families (c6g, c6gn, m7g, r8g; not g4dn) and Grace GPUs (p6e-gb200).
_ARM_FAMILY_RE = re.compile(r"^[a-z]+\d+g[a-z]*$|-gb\d+$")


class Processor(_ParsableEnum):
    """Which image variant an instance type needs; SageMaker images are built per processor."""

    CPU = "cpu"
    GPU = "gpu"

    @classmethod
    def for_instance_type(
        cls, instance_type: str, argument_name: str = "instance_type"
    ) -> Processor:
        """GPU for instance families starting with ``g`` or ``p`` (``ml.p3.2xlarge``), else CPU.

        This is the SDK's rule, including its local-mode names (``local`` is CPU, ``local_gpu``
        GPU), so that an image chosen here is the one the SDK would have chosen.
        """
        if not isinstance(instance_type, str) or Token.is_unresolved(instance_type):
            raise invalid(
                argument_name,
                instance_type,
                "a concrete SageMaker instance type such as ml.c5.xlarge (the processor variant "
                "of a SageMaker-provided image is chosen at synth time, so it cannot be a token; "
                "use ContainerImage.from_uri for a deploy-time image)",
                see=IMAGES_REFERENCE,
            )
        if instance_type == "local":
            return cls.CPU
        if instance_type == "local_gpu":
            return cls.GPU
        match = _INSTANCE_TYPE_RE.match(instance_type)
        if match is None:
            raise invalid(
                argument_name,
                instance_type,
                "an instance type of the form ml.<family>.<size>, e.g. ml.c5.xlarge or "
                "ml.p3.2xlarge (or local / local_gpu)",
                see="https://aws.amazon.com/sagemaker/pricing/",
            )
        return cls.GPU if match["family"][0] in ("g", "p") else cls.CPU


def _instance_family(instance_type: str) -> str:
    match = _INSTANCE_TYPE_RE.match(instance_type)
    return match["family"] if match else ""


# --------------------------------------------------------------------------------------------
# Catalogue (data in _data/images.json)
# --------------------------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _is_pinned(version: str) -> bool:
    """Three-part versions name one build; two-part ones (``0.11``) are floating image tags."""
    return len(version.split(".")) >= 3


def _versions_agree(requested: str, catalogued: str) -> bool:
    """True when two versions are equal on every component both of them spell out.

    ``2.5`` agrees with ``2.5.0`` (the user asked for any 2.5 patch) and ``1.12.0`` with ``1.12``
    (the catalogue only knows the image ships some 1.12 patch, which the seed docs say is 1.12.0).
    """
    a, b = _version_key(requested), _version_key(catalogued)
    common = min(len(a), len(b))
    return a[:common] == b[:common]


@dataclass(frozen=True)
class RLImageSpec:
    """One SageMaker RL training image, as recorded in the catalogue."""

    toolkit: RLToolkit
    toolkit_version: str
    framework: RLFramework | None
    framework_version: str | None
    repository: str
    tag_prefix: str
    py_version: str | None
    processors: tuple[Processor, ...]
    registry: str


@dataclass(frozen=True)
class _FrameworkVersion:
    repository: str
    py_versions: tuple[str, ...]
    registry: str


@dataclass(frozen=True)
class _FrameworkFamily:
    name: str
    framework: RLFramework
    purpose: str
    processors: tuple[Processor, ...]
    aliases: Mapping[str, str]
    versions: Mapping[str, _FrameworkVersion]

    def accepted_versions(self) -> list[str]:
        return sorted([*self.aliases, *self.versions], key=_version_key)


@dataclass(frozen=True)
class _Catalogue:
    default_dns_suffix: str
    dns_suffix_by_prefix: Mapping[str, str]
    registries: Mapping[str, Mapping[str, str]]
    rl_images: tuple[RLImageSpec, ...]
    families: Mapping[str, _FrameworkFamily]


@cache
def _catalogue() -> _Catalogue:
    raw: dict[str, Any] = json.loads(
        resources.files("cdk_sagemaker_rl").joinpath("_data/images.json").read_text("utf-8")
    )
    rl_images = tuple(
        RLImageSpec(
            toolkit=RLToolkit(item["toolkit"]),
            toolkit_version=item["toolkit_version"],
            framework=RLFramework(item["framework"]) if item["framework"] else None,
            framework_version=item["framework_version"],
            repository=item["repository"],
            tag_prefix=item["tag_prefix"],
            py_version=item["py_version"],
            processors=tuple(Processor(p) for p in item["processors"]),
            registry=item["registry"],
        )
        for item in raw["rl_images"]
    )
    families = {
        name: _FrameworkFamily(
            name=name,
            framework=RLFramework(fam["framework"]),
            purpose=fam["purpose"],
            processors=tuple(Processor(p) for p in fam["processors"]),
            aliases=dict(fam["aliases"]),
            versions={
                v: _FrameworkVersion(c["repository"], tuple(c["py_versions"]), c["registry"])
                for v, c in fam["versions"].items()
            },
        )
        for name, fam in raw["framework_images"].items()
    }
    return _Catalogue(
        default_dns_suffix=raw["dns_suffixes"]["default"],
        dns_suffix_by_prefix=dict(raw["dns_suffixes"]["by_region_prefix"]),
        registries={k: dict(v) for k, v in raw["registries"].items()},
        rl_images=rl_images,
        families=families,
    )


def rl_image_specs() -> tuple[RLImageSpec, ...]:
    """Every RL training image in the catalogue (for documentation and tooling)."""
    return _catalogue().rl_images


def dns_suffix_for_region(region: str) -> str:
    """The DNS suffix of ECR registries in ``region``: the longest matching region prefix wins.

    ``us-isob-`` must beat ``us-iso-``; everything not listed is in the commercial or GovCloud
    partitions, whose suffix is ``amazonaws.com``.
    """
    catalogue = _catalogue()
    best = ""
    for prefix in catalogue.dns_suffix_by_prefix:
        if region.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return catalogue.dns_suffix_by_prefix[best] if best else catalogue.default_dns_suffix


# --------------------------------------------------------------------------------------------
# Bound image
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundImage:
    """An image resolved for one stack and one instance type.

    ``image_uri`` and the entries of ``repository_arns`` may be CDK tokens (an
    environment-agnostic stack, an asset, an imported repository).
    """

    image_uri: str
    repository_arns: tuple[str, ...]
    is_custom: bool
    """True for images the user brought; the SDK gives those no default metric definitions."""
    toolkit: RLToolkit | None = None
    toolkit_version: str | None = None
    framework: RLFramework | None = None
    framework_version: str | None = None
    processor: Processor | None = None
    """None when unknown (a custom image does not say which processor it was built for)."""

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant | None:
        """Allow ``grantee`` (the SageMaker execution role) to pull this image.

        Pull actions are scoped to the image's repositories; ``ecr:GetAuthorizationToken`` has no
        resource-level permissions, so AWS requires ``*`` for it. Returns None when the image is
        not in ECR (nothing to grant).
        """
        if not self.repository_arns:
            return None
        pull = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(_ECR_PULL_ACTIONS),
            resource_arns=list(self.repository_arns),
        )
        token = iam.Grant.add_to_principal(
            grantee=grantee, actions=["ecr:GetAuthorizationToken"], resource_arns=["*"]
        )
        return pull.combine(token)


# --------------------------------------------------------------------------------------------
# Region -> registry account for environment-agnostic stacks
# --------------------------------------------------------------------------------------------


@jsii.implements(IStableStringProducer)
class _RuleDescription:
    """Lazily names every image that relies on one mapping, so one rule serves them all."""

    def __init__(self, regions: Sequence[str]) -> None:
        self.regions = list(regions)
        self.images: set[str] = set()

    def produce(self) -> str:
        names = ", ".join(sorted(self.images))
        return (
            f"SageMaker-provided image(s) {names} are published only in these regions: "
            f"{', '.join(self.regions)}. Deploy this stack to one of them, or use "
            "ContainerImage.from_uri / from_ecr_repository with an image in this region."
        )


class _RegistryMapping(Construct):
    """The per-stack ``CfnMapping`` (region -> registry account) and ``CfnRule`` of one registry.

    Why a rule as well as the mapping: ``Fn::FindInMap`` with a missing region also fails the
    deployment, but with "Unable to get mapping for ...", which says nothing about images. The
    rule asserts ``Fn::Contains [<regions>, Ref AWS::Region]``: CloudFormation evaluates rules
    before it creates any resource and reports the AssertDescription, which names the images and
    the regions that would work. (``Ref AWS::Region`` is accepted inside rules by CloudFormation
    and cfn-lint alike.)
    """

    def __init__(self, scope: Stack, construct_id: str, registry: str) -> None:
        super().__init__(scope, construct_id)
        accounts = _catalogue().registries[registry]
        self.regions = sorted(accounts)
        self.mapping = CfnMapping(
            self,
            "Accounts",
            mapping={region: {"account": accounts[region]} for region in self.regions},
        )
        self.mapping.override_logical_id(f"{construct_id}Accounts")
        self.description = _RuleDescription(self.regions)
        rule = CfnRule(
            self,
            "RegionCheck",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(self.regions, Aws.REGION),
                    assert_description=Lazy.string(self.description),
                )
            ],
        )
        rule.override_logical_id(f"{construct_id}RegionCheck")

    @classmethod
    def of(cls, stack: Stack, registry: str) -> _RegistryMapping:
        construct_id = "ImageRegistry" + "".join(p.capitalize() for p in registry.split("-"))
        existing = stack.node.try_find_child(construct_id)
        if isinstance(existing, _RegistryMapping):
            return existing
        return cls(stack, construct_id, registry)


# --------------------------------------------------------------------------------------------
# ContainerImage and its kinds
# --------------------------------------------------------------------------------------------


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
        return RLToolkitImage(_resolve_rl(toolkit, toolkit_version, framework, framework_version))

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
        processor = Processor.for_instance_type(instance_type)
        family = _instance_family(instance_type)
        if family.startswith(("inf", "trn")):
            raise invalid(
                "instance_type",
                instance_type,
                f"a CPU or GPU instance type: {self._label()} has no AWS Neuron (Inferentia/"
                "Trainium) variant; use ContainerImage.from_uri with a Neuron image instead",
                see=IMAGES_REFERENCE,
            )
        if _ARM_FAMILY_RE.search(family):
            raise invalid(
                "instance_type",
                instance_type,
                f"an x86 instance type: {self._label()} is built for x86 only and this "
                "instance type is an Arm (Graviton/Grace) host; use ContainerImage.from_uri with "
                "an arm64 image, or from_asset, which builds for the instance's platform",
                see=IMAGES_REFERENCE,
            )
        if processor not in self._processors:
            kinds = " or ".join(p.value.upper() for p in self._processors)
            raise invalid(
                "instance_type",
                instance_type,
                f"a {kinds} instance type: {self._label()} is published for "
                f"{', '.join(p.value for p in self._processors)} only "
                "(GPU instance families start with g or p)",
                see=IMAGES_REFERENCE,
            )
        return processor

    def _unsupported_region_hint(self, region: str) -> str:
        return ""

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        processor = self._processor(instance_type)
        tag = self._tag(processor)
        stack = Stack.of(scope)
        region = stack.region
        accounts = _catalogue().registries[self._registry]
        if not Token.is_unresolved(region):
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
            registry = _RegistryMapping.of(stack, self._registry)
            registry.description.images.add(f"{self._repository}:{tag}")
            account = registry.mapping.find_in_map(Aws.REGION, "account")
            image_uri = Fn.join(
                "",
                [
                    account,
                    ".dkr.ecr.",
                    Aws.REGION,
                    ".",
                    Aws.URL_SUFFIX,
                    f"/{self._repository}:{tag}",
                ],
            )
            arn_region = Aws.REGION
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
        """Name the versions of the same toolkit and framework that this region does have."""
        registries = _catalogue().registries
        here = sorted(
            {
                s.toolkit_version
                for s in _catalogue().rl_images
                if s.toolkit is self.spec.toolkit
                and s.framework is self.spec.framework
                and region in registries[s.registry]
            },
            key=_version_key,
        )
        if not here:
            return ""
        return f" (or pin toolkit_version to one published in {region}: {', '.join(here)})"

    def serving_image(self) -> ContainerImage:
        """The image to host a policy trained with this image.

        Coach follows the SDK's ``RLEstimator.deploy()``: TF Serving for TensorFlow, the MXNet
        serving image for MXNet. The SDK refused Ray; Ray with TensorFlow saves a SavedModel that
        TF Serving of the same TensorFlow line hosts, so that is served too. Ray with PyTorch and
        Vowpal Wabbit have no SageMaker serving image: a ValidationError names the alternatives.
        """
        spec = self.spec
        if spec.toolkit is not RLToolkit.VW and spec.framework_version is not None:
            if spec.framework is RLFramework.TENSORFLOW:
                return ContainerImage.tensorflow_serving(spec.framework_version)
            if spec.framework is RLFramework.MXNET:
                return ContainerImage.mxnet_serving(spec.framework_version)
        raise invalid(
            "serving image for",
            f"{spec.toolkit.value}-{spec.toolkit_version}"
            + (f"-{spec.framework.value}" if spec.framework else ""),
            "an image trained with TensorFlow or MXNet (there is no SageMaker serving image for "
            "Ray PyTorch policies or Vowpal Wabbit models); pass a serving image explicitly, "
            "e.g. ContainerImage.pytorch_inference(...) with an inference script, or "
            "ContainerImage.from_uri(...)",
            see=IMAGES_REFERENCE,
        )


def _check_version_string(argument: str, value: object, examples: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", value):
        raise invalid(
            argument,
            value,
            f"a version string major.minor or major.minor.patch, e.g. {examples}",
            see=IMAGES_REFERENCE,
        )
    return value


def _describe_support(specs: Sequence[RLImageSpec]) -> str:
    return "; ".join(
        f"{s.toolkit.value} {s.toolkit_version} with "
        + (f"{s.framework.value} {s.framework_version}" if s.framework else "no framework")
        for s in sorted(specs, key=lambda s: (_version_key(s.toolkit_version), str(s.framework)))
    )


def _resolve_rl(
    toolkit: RLToolkit | str,
    toolkit_version: str | None,
    framework: RLFramework | str | None,
    framework_version: str | None,
) -> RLImageSpec:
    tk = RLToolkit.parse(toolkit, "toolkit")
    of_toolkit = [s for s in _catalogue().rl_images if s.toolkit is tk]
    fw = None if framework is None else RLFramework.parse(framework, "framework")
    versions = sorted({s.toolkit_version for s in of_toolkit}, key=_version_key)

    if toolkit_version is not None and toolkit_version not in versions:
        raise invalid(
            "toolkit_version",
            toolkit_version,
            f"a {tk.value} version in the catalogue: {', '.join(versions)}",
            see=IMAGES_REFERENCE,
        )
    if framework_version is not None:
        _check_version_string("framework_version", framework_version, "1.12 or 2.5.0")

    if tk is RLToolkit.VW:
        if fw is not None or framework_version is not None:
            argument, value = (
                ("framework", framework) if fw else ("framework_version", framework_version)
            )
            raise invalid(
                argument,
                value,
                "None: Vowpal Wabbit images carry no deep-learning framework",
                see=IMAGES_REFERENCE,
            )
    elif fw is None:
        supported = sorted(
            {
                s.framework.value
                for s in of_toolkit
                if s.framework and toolkit_version in (None, s.toolkit_version)
            }
        )
        raise invalid(
            "framework",
            None,
            f"one of {', '.join(supported)} (required with toolkit {tk.value}; or give a "
            "custom image with ContainerImage.from_uri)",
            see=IMAGES_REFERENCE,
        )

    if toolkit_version is not None:
        same_version = [s for s in of_toolkit if s.toolkit_version == toolkit_version]
        chosen = [s for s in same_version if s.framework is fw]
        if not chosen:
            with_framework = sorted(
                {s.toolkit_version for s in of_toolkit if s.framework is fw}, key=_version_key
            )
            error = invalid(
                "framework",
                fw.value if fw else None,
                f"what {tk.value} {toolkit_version} supports: {_describe_support(same_version)}"
                + (
                    f"; {fw.value if fw else 'it'} is supported by {tk.value} "
                    f"{', '.join(with_framework)}"
                    if with_framework
                    else ""
                ),
                see=IMAGES_REFERENCE,
            )
            raise ValidationError(
                f"Provided `{tk.value}-{toolkit_version}` and "
                f"`{fw.value if fw else None}` combination is not supported. {error}"
            )
        spec = chosen[0]
        if (
            framework_version is not None
            and spec.framework_version is not None
            and not _versions_agree(framework_version, spec.framework_version)
        ):
            agreeing = sorted(
                {
                    s.toolkit_version
                    for s in of_toolkit
                    if s.framework is fw
                    and s.framework_version
                    and _versions_agree(framework_version, s.framework_version)
                },
                key=_version_key,
            )
            raise invalid(
                "framework_version",
                framework_version,
                f"{spec.framework_version} (the {fw.value if fw else ''} version in the "
                f"{tk.value} {toolkit_version} image), or omit framework_version"
                + (
                    f"; {framework_version} comes with {tk.value} {', '.join(agreeing)}"
                    if agreeing
                    else ""
                ),
                see=IMAGES_REFERENCE,
            )
        return spec

    candidates = [s for s in of_toolkit if s.framework is fw and _is_pinned(s.toolkit_version)]
    if framework_version is not None:
        matching = [
            s
            for s in candidates
            if s.framework_version and _versions_agree(framework_version, s.framework_version)
        ]
        if not matching:
            with_framework_specs = [s for s in of_toolkit if s.framework is fw]
            available = sorted(
                {
                    s.framework_version
                    for s in of_toolkit
                    if s.framework is fw and s.framework_version
                },
                key=_version_key,
            )
            raise invalid(
                "framework_version",
                framework_version,
                f"a {fw.value if fw else ''} version that a {tk.value} image carries: "
                f"{', '.join(available)} ({_describe_support(with_framework_specs)})",
                see=IMAGES_REFERENCE,
            )
        candidates = matching
    return max(
        candidates,
        key=lambda s: (_version_key(s.framework_version or "0"), _version_key(s.toolkit_version)),
    )


class _FrameworkImage(_CatalogueImage):
    """A framework image (TF Serving, MXNet serving, DLC PyTorch) chosen by version."""

    def __init__(
        self,
        family: _FrameworkFamily,
        version: str,
        config: _FrameworkVersion,
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
        family = _catalogue().families[family_name]
        accepted = family.accepted_versions()
        if (
            patch_fallback
            and isinstance(version, str)
            and version not in accepted
            and re.fullmatch(r"\d+\.\d+\.\d+", version)
            and version.rsplit(".", 1)[0] in family.aliases
        ):
            version = version.rsplit(".", 1)[0]
        if not isinstance(version, str) or version not in accepted:
            raise invalid(f"{family_name} {argument}", version, accepted, see=IMAGES_REFERENCE)
        config = family.versions[family.aliases.get(version, version)]
        if py_version is None:
            if len(config.py_versions) > 1:  # today every version publishes one
                raise invalid("py_version", None, config.py_versions, see=IMAGES_REFERENCE)
            py = config.py_versions[0] if config.py_versions else None
        elif py_version in config.py_versions:
            py = py_version
        else:
            raise invalid(
                f"{family_name} {version} py_version",
                py_version,
                config.py_versions or "None (this image has no Python tag)",
                see=IMAGES_REFERENCE,
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

_ECR_URI_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr[.-]ecr(?P<fips>-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
    r"\.(?P<suffix>[a-z0-9][a-z0-9.-]*[a-z])"
    r"/(?P<repository>[^:@\s]+)"
    r"(?::(?P<tag>[^@\s]+))?"
    r"(?:@(?P<digest>[^\s]+))?$"
)
_ECR_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class EcrImageReference:
    """The parts of an ECR image URI."""

    account: str
    region: str
    dns_suffix: str
    repository: str
    tag: str | None
    digest: str | None

    def repository_arn(self, scope: Construct) -> str:
        """The repository ARN; the partition comes from the stack, which must share it anyway."""
        return Stack.of(scope).format_arn(
            service="ecr",
            resource="repository",
            resource_name=self.repository,
            account=self.account,
            region=self.region,
        )


def parse_ecr_uri(uri: str) -> EcrImageReference | None:
    """Parse an ECR image URI; None when ``uri`` is not an ECR URI (or is a token).

    Raises ValidationError when the host is ECR's but the rest cannot name an image, since such a
    URI would only fail later, when SageMaker pulls it.
    """
    if not isinstance(uri, str) or Token.is_unresolved(uri):
        return None
    match = _ECR_URI_RE.match(uri)
    if match is None:
        if re.match(r"^\d{12}\.dkr[.-]ecr", uri):
            raise invalid(
                "image_uri",
                uri,
                "an ECR image URI <account>.dkr.ecr.<region>.<dns suffix>/<repository>"
                "[:<tag>|@sha256:<digest>]",
                see=IMAGES_REFERENCE,
            )
        return None
    repository, tag, digest = match["repository"], match["tag"], match["digest"]
    if not _ECR_REPOSITORY_RE.match(repository) or len(repository) > 256:
        raise invalid(
            "image_uri",
            uri,
            f"an ECR repository name of lower case letters, digits and ._-/ (got {repository!r})",
            see="https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html",
        )
    if tag is not None and not _TAG_RE.match(tag):
        raise invalid("image_uri", uri, f"a valid image tag (got {tag!r})", see=IMAGES_REFERENCE)
    if digest is not None and not _DIGEST_RE.match(digest):
        raise invalid(
            "image_uri",
            uri,
            f"a digest sha256:<64 hex digits> (got {digest!r})",
            see=IMAGES_REFERENCE,
        )
    return EcrImageReference(
        account=match["account"],
        region=match["region"],
        dns_suffix=match["suffix"],
        repository=repository,
        tag=tag,
        digest=digest,
    )


class _UriImage(ContainerImage):
    def __init__(self, uri: str) -> None:
        if not isinstance(uri, str) or not uri.strip():
            raise invalid("image_uri", uri, "a non-empty image URI", see=IMAGES_REFERENCE)
        if not Token.is_unresolved(uri):
            if uri != uri.strip() or any(c.isspace() for c in uri):
                raise invalid(
                    "image_uri", uri, "an image URI without whitespace", see=IMAGES_REFERENCE
                )
            if "://" in uri:
                raise invalid(
                    "image_uri",
                    uri,
                    "a registry path such as 123456789012.dkr.ecr.us-west-2.amazonaws.com/repo:tag "
                    "(an image reference has no URL scheme)",
                    see=IMAGES_REFERENCE,
                )
        self.uri = uri
        self.ecr = parse_ecr_uri(uri)

    def __repr__(self) -> str:
        return f"ContainerImage.from_uri({self.uri!r})"

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        arns = (self.ecr.repository_arn(scope),) if self.ecr else ()
        return BoundImage(image_uri=self.uri, repository_arns=arns, is_custom=True)


class _EcrRepositoryImage(ContainerImage):
    def __init__(self, repository: ecr.IRepository, tag: str) -> None:
        if not all(hasattr(repository, a) for a in ("repository_uri_for_tag", "repository_arn")):
            raise invalid(
                "repository",
                repository,
                "an aws_ecr.IRepository (ecr.Repository or Repository.from_repository_name(...))",
                see=IMAGES_REFERENCE,
            )
        if not isinstance(tag, str) or not (
            Token.is_unresolved(tag) or _TAG_RE.match(tag) or _DIGEST_RE.match(tag)
        ):
            raise invalid(
                "tag",
                tag,
                "an image tag of up to 128 letters, digits and _.- (not starting with . or -) "
                "or a digest sha256:<64 hex digits>",
                see=IMAGES_REFERENCE,
            )
        self.repository = repository
        self.tag = tag

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        if not Token.is_unresolved(self.tag) and self.tag.startswith("sha256:"):
            uri = self.repository.repository_uri_for_digest(self.tag)
        else:
            uri = self.repository.repository_uri_for_tag(self.tag)
        return BoundImage(
            image_uri=uri, repository_arns=(self.repository.repository_arn,), is_custom=True
        )


def _asset_option_names() -> frozenset[str]:
    parameters = inspect.signature(ecr_assets.DockerImageAsset.__init__).parameters
    return frozenset(parameters) - {"self", "scope", "id", "directory"}


class _AssetImage(ContainerImage):
    def __init__(self, directory: str | os.PathLike[str], options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - _asset_option_names())
        if unknown:
            raise invalid(
                "from_asset option",
                unknown[0],
                sorted(_asset_option_names()),
                see="https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.aws_ecr_assets/DockerImageAsset.html",
            )
        path = Path(directory)
        if not path.is_dir():
            raise invalid(
                "directory",
                str(directory),
                "an existing directory with a Dockerfile",
                see=IMAGES_REFERENCE,
            )
        dockerfile = options.get("file") or "Dockerfile"
        if not (path / dockerfile).is_file():
            raise invalid(
                "directory",
                str(directory),
                f"a directory containing {dockerfile} (not found at {path / dockerfile})",
                see=IMAGES_REFERENCE,
            )
        self.directory = str(path.resolve())
        self.options = dict(options)
        self._bound: list[tuple[Construct, str, BoundImage]] = []

    def __repr__(self) -> str:
        return f"ContainerImage.from_asset({self.directory!r})"

    def _platform(self, instance_type: str) -> ecr_assets.Platform:
        """The user's platform, else the one the instance runs: Graviton families are arm64."""
        explicit: ecr_assets.Platform | None = self.options.get("platform")
        if explicit is not None:
            return explicit
        family = _instance_family(instance_type) if isinstance(instance_type, str) else ""
        if _ARM_FAMILY_RE.search(family):
            return ecr_assets.Platform.LINUX_ARM64
        return ecr_assets.Platform.LINUX_AMD64

    def bind(self, scope: Construct, *, instance_type: str) -> BoundImage:
        """One asset per scope and platform: training and serving on x86 share one build."""
        platform = self._platform(instance_type)
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


__all__ = [
    "BoundImage",
    "ContainerImage",
    "EcrImageReference",
    "Processor",
    "RLFramework",
    "RLImageSpec",
    "RLToolkit",
    "RLToolkitImage",
    "dns_suffix_for_region",
    "parse_ecr_uri",
    "rl_image_specs",
]
