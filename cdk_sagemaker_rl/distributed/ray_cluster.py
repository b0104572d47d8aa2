"""A Ray cluster across the instances of a training job: what the estimator wires for the launcher.

SageMaker starts the same program on every instance; Ray needs one head and workers that join it.
The launcher (``distributed/launcher.py``, run as ``sagemaker_program``) starts them and then runs
the user's entry point on the head. This module decides *whether* a job uses it (a catalogued Ray 2
image always does; any other image when ``distribution=RayCluster(...)`` says so), checks the
settings at synth, and says what the bundle and the request carry: the launcher file at the
archive root, a ``requirements.txt`` that installs the image's Ray when the user's does not, and
the environment the launcher reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources

from aws_cdk import Duration, Token

from .._limits import limit, limits
from ..errors import invalid
from ..images import ContainerImage
from ..source import ExtraFile

DISTRIBUTED = "README.md#distributed-rl"
#: The launcher's name in the bundle: unlikely to be a user's, and refused when it is.
LAUNCHER_NAME = "cdk_sagemaker_rl_ray_launcher.py"
REQUIREMENTS = "requirements.txt"
ENTRY_POINT_VARIABLE = "CDK_SAGEMAKER_RL_ENTRY_POINT"
STARTUP_TIMEOUT_VARIABLE = "CDK_SAGEMAKER_RL_RAY_STARTUP_TIMEOUT"
PORT_VARIABLE = "CDK_SAGEMAKER_RL_RAY_PORT"
HEAD_GROUP_VARIABLE = "CDK_SAGEMAKER_RL_RAY_HEAD_GROUP"
VARIABLES = (ENTRY_POINT_VARIABLE, STARTUP_TIMEOUT_VARIABLE, PORT_VARIABLE, HEAD_GROUP_VARIABLE)


@dataclass(frozen=True)
class RayCluster:
    """How the instances of a job form one Ray cluster (``RLEstimator(distribution=...)``).

    ``head_instance_group``: the instance group whose first host is the head (default: the first
    host of the job, ``algo-1``); ``startup_timeout``: how long workers wait for the head and the
    head for the workers (10 s to 1 h); ``port``: the head's GCS port (1024-65535).
    """

    head_instance_group: str | None = None
    startup_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    port: int = 6379

    def __post_init__(self) -> None:
        head = self.head_instance_group
        if head is not None and (not isinstance(head, str) or not head):
            raise invalid(
                "head_instance_group", head, "None or an instance group name", see=DISTRIBUTED
            )
        low, high = limit("ray_cluster", "startup_timeout_seconds").values()
        timeout = self.startup_timeout
        allowed = f"an aws_cdk.Duration of {low} s to {high} s"
        if not isinstance(timeout, Duration) or Token.is_unresolved(timeout.to_milliseconds()):
            raise invalid("startup_timeout", timeout, allowed, see=DISTRIBUTED)
        milliseconds = timeout.to_milliseconds()
        if milliseconds % 1000:
            raise invalid("startup_timeout", timeout, "a whole number of seconds", see=DISTRIBUTED)
        if not low <= milliseconds // 1000 <= high:
            raise invalid("startup_timeout", timeout, allowed, see=DISTRIBUTED)
        low, high = limit("ray_cluster", "port").values()
        port = self.port
        if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= high:
            raise invalid(
                "port",
                port,
                f"an integer from {low} to {high} (unprivileged TCP ports)",
                see=DISTRIBUTED,
            )

    @property
    def program(self) -> str:
        """``sagemaker_program``: the launcher, which runs the user's entry point."""
        return LAUNCHER_NAME

    def environment(self, entry_point: str) -> dict[str, str]:
        """What the launcher reads: the entry point as bundled and this cluster's settings."""
        environment = {
            ENTRY_POINT_VARIABLE: entry_point,
            STARTUP_TIMEOUT_VARIABLE: str(int(self.startup_timeout.to_milliseconds()) // 1000),
            PORT_VARIABLE: str(self.port),
        }
        if self.head_instance_group is not None:
            environment[HEAD_GROUP_VARIABLE] = self.head_instance_group
        return environment


def ray_version(image: ContainerImage) -> str | None:
    """The Ray 2 version a catalogued image carries; None for every other image."""
    version = getattr(image, "ray_version", None)
    return version if isinstance(version, str) else None


def ray_cluster(
    image: ContainerImage,
    distribution: object,
    *,
    instance_groups: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
) -> RayCluster | None:
    """The cluster a job starts, checked against its image, groups and environment (None: the
    job runs the entry point itself)."""
    if distribution is not None and not isinstance(distribution, RayCluster):
        raise invalid("distribution", distribution, "None or a RayCluster(...)", see=DISTRIBUTED)
    if ray_version(image) is None:
        if distribution is None:
            return None
        if not image.is_custom and image.toolkit is not None:
            raise invalid(
                "distribution",
                distribution,
                f"None with {image!r}: the launcher starts Ray 2, and this SageMaker RL image "
                f"carries {image.toolkit.value} {image.toolkit_version} (Ray <= 1.6, Coach and "
                "VW images start their own processes). Choose a Ray 2 toolkit image, or your "
                "own image with Ray 2",
                see=DISTRIBUTED,
            )
    cluster = distribution if isinstance(distribution, RayCluster) else RayCluster()
    head = cluster.head_instance_group
    if head is not None and head not in instance_groups:
        raise invalid(
            "head_instance_group",
            head,
            f"one of the job's instance groups: {', '.join(instance_groups)}"
            if instance_groups
            else "None: the job has no instance_groups (give instance_groups=[...] to name one)",
            see=DISTRIBUTED,
        )
    given = dict(environment or {})
    for key in VARIABLES:
        if key in given:
            raise invalid(
                f"environment[{key!r}]",
                given[key],
                "no value: the Ray launcher sets this variable (README.md#distributed-rl)",
                see=DISTRIBUTED,
            )
    most = limits()["environment"]["max_entries"]
    if len(given) + len(cluster.environment("")) > most:
        raise invalid(
            "environment",
            f"<{len(given)} variables>",
            f"at most {most - len(cluster.environment(''))} variables with the Ray launcher, "
            f"which adds {len(cluster.environment(''))} (SageMaker takes {most})",
            see=DISTRIBUTED,
        )
    return cluster


def launcher_source() -> bytes:
    """The launcher script, as the package ships it."""
    return resources.files(__package__).joinpath("launcher.py").read_bytes()


def launcher_files(image: ContainerImage) -> tuple[ExtraFile, ...]:
    """What a bundle started through the launcher carries besides the user's files."""
    files = [
        ExtraFile(
            LAUNCHER_NAME,
            launcher_source(),
            purpose="the Ray launcher (distribution, README.md#distributed-rl)",
            see=DISTRIBUTED,
        )
    ]
    version = ray_version(image)
    requirement = getattr(image, "ray_requirement", None)
    if version is not None and isinstance(requirement, str):
        files.append(
            ExtraFile(
                REQUIREMENTS,
                partial(with_ray, version=version, requirement=requirement),
                replaces=True,
                see=DISTRIBUTED,
            )
        )
    return tuple(files)


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?(.*)$")
_PIN = re.compile(r"===?\s*([^\s,;]+)")


def with_ray(existing: bytes | None, *, version: str, requirement: str) -> bytes:
    """The user's requirements, plus ``requirement`` when they name no ``ray``; a ray pinned to
    another version than the image's is refused (pip would replace the image's Ray)."""
    text = existing.decode("utf-8") if existing is not None else ""
    for line in text.splitlines():
        spec = re.split(r"(^|\s)#", line, maxsplit=1)[0].strip()
        match = _NAME.match(spec)
        if spec.startswith("-") or match is None:
            continue
        if re.sub(r"[-_.]+", "-", match.group(1)).lower() != "ray":
            continue
        pin = _PIN.search(match.group(3).split(";", 1)[0])
        if pin and not _same_version(pin.group(1), version):
            raise invalid(
                "requirements.txt ray",
                line.strip(),
                f"no pin, or ray=={version}: the image carries Ray {version}",
                see=DISTRIBUTED,
            )
        return existing or b""
    separator = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{separator}{requirement}\n".encode()


def _same_version(pinned: str, version: str) -> bool:
    if pinned.endswith(".*"):
        return (version + ".").startswith(pinned[:-1])
    return pinned == version
