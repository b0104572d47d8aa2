"""The image catalogue (``_data/images.json``) and the SDK's rules for choosing from it.

The catalogue (accounts, regions, repositories, tags) is data, so that a refresh is a data change
that the parity tests check against the SDK's recorded URIs; this module only reads it and applies
the selection rules, so every choice is made at construction time, before synthesis finishes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import ValidationError, invalid
from .toolkits import IMAGES_REFERENCE, Processor, RLFramework, RLToolkit


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _is_pinned(version: str) -> bool:
    """Three-part versions name one build; two-part ones (``0.11``) are floating image tags."""
    return len(version.split(".")) >= 3


def _versions_agree(requested: str, catalogued: str) -> bool:
    """True when two versions are equal on every component both of them spell out.

    ``2.5`` agrees with ``2.5.0`` (the user asked for any 2.5 patch) and ``1.12.0`` with ``1.12``
    (the catalogue only knows the image ships some 1.12 patch, which the seed docs say is 1.12.0).
    """
    a, b = version_key(requested), version_key(catalogued)
    common = min(len(a), len(b))
    return a[:common] == b[:common]


@dataclass(frozen=True)
class RLImageSpec:
    """One RL training image of the catalogue: a SageMaker RL image, or a maintained toolkit
    version that runs on a framework image (``base_family``) after installing ``requirement``."""

    toolkit: RLToolkit
    toolkit_version: str
    framework: RLFramework | None
    framework_version: str | None
    repository: str
    tag_prefix: str
    py_version: str | None
    processors: tuple[Processor, ...]
    registry: str
    base_family: str | None = None
    """The framework family the image belongs to; None for the SageMaker RL images."""
    requirement: str | None = None
    """The pip requirement that puts the toolkit into the base image (``ray[rllib]==2.60.0``)."""
    serving_family: str | None = None
    serving_version: str | None = None
    known_issue: str | None = None
    """What is publicly reported about the image that users should hear at synth time."""
    gpu_image_on_cpu_groups: bool = False
    """True when the GPU variant also runs on CPU instances (``groups.processor_for_groups``)."""

    @property
    def maintained(self) -> bool:
        """The SageMaker RL images are frozen; entries on a framework image are patched by AWS."""
        return self.base_family is not None


@dataclass(frozen=True)
class FrameworkVersion:
    repository: str
    py_versions: tuple[str, ...]
    registry: str


@dataclass(frozen=True)
class FrameworkFamily:
    name: str
    framework: RLFramework
    purpose: str
    processors: tuple[Processor, ...]
    aliases: Mapping[str, str]
    versions: Mapping[str, FrameworkVersion]
    gpu_image_on_cpu_groups: bool = False

    def accepted_versions(self) -> list[str]:
        return sorted([*self.aliases, *self.versions], key=version_key)


@dataclass(frozen=True)
class _Catalogue:
    default_dns_suffix: str
    dns_suffix_by_prefix: Mapping[str, str]
    registries: Mapping[str, Mapping[str, str]]
    rl_images: tuple[RLImageSpec, ...]
    families: Mapping[str, FrameworkFamily]


@cache
def catalogue() -> _Catalogue:
    raw: dict[str, Any] = json.loads(
        resources.files("cdk_sagemaker_rl").joinpath("_data/images.json").read_text("utf-8")
    )
    families = {
        name: FrameworkFamily(
            name=name,
            framework=RLFramework(fam["framework"]),
            purpose=fam["purpose"],
            processors=tuple(Processor(p) for p in fam["processors"]),
            aliases=dict(fam["aliases"]),
            versions={
                v: FrameworkVersion(c["repository"], tuple(c["py_versions"]), c["registry"])
                for v, c in fam["versions"].items()
            },
            gpu_image_on_cpu_groups=bool(fam.get("gpu_image_on_cpu_groups", False)),
        )
        for name, fam in raw["framework_images"].items()
    }
    return _Catalogue(
        default_dns_suffix=raw["dns_suffixes"]["default"],
        dns_suffix_by_prefix=dict(raw["dns_suffixes"]["by_region_prefix"]),
        registries={k: dict(v) for k, v in raw["registries"].items()},
        rl_images=tuple(_rl_spec(item, families) for item in raw["rl_images"]),
        families=families,
    )


def _rl_spec(item: Mapping[str, Any], families: Mapping[str, FrameworkFamily]) -> RLImageSpec:
    """A catalogue entry; one on a framework image takes repository, tag and registry from it,
    so that the two can never disagree (a refresh of the family refreshes the entry)."""
    common: dict[str, Any] = {
        "toolkit": RLToolkit(item["toolkit"]),
        "toolkit_version": item["toolkit_version"],
        "framework": RLFramework(item["framework"]) if item["framework"] else None,
        "framework_version": item["framework_version"],
        "processors": tuple(Processor(p) for p in item["processors"]),
        "known_issue": item.get("known_issue"),
    }
    base = item.get("base_image")
    if base is None:
        return RLImageSpec(
            repository=item["repository"],
            tag_prefix=item["tag_prefix"],
            py_version=item["py_version"],
            registry=item["registry"],
            **common,
        )
    family = families[base["family"]]
    config = family.versions[base["version"]]
    serving = item["serving_image"]
    if base["py_version"] not in config.py_versions or serving["version"] not in (
        families[serving["family"]].versions
    ):
        raise ValueError(
            f"images.json: {item['toolkit']} {item['toolkit_version']} names an "
            "image version or py_version its family does not have"
        )
    return RLImageSpec(
        repository=config.repository,
        tag_prefix=base["version"],
        py_version=base["py_version"],
        registry=config.registry,
        base_family=family.name,
        requirement=item["requirement"],
        serving_family=serving["family"],
        serving_version=serving["version"],
        gpu_image_on_cpu_groups=family.gpu_image_on_cpu_groups,
        **common,
    )


def rl_image_specs() -> tuple[RLImageSpec, ...]:
    """Every RL training image in the catalogue (for documentation and tooling)."""
    return catalogue().rl_images


def dns_suffix_for_region(region: str) -> str:
    """The DNS suffix of ECR registries in ``region``: the longest matching region prefix wins.

    ``us-isob-`` must beat ``us-iso-``; everything not listed is in the commercial or GovCloud
    partitions, whose suffix is ``amazonaws.com``.
    """
    data = catalogue()
    best = ""
    for prefix in data.dns_suffix_by_prefix:
        if region.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return data.dns_suffix_by_prefix[best] if best else data.default_dns_suffix


def check_version_string(argument: str, value: object, examples: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", value):
        raise invalid(
            argument,
            value,
            f"a version string major.minor or major.minor.patch, e.g. {examples}",
            see=IMAGES_REFERENCE,
        )
    return value


def _versions_text(toolkit: RLToolkit, specs: Sequence[RLImageSpec]) -> str:
    """The catalogued versions; maintained ones first and apart, because they are the ones to
    move to and a version missing there is a catalogue refresh, not a typo."""

    def listed(maintained: bool) -> str:
        found = {s.toolkit_version for s in specs if s.maintained is maintained}
        return ", ".join(sorted(found, key=version_key))

    maintained, legacy = listed(True), listed(False)
    if not maintained:
        return f"a {toolkit.value} version in the catalogue: {legacy}"
    requirement = next(s.requirement for s in specs if s.maintained)
    return (
        f"a {toolkit.value} version in the catalogue: maintained (a Deep Learning Container plus "
        f"a pip requirement such as {requirement}): {maintained}; unmaintained SageMaker RL "
        f"images: {legacy}. For another {toolkit.value} release use ContainerImage."
        "pytorch_training(...) and pin it in your requirements.txt"
    )


def _describe_support(specs: Sequence[RLImageSpec]) -> str:
    return "; ".join(
        f"{s.toolkit.value} {s.toolkit_version} with "
        + (f"{s.framework.value} {s.framework_version}" if s.framework else "no framework")
        for s in sorted(specs, key=lambda s: (version_key(s.toolkit_version), str(s.framework)))
    )


def resolve_rl(
    toolkit: RLToolkit | str,
    toolkit_version: str | None,
    framework: RLFramework | str | None,
    framework_version: str | None,
) -> RLImageSpec:
    tk = RLToolkit.parse(toolkit, "toolkit")
    of_toolkit = [s for s in catalogue().rl_images if s.toolkit is tk]
    fw = None if framework is None else RLFramework.parse(framework, "framework")
    versions = sorted({s.toolkit_version for s in of_toolkit}, key=version_key)

    if toolkit_version is not None and toolkit_version not in versions:
        raise invalid(
            "toolkit_version", toolkit_version, _versions_text(tk, of_toolkit), see=IMAGES_REFERENCE
        )
    if framework_version is not None:
        check_version_string("framework_version", framework_version, "1.12 or 2.5.0")

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
                {s.toolkit_version for s in of_toolkit if s.framework is fw}, key=version_key
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
                key=version_key,
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
                key=version_key,
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
        key=lambda s: (version_key(s.framework_version or "0"), version_key(s.toolkit_version)),
    )


def rl_versions_hint(spec: RLImageSpec, region: str) -> str:
    """Name the versions of the same toolkit and framework that this region does have."""
    registries = catalogue().registries
    here = sorted(
        {
            s.toolkit_version
            for s in catalogue().rl_images
            if s.toolkit is spec.toolkit
            and s.framework is spec.framework
            and region in registries[s.registry]
        },
        key=version_key,
    )
    if not here:
        return ""
    return f" (or pin toolkit_version to one published in {region}: {', '.join(here)})"


def resolve_framework(
    family_name: str,
    version: str,
    py_version: str | None,
    argument: str,
    *,
    patch_fallback: bool = False,
) -> tuple[FrameworkFamily, str, FrameworkVersion, str | None]:
    """Validate ``version`` (and ``py_version``) against a framework family of the catalogue."""
    family = catalogue().families[family_name]
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
    return family, version, config, py


def serving_choice(spec: RLImageSpec) -> tuple[str, str, bool]:
    """The framework family, version and patch fallback of the image that serves ``spec``.

    Raises a ValidationError naming the alternatives when there is none (Vowpal Wabbit, a torch
    version without a PyTorch inference image).
    """
    if spec.serving_family is not None and spec.serving_version is not None:
        return spec.serving_family, spec.serving_version, False
    version = spec.framework_version
    reason = "Vowpal Wabbit models"
    if spec.toolkit is not RLToolkit.VW and version is not None:
        if spec.framework is RLFramework.TENSORFLOW:
            return "tensorflow-serving", version, True
        if spec.framework is RLFramework.MXNET:
            return "mxnet-serving", version, True
        inference = catalogue().families["pytorch-inference"].accepted_versions()
        if version in inference:
            return "pytorch-inference", version, False
        reason = (
            f"policies trained with torch {version}: pytorch-inference has {', '.join(inference)}"
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
