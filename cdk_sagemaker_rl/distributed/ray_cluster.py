"""A Ray cluster across the instances of a training job: what the estimator wires for the launcher.

SageMaker starts the same program on every instance; Ray needs one head and workers that join it.
The launcher (``distributed/launcher.py``, run as ``sagemaker_program``) starts them and then runs
the user's entry point on the head. This module decides *whether* a job uses it (a catalogued Ray 2
image always does; any other image when ``distribution=RayCluster(...)`` says so), checks the
settings at synth, and says what the bundle and the request carry: the launcher file at the
archive root, a ``requirements.txt`` that installs the image's Ray when the user's does not (a
user's ``ray`` line must pin that version: the catalogued image is a DLC without Ray), and the
environment the launcher reads, under the launcher's own variable names.
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
from .launcher import (
    ADDRESSES_ENV,
    ENTRY_POINT_ENV,
    HEAD_GROUP_ENV,
    PORT_ENV,
    TEMP_DIR_ENV,
    TIMEOUT_ENV,
)

DISTRIBUTED = "README.md#distributed-rl"
#: The launcher's name in the bundle: unlikely to be a user's, and refused when it is.
LAUNCHER_NAME = "cdk_sagemaker_rl_ray_launcher.py"
REQUIREMENTS = "requirements.txt"
#: What the launcher reads or sets, and why a user's ``environment`` may not hold it. The names are
#: the launcher's own, so that the two sides cannot drift apart.
RESERVED: Mapping[str, str] = {
    ENTRY_POINT_ENV: "the Ray launcher sets this variable to your entry_point",
    TIMEOUT_ENV: "the Ray launcher sets this variable from RayCluster(startup_timeout=...)",
    PORT_ENV: "the Ray launcher sets this variable from RayCluster(port=...)",
    HEAD_GROUP_ENV: "the Ray launcher sets this variable from RayCluster(head_instance_group=...)",
    ADDRESSES_ENV: "the Ray launcher reads this variable (local mode sets it: host addresses)",
    TEMP_DIR_ENV: "the Ray launcher reads this variable (local mode sets it: Ray's temp dir)",
    "RAY_ADDRESS": "the Ray launcher sets RAY_ADDRESS to the head it started for your script",
}


@dataclass(frozen=True, repr=False, eq=False)
class RayCluster:
    """How the instances of a job form one Ray cluster (``RLEstimator(distribution=...)``).

    ``head_instance_group``: the instance group whose first host is the head (default: the first
    host of the job, ``algo-1``); ``startup_timeout``: how long workers wait for the head and the
    head for the workers (10 s to 1 h); ``port``: the head's GCS port (1024-65535).
    """

    head_instance_group: str | None = None
    startup_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    port: int = 6379

    # A jsii Duration prints as an object address and compares by identity: the repr (error
    # messages quote it) and equality (two RayCluster() are the same setting) use its seconds.
    def __repr__(self) -> str:
        return (
            f"RayCluster(head_instance_group={self.head_instance_group!r}, "
            f"startup_timeout={_duration_text(self.startup_timeout)}, port={self.port!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RayCluster):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str | None, int, int]:
        return (self.head_instance_group, self._timeout_seconds, self.port)

    @property
    def _timeout_seconds(self) -> int:
        return int(self.startup_timeout.to_milliseconds()) // 1000

    def __post_init__(self) -> None:
        head = self.head_instance_group
        if head is not None and (not isinstance(head, str) or not head):
            raise invalid(
                "head_instance_group", head, "None or an instance group name", see=DISTRIBUTED
            )
        low, high = limit("ray_cluster", "startup_timeout_seconds").values()
        timeout = self.startup_timeout
        allowed = f"an aws_cdk.Duration of {low} s to {high} s"
        if not isinstance(timeout, Duration):
            raise invalid("startup_timeout", timeout, allowed, see=DISTRIBUTED)
        shown = _Shown(_duration_text(timeout))
        milliseconds = timeout.to_milliseconds()
        if Token.is_unresolved(milliseconds):
            raise invalid("startup_timeout", shown, allowed, see=DISTRIBUTED)
        if milliseconds % 1000:
            raise invalid("startup_timeout", shown, "a whole number of seconds", see=DISTRIBUTED)
        if not low <= milliseconds // 1000 <= high:
            raise invalid("startup_timeout", shown, allowed, see=DISTRIBUTED)
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
            ENTRY_POINT_ENV: entry_point,
            TIMEOUT_ENV: str(self._timeout_seconds),
            PORT_ENV: str(self.port),
        }
        if self.head_instance_group is not None:
            environment[HEAD_GROUP_ENV] = self.head_instance_group
        return environment


class _Shown(str):
    """Text quoted in an error message as it is, without the quotes of a string's repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _duration_text(duration: Duration) -> str:
    """A Duration as the code that makes it (``Duration.seconds(300)``)."""
    milliseconds = duration.to_milliseconds()
    if Token.is_unresolved(milliseconds):
        return "Duration(<unresolved token>)"
    if milliseconds % 1000:
        whole = int(milliseconds)
        return f"Duration.millis({whole if whole == milliseconds else milliseconds})"
    return f"Duration.seconds({int(milliseconds) // 1000})"


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
    network_isolation: bool = False,
) -> RayCluster | None:
    """The cluster a job starts, checked against its image, groups, environment and network
    isolation (None: the job runs the entry point itself)."""
    if distribution is not None and not isinstance(distribution, RayCluster):
        raise invalid("distribution", distribution, "None or a RayCluster(...)", see=DISTRIBUTED)
    version = ray_version(image)
    if version is not None and network_isolation:
        # The catalogued image is a DLC without Ray: the job pip-installs it from PyPI at start,
        # which an isolated container cannot reach. The job would fail minutes after the deploy.
        raise invalid(
            "enable_network_isolation",
            True,
            f"False with {image!r} (Ray {version}, which the job installs from PyPI at start, "
            "and an isolated container has no network). To isolate the job, use your own image "
            "that already contains Ray: image_uri=ContainerImage.from_uri(...) with "
            "distribution=RayCluster()",
            see=DISTRIBUTED,
        )
    if version is None:
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
    _check_environment(given)
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


def _check_environment(given: Mapping[str, str]) -> None:
    """Refuse what the launcher owns, and a token mode without the token: Ray refuses a node that
    does not present the head's token, and a token generated per node differs on every host."""
    for key, reason in RESERVED.items():
        if key in given:
            raise invalid(
                f"environment[{key!r}]", given[key], f"no value: {reason}", see=DISTRIBUTED
            )
    mode = given.get("RAY_AUTH_MODE")
    if (
        isinstance(mode, str)
        and not Token.is_unresolved(mode)
        and mode.strip().lower() == "token"
        and not given.get("RAY_AUTH_TOKEN")
    ):
        raise invalid(
            "environment['RAY_AUTH_MODE']",
            mode,
            "'token' together with environment['RAY_AUTH_TOKEN']: every node of the job and "
            "your script must present one shared token, and without RAY_AUTH_TOKEN the head "
            "generates one that only its own host has, so the workers cannot join (or leave "
            "RAY_AUTH_MODE unset: with several hosts the launcher disables Ray's token auth "
            "inside the job's private network)",
            see=DISTRIBUTED,
        )


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
_PIN = re.compile(r"^(===?)\s*([^\s,;]+)$")


def with_ray(existing: bytes | None, *, version: str, requirement: str) -> bytes:
    """The user's requirements, plus ``requirement`` when they name no ``ray``.

    The catalogued image is a DLC without Ray: whatever a ``ray`` line lets pip choose is the Ray
    the job gets, so a line naming ray must pin the image's version exactly (``==``, ``===``, or
    a ``major.minor.*`` wildcard of it); an unpinned ray, a range or a URL is refused."""
    text = _requirements_text(existing)
    named = False
    for line in text.splitlines():
        spec = re.split(r"(^|\s)#", line, maxsplit=1)[0].strip()
        match = _NAME.match(spec)
        if spec.startswith("-") or match is None:
            continue
        if re.sub(r"[-_.]+", "-", match.group(1)).lower() != "ray":
            continue
        if not _pins(match.group(3).split(";", 1)[0].strip(), version):
            major_minor = ".".join(version.split(".")[:2])
            raise invalid(
                "requirements.txt ray",
                line.strip(),
                f"ray=={version} (extras allowed, e.g. ray[rllib]=={version}; or ==={version}, "
                f"=={major_minor}.*): the image has no Ray, the job pip-installs it at start "
                f"and this catalogue entry is Ray {version}; a looser line installs whichever "
                "Ray pip picks",
                see=DISTRIBUTED,
            )
        named = True
    if named:
        return existing or b""
    separator = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{separator}{requirement}\n".encode()


def _requirements_text(existing: bytes | None) -> str:
    """The user's requirements as text; a byte-order mark is not part of the first line."""
    if existing is None:
        return ""
    try:
        return existing.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid(
            REQUIREMENTS,
            _Shown(f"<{len(existing)} bytes, not UTF-8 at byte {error.start}>"),
            "a UTF-8 text file (the library reads it to check its ray line and adds the "
            "image's Ray to it)",
            see=DISTRIBUTED,
        ) from None


def _pins(specifiers: str, version: str) -> bool:
    """Whether ``specifiers`` (``==2.60.0``) admit exactly ``version`` (PEP 440 zero padding)."""
    match = _PIN.match(specifiers)
    if match is None:
        return False
    operator, pinned = match.groups()
    if operator == "===":
        return pinned == version
    if pinned.endswith(".*"):
        # At least major.minor: ``==2.*`` would let pip move to another Ray minor release.
        prefix, release = _release(pinned[:-2]), _release(version)
        if prefix is None or release is None or len(prefix) < 2:
            return False
        return (release + (0,) * len(prefix))[: len(prefix)] == prefix
    pinned_release, release = _release(pinned), _release(version)
    if pinned_release is None or release is None:
        return pinned == version
    return _unpadded(pinned_release) == _unpadded(release)


def _release(text: str) -> tuple[int, ...] | None:
    parts = text.split(".")
    return tuple(int(part) for part in parts) if all(p.isdigit() for p in parts) else None


def _unpadded(release: tuple[int, ...]) -> tuple[int, ...]:
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1
    return release[:end]
