"""The Ray launcher's wiring: which jobs start through it, what the bundle and the request carry.

The launcher itself (``cdk_sagemaker_rl/distributed/launcher.py``) is tested on its own; here it
is bytes that must reach the archive root unchanged. The bundle is read back from the archive
the asset publishes, the request is resolved as the deploy's execution sends it and validated
with botocore.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk.assertions import Template
from constructs import Construct

from cdk_sagemaker_rl import (
    BoundImage,
    ContainerImage,
    InstanceGroup,
    RayCluster,
    RLEstimator,
    RLFramework,
    RLToolkit,
    ValidationError,
)
from cdk_sagemaker_rl.distributed import ray_cluster as ray
from cdk_sagemaker_rl.images import rl_image_specs
from tests.test_api_shapes import Integration, request_problems
from tests.test_instance_groups import train_call

ENV = cdk.Environment(account="111122223333", region="us-west-2")
USER_IMAGE = "111122223333.dkr.ecr.us-west-2.amazonaws.com/my-ray:2"
RAY = "2.60.0"
REQUIREMENT = f"ray[rllib]=={RAY}"
GROUPS = [
    InstanceGroup("learner", "ml.g5.xlarge", 1),
    InstanceGroup("rollouts", "ml.c5.2xlarge", 2),
]
CREATE_TRAINING_JOB = Integration("sagemaker", "CreateTrainingJob", "optimized")


class Ray2Image(ContainerImage):
    """A catalogued Ray 2 image as the images package describes one (ray_version set)."""

    @property
    def is_custom(self) -> bool:
        return False

    @property
    def toolkit(self) -> RLToolkit:
        return RLToolkit.RAY

    @property
    def toolkit_version(self) -> str:
        return RAY

    @property
    def ray_version(self) -> str:
        return RAY

    @property
    def ray_requirement(self) -> str:
        return REQUIREMENT

    def bind(
        self, scope: Construct, *, instance_type: str, instance_groups: Any = None
    ) -> BoundImage:
        return BoundImage(
            image_uri="763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.8-cpu-py312",
            repository_arns=(),
            is_custom=False,
            toolkit=RLToolkit.RAY,
            toolkit_version=RAY,
        )


@pytest.fixture(scope="module")
def launcher() -> bytes:
    """The launcher as the package ships it, read from its file."""
    shipped = Path(ray.__file__).with_name("launcher.py").read_bytes()
    assert ray.launcher_source() == shipped
    return shipped


def source_tree(root: Path, requirements: str | None) -> Path:
    (root / "agents").mkdir(parents=True)
    (root / "agents" / "train.py").write_text("print('train')\n")
    (root / "common.py").write_text("X = 1\n")
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return root


def make(source: Path, **overrides: Any) -> RLEstimator:
    stack = cdk.Stack(cdk.App(), "Ray", env=ENV)
    kwargs: dict[str, Any] = {
        "entry_point": "agents/train.py",
        "source_dir": str(source),
        "image_uri": USER_IMAGE,
        "instance_groups": GROUPS,
        "distribution": RayCluster(),
        "job_name": "ray-cluster",
    }
    kwargs.update(overrides)
    return RLEstimator(stack, "Estimator", **kwargs)


def bundle(estimator: RLEstimator) -> dict[str, bytes]:
    """Every file of the published archive (the asset's file), by member name."""
    with tarfile.open(estimator.source.bundle.path) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


@dataclass
class Synth:
    estimator: RLEstimator
    request: dict[str, Any]
    files: dict[str, bytes]
    source: Path


def synthesize(estimator: RLEstimator, source: Path) -> Synth:
    estimator.fit("s3://my-data/ray")
    stack = cdk.Stack.of(estimator)
    request = train_call(stack, Template.from_stack(stack).to_json())
    return Synth(estimator, request, bundle(estimator), source)


@pytest.fixture(scope="module")
def user_image(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A user's Ray image, two groups, the head on the learner: the launcher, no requirements."""
    source = source_tree(tmp_path_factory.mktemp("user"), "gymnasium==1.4.0\n")
    cluster = RayCluster(
        head_instance_group="learner", startup_timeout=Duration.minutes(2), port=6380
    )
    estimator = make(source, distribution=cluster, environment={"MY_SETTING": "1"})
    return synthesize(estimator, source)


@pytest.fixture(scope="module")
def ray2_image(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A catalogued Ray 2 image, one instance type: the launcher by default, Ray installed."""
    source = source_tree(tmp_path_factory.mktemp("ray2"), "gymnasium==1.4.0")
    estimator = make(
        source,
        image_uri=Ray2Image(),
        instance_groups=None,
        distribution=None,
        train_instance_type="ml.c5.2xlarge",
        train_instance_count=2,
    )
    return synthesize(estimator, source)


def test_the_job_starts_the_launcher_with_the_users_entry_point(user_image: Synth) -> None:
    hyperparameters = user_image.request["HyperParameters"]
    assert json.loads(hyperparameters["sagemaker_program"]) == "cdk_sagemaker_rl_ray_launcher.py"
    assert user_image.request["Environment"] == {
        "MY_SETTING": "1",
        "CDK_SAGEMAKER_RL_ENTRY_POINT": "agents/train.py",
        "CDK_SAGEMAKER_RL_RAY_STARTUP_TIMEOUT": "120",
        "CDK_SAGEMAKER_RL_RAY_PORT": "6380",
        "CDK_SAGEMAKER_RL_RAY_HEAD_GROUP": "learner",
    }
    # Serving and the gate still see the user's entry point.
    assert user_image.estimator.source.entry_point == "agents/train.py"


def test_the_requests_are_ones_sagemaker_accepts(user_image: Synth, ray2_image: Synth) -> None:
    assert request_problems(CREATE_TRAINING_JOB, user_image.request) == []
    assert request_problems(CREATE_TRAINING_JOB, ray2_image.request) == []


def test_the_launcher_sits_at_the_bundle_root(user_image: Synth, launcher: bytes) -> None:
    files = user_image.files
    assert files["cdk_sagemaker_rl_ray_launcher.py"] == launcher
    # The user's own files are packed as they are on disk, nothing else is added for a user image.
    assert set(files) == {
        "cdk_sagemaker_rl_ray_launcher.py",
        "agents/train.py",
        "common.py",
        "requirements.txt",
    }
    for name in ("agents/train.py", "common.py", "requirements.txt"):
        assert files[name] == (user_image.source / name).read_bytes()


def test_a_ray2_image_uses_the_launcher_by_default(ray2_image: Synth) -> None:
    environment = ray2_image.request["Environment"]
    assert environment == {
        "CDK_SAGEMAKER_RL_ENTRY_POINT": "agents/train.py",
        "CDK_SAGEMAKER_RL_RAY_STARTUP_TIMEOUT": "300",
        "CDK_SAGEMAKER_RL_RAY_PORT": "6379",
    }
    assert ray2_image.request["ResourceConfig"]["InstanceCount"] == 2


def test_a_ray2_image_gets_ray_into_the_requirements(ray2_image: Synth) -> None:
    bundled = ray2_image.files["requirements.txt"].decode()
    assert bundled == f"gymnasium==1.4.0\n{REQUIREMENT}\n"
    # The user's file on disk is untouched.
    assert (ray2_image.source / "requirements.txt").read_text() == "gymnasium==1.4.0"


def test_without_requirements_the_bundle_gets_one(tmp_path: Path) -> None:
    entry = tmp_path / "train.py"
    entry.write_text("print('train')\n")
    estimator = make(
        tmp_path,
        entry_point=str(entry),
        source_dir=None,
        image_uri=Ray2Image(),
        instance_groups=None,
        distribution=None,
        train_instance_type="ml.c5.xlarge",
    )
    files = bundle(estimator)
    assert set(files) == {"train.py", "cdk_sagemaker_rl_ray_launcher.py", "requirements.txt"}
    assert files["requirements.txt"] == f"{REQUIREMENT}\n".encode()


@pytest.mark.parametrize(
    "requirements",
    [
        f"ray=={RAY}\n",
        f"ray[rllib]=={RAY}\n",
        f"Ray[rllib,tune] == {RAY} ; python_version >= '3.9'  # the image's\n",
        f"ray==={RAY}\n",
        "ray[rllib]==2.60.*\n",
        "ray==2.60\n",
        f"\ufeffnumpy\nray=={RAY}\n",
    ],
)
def test_requirements_pinning_the_images_ray_are_kept_as_written(requirements: str) -> None:
    assert ray.with_ray(requirements.encode(), version=RAY, requirement=REQUIREMENT) == (
        requirements.encode()
    )


@pytest.mark.parametrize(
    "line",
    [
        "ray",
        "ray[rllib]",
        "ray>=2",
        "ray~=2.9",
        "ray==2.*",
        "ray==2.6.*",
        "ray==2.60.1",
        f"ray=={RAY},<3",
        "ray @ https://example.com/ray-2.60.0-py3-none-any.whl",
    ],
)
def test_requirements_naming_ray_must_pin_the_images_version(line: str) -> None:
    """The DLC has no Ray: pip would install whatever Ray such a line lets it choose."""
    with pytest.raises(ValidationError) as error:
        ray.with_ray(f"numpy\n{line}\n".encode(), version=RAY, requirement=REQUIREMENT)
    message = str(error.value)
    assert message.startswith(f"requirements.txt ray={line!r} is not valid")
    assert f"ray=={RAY}" in message and "2.60.*" in message


def test_requirements_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationError, match=r"^requirements.txt=<\d+ bytes, not UTF-8 at byte 6>"
    ):
        ray.with_ray("numpy\n\xe9".encode("latin-1"), version=RAY, requirement=REQUIREMENT)
    source = source_tree(tmp_path, None)
    (source / "requirements.txt").write_bytes("gymnasium  # r\xe9sum\xe9\n".encode("latin-1"))
    with pytest.raises(ValidationError, match=r"^requirements.txt=.*not UTF-8.*UTF-8 text"):
        make(source, image_uri=Ray2Image(), distribution=None)


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        (None, f"{REQUIREMENT}\n"),
        ("", f"{REQUIREMENT}\n"),
        (
            "raylib==1\n# ray==1.0\n-r other.txt\n",
            f"raylib==1\n# ray==1.0\n-r other.txt\n{REQUIREMENT}\n",
        ),
    ],
)
def test_requirements_without_ray_get_the_images(requirements: str | None, expected: str) -> None:
    existing = None if requirements is None else requirements.encode()
    assert ray.with_ray(existing, version=RAY, requirement=REQUIREMENT) == expected.encode()


def test_ray_pinned_to_another_version_is_refused(tmp_path: Path) -> None:
    source = source_tree(tmp_path, "numpy\nray[rllib]==2.9.3\n")
    with pytest.raises(ValidationError, match=rf"'ray\[rllib\]==2.9.3'.*Ray {RAY}"):
        make(source, image_uri=Ray2Image(), distribution=None)


def test_legacy_images_without_distribution_run_the_entry_point(tmp_path: Path) -> None:
    source = source_tree(tmp_path, None)
    estimator = make(
        source,
        image_uri=None,
        toolkit=RLToolkit.RAY,
        toolkit_version="1.6.0",
        framework=RLFramework.TENSORFLOW,
        instance_groups=None,
        distribution=None,
        train_instance_type="ml.c5.xlarge",
    )
    request = cdk.Stack.of(estimator).resolve(estimator.training_request())
    assert json.loads(request["HyperParameters"]["sagemaker_program"]) == "agents/train.py"
    assert "Environment" not in request
    assert "cdk_sagemaker_rl_ray_launcher.py" not in estimator.source.members


@pytest.fixture(scope="module")
def catalogued_ray2() -> ContainerImage:
    """The catalogue's own Ray 2 image, once the images package lists one."""
    for spec in rl_image_specs():
        image = ContainerImage.rl(spec.toolkit, spec.toolkit_version, spec.framework)
        if getattr(image, "ray_version", None) is not None:
            return image
    raise AssertionError("the image catalogue has no maintained Ray 2 image (ray_version)")


def test_a_catalogued_ray2_image_trains_through_the_launcher_and_serves(
    tmp_path: Path, catalogued_ray2: ContainerImage
) -> None:
    source = source_tree(tmp_path, None)
    estimator = make(
        source,
        image_uri=catalogued_ray2,
        distribution=None,
        instance_groups=None,
        train_instance_type="ml.c5.2xlarge",
    )
    estimator.fit()
    estimator.deploy(instance_type="ml.c5.large", entry_point="inference.py")
    request = cdk.Stack.of(estimator).resolve(estimator.training_request())
    assert json.loads(request["HyperParameters"]["sagemaker_program"]) == ray.LAUNCHER_NAME
    requirement = getattr(catalogued_ray2, "ray_requirement", None)
    assert bundle(estimator)["requirements.txt"] == f"{requirement}\n".encode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"distribution": RayCluster(head_instance_group="nowhere")},
            r"^head_instance_group='nowhere'.*learner, rollouts",
        ),
        (
            {
                "distribution": RayCluster(head_instance_group="learner"),
                "instance_groups": None,
                "train_instance_type": "ml.c5.xlarge",
            },
            r"^head_instance_group='learner'.*the job has no instance_groups",
        ),
        ({"distribution": "ray"}, r"^distribution='ray'.*RayCluster"),
        ({"distribution": {"port": 6379}}, r"^distribution=\{'port': 6379\}.*RayCluster"),
        (
            {
                "image_uri": None,
                "toolkit": RLToolkit.RAY,
                "toolkit_version": "1.6.0",
                "framework": RLFramework.TENSORFLOW,
            },
            r"^distribution=RayCluster.*ray 1.6.0 \(Ray <= 1.6, Coach and VW",
        ),
        (
            {
                "image_uri": None,
                "toolkit": RLToolkit.COACH,
                "toolkit_version": "1.0.0",
                "framework": RLFramework.TENSORFLOW,
            },
            r"^distribution=RayCluster.*coach 1.0.0",
        ),
        (
            {"environment": {"CDK_SAGEMAKER_RL_RAY_PORT": "1"}},
            r"^environment\['CDK_SAGEMAKER_RL_RAY_PORT'\]='1'.*the Ray launcher sets",
        ),
        (
            {"environment": {f"V{i}": "x" for i in range(98)}},
            r"^environment='<98 variables>'.*at most 97 variables with the Ray launcher",
        ),
    ],
)
def test_bad_wiring_is_refused_at_synth(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    source = source_tree(tmp_path, None)
    with pytest.raises(ValidationError, match=message):
        make(source, **overrides)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"startup_timeout": Duration.seconds(5)}, r"^startup_timeout=.*10 s to 3600 s"),
        ({"startup_timeout": Duration.hours(2)}, r"^startup_timeout=.*10 s to 3600 s"),
        ({"startup_timeout": 60}, r"^startup_timeout=60 .*Duration"),
        ({"startup_timeout": Duration.millis(10500)}, r"whole number of seconds"),
        ({"port": 80}, r"^port=80 .*1024 to 65535"),
        ({"port": 70000}, r"^port=70000 .*1024 to 65535"),
        ({"port": True}, r"^port=True "),
        ({"head_instance_group": ""}, r"^head_instance_group=''"),
    ],
)
def test_bad_cluster_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RayCluster(**kwargs)


def test_a_user_file_named_like_the_launcher_is_refused(tmp_path: Path) -> None:
    source = source_tree(tmp_path, None)
    (source / "cdk_sagemaker_rl_ray_launcher.py").write_text("# mine\n")
    with pytest.raises(
        ValidationError, match=r"^source_dir='.*cdk_sagemaker_rl_ray_launcher.py'.*the Ray launcher"
    ):
        make(source)


def test_the_reserved_environment_is_the_launchers() -> None:
    """One source for the names: what the estimator refuses is what the launcher reads."""
    from cdk_sagemaker_rl.distributed import launcher

    names = {getattr(launcher, name) for name in dir(launcher) if name.endswith("_ENV")}
    assert set(ray.RESERVED) == names | {"RAY_ADDRESS"}
    assert set(RayCluster(head_instance_group="learner").environment("x")) <= set(ray.RESERVED)


@pytest.mark.parametrize("key", sorted(ray.RESERVED))
def test_the_launchers_variables_are_refused_in_the_environment(tmp_path: Path, key: str) -> None:
    source = source_tree(tmp_path, None)
    with pytest.raises(ValidationError, match=rf"^environment\['{key}'\]='x' .*no value: the Ray"):
        make(source, environment={key: "x"})


@pytest.mark.parametrize("mode", ["token", "TOKEN"])
def test_token_auth_without_the_token_is_refused(tmp_path: Path, mode: str) -> None:
    source = source_tree(tmp_path, None)
    with pytest.raises(
        ValidationError,
        match=rf"^environment\['RAY_AUTH_MODE'\]='{mode}' .*RAY_AUTH_TOKEN.*one shared token",
    ):
        make(source, environment={"RAY_AUTH_MODE": mode})
    # With the token, or with auth disabled, the job synthesizes.
    make(source, environment={"RAY_AUTH_MODE": mode, "RAY_AUTH_TOKEN": "s3cr3t"})
    make(source, environment={"RAY_AUTH_MODE": "disabled"})


def test_a_catalogued_ray2_image_cannot_be_network_isolated(
    tmp_path: Path, catalogued_ray2: ContainerImage
) -> None:
    """Ray is pip-installed at job start; an isolated container cannot reach PyPI."""
    source = source_tree(tmp_path, None)
    single = {"instance_groups": None, "train_instance_type": "ml.c5.xlarge"}
    for image in (catalogued_ray2, Ray2Image()):
        with pytest.raises(ValidationError) as error:
            make(
                source, image_uri=image, distribution=None, enable_network_isolation=True, **single
            )
        message = str(error.value)
        assert message.startswith("enable_network_isolation=True is not valid")
        assert repr(image) in message and f"Ray {RAY}" in message
        assert "ContainerImage.from_uri" in message and "distribution=RayCluster()" in message
    # The suggested way: an image that already contains Ray.
    isolated = make(source, enable_network_isolation=True)
    assert isolated.config.enable_network_isolation


def test_ray_cluster_reads_and_compares_by_its_settings() -> None:
    assert repr(RayCluster()) == (
        "RayCluster(head_instance_group=None, startup_timeout=Duration.seconds(300), port=6379)"
    )
    assert repr(RayCluster("learner", Duration.minutes(2), 6380)) == (
        "RayCluster(head_instance_group='learner', startup_timeout=Duration.seconds(120), "
        "port=6380)"
    )
    assert RayCluster() == RayCluster()
    assert RayCluster(startup_timeout=Duration.minutes(5)) == RayCluster(
        startup_timeout=Duration.seconds(300)
    )
    assert hash(RayCluster()) == hash(RayCluster(startup_timeout=Duration.seconds(300)))
    assert RayCluster() != RayCluster(startup_timeout=Duration.seconds(301))
    assert RayCluster() != RayCluster(port=6380)
    assert RayCluster() != "RayCluster()"
    with pytest.raises(ValidationError, match=r"^startup_timeout=Duration.seconds\(5\) "):
        RayCluster(startup_timeout=Duration.seconds(5))
    with pytest.raises(ValidationError, match=r"^startup_timeout=Duration.millis\(10500\) "):
        RayCluster(startup_timeout=Duration.millis(10500))
