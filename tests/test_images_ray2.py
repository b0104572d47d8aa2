"""Ray 2 on a maintained image, the unmaintained-image warning, and images for instance groups.

Everything that needs a stack is bound into one app in the ``synth`` fixture and synthesized
once; the other tests only resolve images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from cdk_sagemaker_rl.errors import ValidationError
from cdk_sagemaker_rl.images import (
    BoundImage,
    ContainerImage,
    Processor,
    RLFramework,
    RLToolkit,
    RLToolkitImage,
    rl_image_specs,
)
from cdk_sagemaker_rl.training.attach import image_choice

WARNING_ID = "cdk-sagemaker-rl:unmaintained-image"
DLC = "763104351884.dkr.ecr.us-west-2.amazonaws.com"
MIXED = {"learner": "ml.g5.xlarge", "rollout": "ml.c5.4xlarge"}


def ray2() -> RLToolkitImage:
    return ContainerImage.rl("ray", "2.60.0", "pytorch")


def _error(func: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        func(*args, **kwargs)
    message = str(caught.value)
    assert "See " in message
    return message


# --------------------------------------------------------------------------------------------
# One app, synthesized once
# --------------------------------------------------------------------------------------------


@dataclass
class Synth:
    app: cdk.App
    regional: cdk.Stack
    agnostic: cdk.Stack
    bound: dict[str, BoundImage] = field(default_factory=dict)
    scopes: dict[str, Construct] = field(default_factory=dict)

    def bind(
        self,
        name: str,
        image: ContainerImage,
        instance_type: str = "ml.c5.xlarge",
        groups: Mapping[str, str] | None = None,
        *,
        stack: cdk.Stack | None = None,
        times: int = 1,
    ) -> None:
        scope = Construct(stack or self.regional, name)
        for _ in range(times):
            self.bound[name] = image.bind(
                scope, instance_type=instance_type, instance_groups=groups
            )
        self.scopes[name] = scope

    def warnings(self, name: str) -> list[str]:
        path = "/" + self.scopes[name].node.path
        found = assertions.Annotations.from_stack(cdk.Stack.of(self.scopes[name])).find_warning(
            path, assertions.Match.any_value()
        )
        return [str(w.entry.data) for w in found]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("ray2") / "cdk.out"))
    s = Synth(
        app=app,
        regional=cdk.Stack(app, "Regional", env=cdk.Environment(region="us-west-2")),
        agnostic=cdk.Stack(app, "Agnostic"),
    )
    s.bind("Ray2Cpu", ray2())
    s.bind("Ray2Gpu", ray2(), "ml.g5.xlarge")
    s.bind("Ray2Mixed", ray2(), groups=MIXED)
    s.bind("Ray2CpuGroups", ray2(), groups={"a": "ml.c5.xlarge", "b": "ml.m5.large"})
    s.bind("Ray2Agnostic", ray2(), stack=s.agnostic)
    s.bind("Ray2Serving", ray2().serving_image(), "ml.m5.large")
    s.bind("LegacyRay", ContainerImage.rl("ray", "1.6.0", "tensorflow"), times=2)
    s.bind("LegacyCoach", ContainerImage.rl("coach", "0.11.1", "tensorflow"), "ml.p3.2xlarge")
    s.bind(
        "LegacyGpuGroups",
        ContainerImage.rl("ray", "1.6.0", "pytorch"),
        groups={"g": "ml.p3.2xlarge"},
    )
    s.bind("Vw", ContainerImage.rl("vw"))
    s.bind("Dlc", ContainerImage.pytorch_training("2.8.0"), groups=MIXED)
    s.bind(
        "Custom", ContainerImage.from_uri(f"{DLC}/mine:1", processors=("cpu", "gpu")), groups=MIXED
    )
    s.bind("CustomCpu", ContainerImage.from_uri("ubuntu:22.04", processors=["CPU"]))
    s.bind("Undeclared", ContainerImage.from_uri("ubuntu:22.04"), groups=MIXED)
    repository = ecr.Repository(s.regional, "Repo")
    s.bind("Ecr", ContainerImage.from_ecr_repository(repository, "v1", ("gpu",)), "ml.p3.2xlarge")
    app.synth()
    return s


# --------------------------------------------------------------------------------------------
# The Ray 2 entry: data, resolution, URIs, serving
# --------------------------------------------------------------------------------------------


def test_ray2_entry_is_a_pytorch_dlc_plus_a_ray_requirement() -> None:
    (spec,) = [s for s in rl_image_specs() if s.maintained]
    assert (spec.toolkit, spec.toolkit_version) == (RLToolkit.RAY, "2.60.0")
    assert (spec.framework, spec.framework_version) == (RLFramework.PYTORCH, "2.8.0")
    assert (spec.base_family, spec.repository, spec.tag_prefix, spec.py_version) == (
        "pytorch-training",
        "pytorch-training",
        "2.8.0",
        "py312",
    )
    assert spec.registry == "dlc" and spec.requirement == "ray[rllib]==2.60.0"
    assert spec.processors == (Processor.CPU, Processor.GPU)
    assert (spec.serving_family, spec.serving_version) == ("pytorch-inference", "2.6.0")
    assert all(
        not s.maintained and s.requirement is None for s in rl_image_specs() if s is not spec
    )


def test_ray_version_and_requirement_are_exposed_only_for_the_ray2_entry() -> None:
    image = ray2()
    assert (image.ray_version, image.ray_requirement) == ("2.60.0", "ray[rllib]==2.60.0")
    assert not image.is_custom
    for other in (
        ContainerImage.rl("ray", "1.6.0", "pytorch"),
        ContainerImage.rl("vw"),
        ContainerImage.pytorch_training("2.8.0"),
        ContainerImage.from_uri("ubuntu:22.04"),
    ):
        assert (other.ray_version, other.ray_requirement) == (None, None), other


def test_estimator_arguments_resolve_to_the_ray2_entry() -> None:
    scope = cdk.Stack(cdk.App(), "Choice")
    chosen = image_choice(
        scope, None, RLToolkit.RAY, "2.60.0", RLFramework.PYTORCH, None, required=True
    )
    assert chosen is not None and chosen.ray_version == "2.60.0"
    # The estimator's framework_version route (no toolkit_version) lands there too.
    chosen = image_choice(scope, None, "ray", None, "pytorch", "2.8", required=True)
    assert chosen is not None and chosen.toolkit_version == "2.60.0"


@pytest.mark.parametrize(
    ("args", "toolkit_version"),
    [
        (("ray", None, "pytorch"), "2.60.0"),
        (("ray", None, "pytorch", "2.8.0"), "2.60.0"),
        (("ray", "2.60.0", "pytorch", "2.8"), "2.60.0"),
        (("ray", None, "pytorch", "1.8.1"), "1.6.0"),
        (("ray", None, "tensorflow"), "1.6.0"),
    ],
)
def test_default_ray_choice(args: tuple[Any, ...], toolkit_version: str) -> None:
    assert ContainerImage.rl(*args).toolkit_version == toolkit_version


def test_a_ray2_version_outside_the_catalogue_is_refused_naming_the_catalogued_ones() -> None:
    message = _error(ContainerImage.rl, "ray", "2.99.0", "pytorch")
    assert message.startswith("toolkit_version='2.99.0' is not valid.")
    assert "maintained (a Deep Learning Container plus a pip requirement such as " in message
    assert "ray[rllib]==2.60.0): 2.60.0;" in message
    assert (
        "unmaintained SageMaker RL images: 0.5, 0.5.3, 0.6, 0.6.5, 0.8.2, 0.8.5, 1.6.0" in message
    )
    assert "ContainerImage.pytorch_training(...)" in message


def test_ray2_with_another_framework_or_torch_version_is_refused() -> None:
    message = _error(ContainerImage.rl, "ray", "2.60.0", "tensorflow")
    assert message.startswith(
        "Provided `ray-2.60.0` and `tensorflow` combination is not supported."
    )
    assert "ray 2.60.0 with pytorch 2.8.0" in message
    message = _error(ContainerImage.rl, "ray", "2.60.0", "pytorch", "2.6")
    assert "2.8.0 (the pytorch version in the ray 2.60.0 image)" in message


def test_ray2_binds_to_the_pytorch_training_dlc(synth: Synth) -> None:
    cpu, gpu = synth.bound["Ray2Cpu"], synth.bound["Ray2Gpu"]
    assert cpu.image_uri == f"{DLC}/pytorch-training:2.8.0-cpu-py312"
    assert gpu.image_uri == f"{DLC}/pytorch-training:2.8.0-gpu-py312"
    same = ContainerImage.pytorch_training("2.8.0", "py312").bind(
        cdk.Stack(cdk.App(), "Plain", env=cdk.Environment(region="us-west-2")),
        instance_type="ml.c5.xlarge",
    )
    assert cpu.image_uri == same.image_uri
    assert (cpu.toolkit, cpu.toolkit_version, cpu.framework_version) == (
        RLToolkit.RAY,
        "2.60.0",
        "2.8.0",
    )
    assert (cpu.ray_version, cpu.ray_requirement) == ("2.60.0", "ray[rllib]==2.60.0")
    assert not cpu.is_custom and cpu.processor is Processor.CPU


def test_ray2_in_an_agnostic_stack_uses_the_dlc_registry_mapping(synth: Synth) -> None:
    template = assertions.Template.from_stack(synth.agnostic).to_json()
    assert "ImageRegistryDlcAccounts" in template["Mappings"]
    uri = synth.agnostic.resolve(synth.bound["Ray2Agnostic"].image_uri)
    assert uri["Fn::Join"][1][-1] == "/pytorch-training:2.8.0-cpu-py312"


def test_ray2_is_served_by_the_last_pytorch_inference_dlc(synth: Synth) -> None:
    serving = ray2().serving_image()
    assert (serving.framework, serving.framework_version) == (RLFramework.PYTORCH, "2.6.0")
    assert synth.bound["Ray2Serving"].image_uri == f"{DLC}/pytorch-inference:2.6.0-cpu-py312"


# --------------------------------------------------------------------------------------------
# The unmaintained-image warning
# --------------------------------------------------------------------------------------------


def test_legacy_images_warn_once_per_scope_and_point_to_ray2(synth: Synth) -> None:
    (message,) = synth.warnings("LegacyRay")  # bound twice, reported once
    assert WARNING_ID in message
    assert "sagemaker-rl-ray-container:ray-1.6.0-tf-cpu-py37 is a SageMaker RL image" in message
    assert "unmaintained" in message and "dropped RLEstimator" in message
    assert 'toolkit="ray", toolkit_version="2.60.0", framework="pytorch"' in message
    assert "ray[rllib]==2.60.0" in message and "README.md#container-images" in message
    (coach,) = synth.warnings("LegacyCoach")
    assert "sagemaker-rl-tensorflow:coach0.11.1-gpu-py3 is a SageMaker RL image" in coach
    assert "reported unpullable" not in coach
    assert synth.warnings("LegacyGpuGroups")


def test_vw_warning_says_what_is_known_about_pulling_it(synth: Synth) -> None:
    (message,) = synth.warnings("Vw")
    assert "sagemaker-rl-vw-container:vw-8.7.0-cpu is a SageMaker RL image" in message
    assert "reported unpullable" in message
    assert "aws/amazon-sagemaker-examples#4780" in message
    assert "not verified here" in message and "ContainerImage.from_asset" in message


@pytest.mark.parametrize("name", ["Ray2Cpu", "Ray2Mixed", "Ray2Serving", "Dlc", "Custom", "Ecr"])
def test_maintained_and_custom_images_do_not_warn(synth: Synth, name: str) -> None:
    assert synth.warnings(name) == []


# --------------------------------------------------------------------------------------------
# Instance groups
# --------------------------------------------------------------------------------------------


def test_dlc_images_run_their_gpu_variant_on_mixed_groups(synth: Synth) -> None:
    assert synth.bound["Ray2Mixed"].image_uri == f"{DLC}/pytorch-training:2.8.0-gpu-py312"
    assert synth.bound["Ray2Mixed"].processor is Processor.GPU
    assert synth.bound["Dlc"].image_uri == f"{DLC}/pytorch-training:2.8.0-gpu-py312"
    assert synth.bound["Ray2CpuGroups"].image_uri == f"{DLC}/pytorch-training:2.8.0-cpu-py312"
    assert synth.bound["LegacyGpuGroups"].image_uri.endswith(":ray-1.6.0-torch-gpu-py36")


def test_legacy_images_are_not_put_on_cpu_groups_next_to_gpu_groups() -> None:
    stack = cdk.Stack(cdk.App(), "Legacy", env=cdk.Environment(region="us-west-2"))
    image = ContainerImage.rl("ray", "1.6.0", "tensorflow")
    groups = {"learner": "ml.p3.2xlarge", "rollout": "ml.c5.4xlarge", "eval": "ml.g4dn.xlarge"}
    message = _error(image.bind, stack, instance_type="ml.p3.2xlarge", instance_groups=groups)
    assert message.startswith(
        "instance_groups['rollout']='ml.c5.4xlarge' is not valid. "
        "Allowed: a GPU instance type like group(s) eval, learner"
    )
    assert "toolkit ray 2.60.0 with pytorch" in message


def test_a_cpu_only_image_on_a_gpu_group_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "CpuOnly", env=cdk.Environment(region="us-west-2"))
    groups = {"rollout": "ml.c5.xlarge", "learner": "ml.g5.xlarge"}
    message = _error(
        ContainerImage.rl("vw").bind, stack, instance_type="ml.c5.xlarge", instance_groups=groups
    )
    assert message.startswith(
        "instance_groups['learner']='ml.g5.xlarge' is not valid. Allowed: a CPU instance type"
    )
    assert "published for cpu only" in message
    custom = ContainerImage.from_uri("ubuntu:22.04", processors=("cpu",))
    message = _error(custom.bind, stack, instance_type="ml.c5.xlarge", instance_groups=groups)
    assert message.startswith(
        "instance_groups['learner']='ml.g5.xlarge' is not valid. Allowed: a CPU instance type: "
        "ContainerImage.from_uri('ubuntu:22.04') is declared with processors=('cpu',)"
    )


def test_a_gpu_only_image_on_a_cpu_group_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "GpuOnly", env=cdk.Environment(region="us-west-2"))
    groups = {"learner": "ml.p4d.24xlarge", "rollout": "ml.m5.2xlarge"}
    custom = ContainerImage.from_uri(f"{DLC}/mine:gpu", processors=("gpu",))
    message = _error(custom.bind, stack, instance_type="ml.p4d.24xlarge", instance_groups=groups)
    assert message.startswith(
        "instance_groups['rollout']='ml.m5.2xlarge' is not valid. Allowed: a GPU instance type"
    )
    assert "processors=('cpu', 'gpu') if the image runs on both" in message
    repository = ecr.Repository(stack, "Repo")
    image = ContainerImage.from_ecr_repository(repository, processors=["gpu"])
    message = _error(image.bind, stack, instance_type="ml.m5.2xlarge", instance_groups=groups)
    assert "the image latest of ECR repository GpuOnly/Repo is declared" in message


def test_a_declared_custom_image_is_checked_on_a_single_instance_too() -> None:
    stack = cdk.Stack(cdk.App(), "Single")
    image = ContainerImage.from_uri("ubuntu:22.04", processors=("cpu",))
    message = _error(image.bind, stack, instance_type="ml.p3.2xlarge")
    assert message.startswith("instance_type='ml.p3.2xlarge' is not valid. Allowed: a CPU instance")
    token = cdk.CfnParameter(stack, "Type").value_as_string  # known at deploy time only
    assert image.bind(stack, instance_type=token).processor is None


def test_custom_images_report_what_they_were_declared_for(synth: Synth) -> None:
    assert synth.bound["Custom"].processor is Processor.GPU
    assert synth.bound["CustomCpu"].processor is Processor.CPU
    assert synth.bound["Undeclared"].processor is None  # nothing declared, nothing checked
    assert synth.bound["Ecr"].processor is Processor.GPU
    assert synth.bound["Custom"].repository_arns  # ECR URI still scopes the pull grant


@pytest.mark.parametrize(
    ("instance_type", "fragment"),
    [
        ("ml.trn1.2xlarge", "no AWS Neuron"),
        ("ml.c7g.xlarge", "is built for x86 only"),
        ("p3.2xlarge", "ml.<family>.<size>"),
    ],
)
def test_every_group_is_checked_and_named(instance_type: str, fragment: str) -> None:
    stack = cdk.Stack(cdk.App(), "Each", env=cdk.Environment(region="us-west-2"))
    groups = {"learner": "ml.g5.xlarge", "odd": instance_type}
    message = _error(ray2().bind, stack, instance_type="ml.g5.xlarge", instance_groups=groups)
    assert message.startswith(f"instance_groups['odd']={instance_type!r} is not valid.")
    assert fragment in message


@pytest.mark.parametrize("groups", [{}, ["ml.c5.xlarge"], {"": "ml.c5.xlarge"}, {"a": 3}])
def test_malformed_instance_groups(groups: Any) -> None:
    stack = cdk.Stack(cdk.App(), "Bad", env=cdk.Environment(region="us-west-2"))
    message = _error(ray2().bind, stack, instance_type="ml.c5.xlarge", instance_groups=groups)
    assert message.startswith("instance_groups=")
    assert "a non-empty mapping of instance group name to instance type" in message


@pytest.mark.parametrize(
    ("processors", "fragment"),
    [
        ("cpu", "processors='cpu' is not valid. Allowed: None"),
        ((), "processors=() is not valid."),
        (("tpu",), "processors='tpu' is not valid. Allowed: one of: cpu, gpu."),
    ],
)
def test_processors_declaration_errors(processors: Any, fragment: str) -> None:
    assert fragment in _error(ContainerImage.from_uri, "ubuntu:22.04", processors=processors)


def test_asset_images_need_one_architecture_across_groups(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    stack = cdk.Stack(cdk.App(), "Asset")
    image = ContainerImage.from_asset(tmp_path)
    groups = {"arm": "ml.c7g.xlarge", "x86": "ml.c5.xlarge"}
    message = _error(image.bind, stack, instance_type="ml.c7g.xlarge", instance_groups=groups)
    assert message.startswith("instance_groups['x86']='ml.c5.xlarge' is not valid.")
    bound = image.bind(stack, instance_type="ml.c5.xlarge", instance_groups={"a": "ml.g5.xlarge"})
    assert bound.is_custom and re.search(r"ImageAsset", stack.node.children[-1].node.id)


def test_the_readme_example_runs_as_written() -> None:
    section = (
        (Path(__file__).parents[1] / "README.md").read_text().split("## Container images\n")[1]
    )
    (block,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    stack = cdk.Stack(cdk.App(), "Readme", env=cdk.Environment(region="us-west-2"))
    namespace: dict[str, Any] = {"stack": stack}
    exec(block, namespace)  # the README's own example
    assert namespace["bound"].image_uri == f"{DLC}/pytorch-training:2.8.0-gpu-py312"
