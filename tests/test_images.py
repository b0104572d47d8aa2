"""Image selection: SDK parity of URIs, region handling in templates, custom images, every error.

The SDK is never imported here: tests/parity/sdk_image_uris.json holds what it selected, recorded
by tests/parity/record_image_uris.py in a separate virtualenv.
"""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam

from cdk_sagemaker_rl.errors import ValidationError
from cdk_sagemaker_rl.images import (
    BoundImage,
    ContainerImage,
    EcrImageReference,
    Processor,
    RLFramework,
    RLToolkit,
    RLToolkitImage,
    dns_suffix_for_region,
    parse_ecr_uri,
    rl_image_specs,
)

PARITY = json.loads((Path(__file__).parent / "parity" / "sdk_image_uris.json").read_text())
CASES: list[dict[str, Any]] = PARITY["cases"]

# The AWS fact behind AWS::URLSuffix, stated independently of the code under test.
URL_SUFFIX = {
    "cn-north-1": "amazonaws.com.cn",
    "cn-northwest-1": "amazonaws.com.cn",
    "us-iso-east-1": "c2s.ic.gov",
    "us-isob-east-1": "sc2s.sgov.gov",
}

DIGEST = "sha256:" + "ab" * 32


def _image_for(case: dict[str, Any]) -> ContainerImage:
    kind = case["kind"]
    if kind == "rl":
        return ContainerImage.rl(case["toolkit"], case["toolkit_version"], case["framework"])
    if kind == "rl-serving":
        return ContainerImage.rl(
            case["toolkit"], case["toolkit_version"], case["framework"]
        ).serving_image()
    if kind == "pytorch-training":
        return ContainerImage.pytorch_training(case["version"], case["py_version"])
    if kind == "pytorch-inference":
        return ContainerImage.pytorch_inference(case["version"], case["py_version"])
    if kind == "tensorflow-serving":
        return ContainerImage.tensorflow_serving(case["version"])
    raise AssertionError(f"unknown parity case kind {kind}")


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['region']}:{case['uri'].split('/', 1)[1]}"


# --------------------------------------------------------------------------------------------
# SDK parity with concrete regions (no synthesis needed: the URI is a plain string)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regional_stacks() -> dict[str, cdk.Stack]:
    app = cdk.App()
    regions = sorted({case["region"] for case in CASES})
    return {
        region: cdk.Stack(app, f"In-{region}", env=cdk.Environment(region=region))
        for region in regions
    }


def test_parity_recording_is_broad_enough() -> None:
    assert PARITY["sdk_version"] == "2.257.7"
    assert len(CASES) >= 25
    assert {c["toolkit"] for c in CASES if c["kind"] == "rl"} == {"coach", "ray", "vw"}
    regions = {c["region"] for c in CASES}
    assert {"cn-north-1", "us-gov-west-1", "us-iso-east-1", "eu-south-1", "af-south-1"} <= regions
    assert {c["kind"] for c in CASES} >= {"pytorch-training", "pytorch-inference", "rl-serving"}
    assert any("-gpu" in c["uri"] for c in CASES) and any("-cpu" in c["uri"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_bound_uri_equals_the_sdk(
    case: dict[str, Any], regional_stacks: dict[str, cdk.Stack]
) -> None:
    bound = _image_for(case).bind(
        regional_stacks[case["region"]], instance_type=case["instance_type"]
    )
    assert bound.image_uri == case["uri"]
    assert not bound.is_custom
    assert bound.processor is Processor.for_instance_type(case["instance_type"])
    # IAM is scoped to exactly the repository of the URI, in the registry account and region.
    account = case["uri"].split(".", 1)[0]
    repository = case["uri"].split("/", 1)[1].split(":")[0]
    stack = regional_stacks[case["region"]]
    (arn,) = bound.repository_arns
    assert stack.resolve(arn) == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":ecr:{case['region']}:{account}:repository/{repository}",
            ],
        ]
    }


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "rl-serving"], ids=_case_id)
def test_serving_image_is_the_framework_image_of_the_training_framework_version(
    case: dict[str, Any], regional_stacks: dict[str, cdk.Stack]
) -> None:
    """The SDK's create_model() passed the toolkit's framework version to the serving model."""
    factory = (
        ContainerImage.tensorflow_serving
        if case["framework"] == "tensorflow"
        else ContainerImage.mxnet_serving
    )
    bound = factory(case["framework_version"]).bind(
        regional_stacks[case["region"]], instance_type=case["instance_type"]
    )
    assert bound.image_uri == case["uri"]
    assert bound.framework is RLFramework(case["framework"])
    assert bound.framework_version == case["framework_version"]


def test_bound_image_carries_the_toolkit_choice(regional_stacks: dict[str, cdk.Stack]) -> None:
    bound = ContainerImage.rl(RLToolkit.RAY, "1.6.0", RLFramework.PYTORCH).bind(
        regional_stacks["us-west-2"], instance_type="ml.g4dn.xlarge"
    )
    assert bound == BoundImage(
        image_uri="462105765813.dkr.ecr.us-west-2.amazonaws.com/"
        "sagemaker-rl-ray-container:ray-1.6.0-torch-gpu-py36",
        repository_arns=bound.repository_arns,
        is_custom=False,
        toolkit=RLToolkit.RAY,
        toolkit_version="1.6.0",
        framework=RLFramework.PYTORCH,
        framework_version="1.8.1",
        processor=Processor.GPU,
    )


# --------------------------------------------------------------------------------------------
# The catalogue against the facts table (the SDK's TOOLKIT_FRAMEWORK_VERSION_MAP)
# --------------------------------------------------------------------------------------------

FACTS = {
    ("coach", "0.10.1"): {"tensorflow": "1.11"},
    ("coach", "0.10"): {"tensorflow": "1.11"},
    ("coach", "0.11.0"): {"tensorflow": "1.11", "mxnet": "1.3"},
    ("coach", "0.11.1"): {"tensorflow": "1.12"},
    ("coach", "0.11"): {"tensorflow": "1.12", "mxnet": "1.3"},
    ("coach", "1.0.0"): {"tensorflow": "1.12"},
    ("ray", "0.5.3"): {"tensorflow": "1.11"},
    ("ray", "0.5"): {"tensorflow": "1.11"},
    ("ray", "0.6.5"): {"tensorflow": "1.12"},
    ("ray", "0.6"): {"tensorflow": "1.12"},
    ("ray", "0.8.2"): {"tensorflow": "2.1"},
    ("ray", "0.8.5"): {"tensorflow": "2.1", "pytorch": "1.5"},
    ("ray", "1.6.0"): {"tensorflow": "2.5.0", "pytorch": "1.8.1"},
}


def test_catalogue_holds_exactly_the_sdk_toolkit_matrix_plus_vw() -> None:
    """The SageMaker RL images; the maintained entries are checked in test_images_ray2.py."""
    catalogue: dict[tuple[str, str], dict[str, str | None]] = {}
    for spec in rl_image_specs():
        if spec.maintained:
            continue
        key = (spec.toolkit.value, spec.toolkit_version)
        framework = spec.framework.value if spec.framework else "none"
        catalogue.setdefault(key, {})[framework] = spec.framework_version
    assert catalogue == {**FACTS, ("vw", "8.7.0"): {"none": None}}


def test_vw_is_cpu_only_and_the_others_have_both_processors() -> None:
    for spec in rl_image_specs():
        expected = (
            (Processor.CPU,) if spec.toolkit is RLToolkit.VW else (Processor.CPU, Processor.GPU)
        )
        assert spec.processors == expected, spec


@pytest.mark.parametrize(
    ("region", "suffix"),
    [
        ("us-east-1", "amazonaws.com"),
        ("us-gov-west-1", "amazonaws.com"),
        ("cn-north-1", "amazonaws.com.cn"),
        ("cn-northwest-1", "amazonaws.com.cn"),
        ("us-iso-east-1", "c2s.ic.gov"),
        ("us-isob-east-1", "sc2s.sgov.gov"),
    ],
)
def test_dns_suffix_rule(region: str, suffix: str) -> None:
    assert dns_suffix_for_region(region) == suffix


# --------------------------------------------------------------------------------------------
# Selection semantics of ContainerImage.rl
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "toolkit_version", "framework_version"),
    [
        (("coach", None, "tensorflow"), "1.0.0", "1.12"),
        (("coach", None, "mxnet"), "0.11.0", "1.3"),
        (("ray", None, "tensorflow"), "1.6.0", "2.5.0"),
        # the maintained Ray 2 entry carries the newest torch, so it wins the framework rule
        (("ray", None, "pytorch"), "2.60.0", "2.8.0"),
        (("ray", None, "pytorch", "1.8"), "1.6.0", "1.8.1"),
        (("vw",), "8.7.0", None),
        # major.minor matches the latest patch and, among those, the latest pinned toolkit
        (("ray", None, "tensorflow", "2.5"), "1.6.0", "2.5.0"),
        (("ray", None, "tensorflow", "2.1"), "0.8.5", "2.1"),
        (("ray", None, "pytorch", "1.5"), "0.8.5", "1.5"),
        (("coach", None, "tensorflow", "1.11"), "0.11.0", "1.11"),
        (("coach", None, "tensorflow", "1.12.0"), "1.0.0", "1.12"),
        # explicit versions, including floating tags, are taken as given
        (("coach", "0.11", "mxnet"), "0.11", "1.3"),
        (("coach", "0.11.1", "tensorflow", "1.12"), "0.11.1", "1.12"),
        (("ray", "1.6.0", "tensorflow", "2.5.0"), "1.6.0", "2.5.0"),
        (("RAY", "0.5", "TensorFlow"), "0.5", "1.11"),
    ],
)
def test_rl_resolution(
    args: tuple[Any, ...], toolkit_version: str, framework_version: str | None
) -> None:
    image = ContainerImage.rl(*args)
    assert isinstance(image, RLToolkitImage)
    assert image.toolkit is RLToolkit.parse(args[0], "toolkit")
    assert image.toolkit_version == toolkit_version
    assert image.framework_version == framework_version
    assert not image.is_custom


def test_sdk_enums_are_accepted_by_value() -> None:
    class SdkToolkit(enum.Enum):  # what sagemaker.rl.RLToolkit looks like
        COACH = "coach"

    assert RLToolkit.parse(SdkToolkit.COACH, "toolkit") is RLToolkit.COACH
    assert RLFramework.parse(" PyTorch ", "framework") is RLFramework.PYTORCH
    assert Processor.parse("GPU", "processor") is Processor.GPU
    assert f"{RLToolkit.VW}" == "vw"
    assert isinstance(RLToolkit.VW, str) and str.__eq__(RLToolkit.VW, "vw")


@pytest.mark.parametrize(
    ("instance_type", "processor"),
    [
        ("ml.p3.2xlarge", Processor.GPU),
        ("ml.g4dn.xlarge", Processor.GPU),
        ("ml.p4d.24xlarge", Processor.GPU),
        ("ml.c5.xlarge", Processor.CPU),
        ("ml.m5.large", Processor.CPU),
        ("ml.inf2.xlarge", Processor.CPU),
        ("local", Processor.CPU),
        ("local_gpu", Processor.GPU),
    ],
)
def test_processor_for_instance_type(instance_type: str, processor: Processor) -> None:
    assert Processor.for_instance_type(instance_type) is processor


def test_serving_images_follow_the_training_framework() -> None:
    coach_tf = ContainerImage.rl("coach", "0.11.1", "tensorflow").serving_image()
    assert (coach_tf.framework, coach_tf.framework_version) == (RLFramework.TENSORFLOW, "1.12")
    coach_mx = ContainerImage.rl("coach", "0.11.0", "mxnet").serving_image()
    assert (coach_mx.framework, coach_mx.framework_version) == (RLFramework.MXNET, "1.3")
    # Ray 1.6.0 trains with TF 2.5.0; TF Serving 2.5 (2.5.1) hosts its SavedModel.
    ray_tf = ContainerImage.rl("ray", "1.6.0", "tensorflow").serving_image()
    assert ray_tf.framework_version == "2.5"
    dlc = ContainerImage.pytorch_training("2.5.1").serving_image()
    assert (dlc.framework, dlc.framework_version) == (RLFramework.PYTORCH, "2.5.1")
    custom = ContainerImage.from_uri("ubuntu:22.04")
    assert custom.serving_image() is custom and custom.is_custom
    serving = ContainerImage.pytorch_inference("2.6")
    assert serving.serving_image() is serving


# --------------------------------------------------------------------------------------------
# Environment-agnostic and regional stacks, synthesized once
# --------------------------------------------------------------------------------------------


class Synth:
    def __init__(self, tmp: Path) -> None:
        self.app = cdk.App(outdir=str(tmp / "cdk.out"))
        self.agnostic = cdk.Stack(self.app, "Agnostic")
        self.regional = cdk.Stack(
            self.app, "Regional", env=cdk.Environment(account="111122223333", region="us-west-2")
        )
        self.agnostic_role = iam.Role(
            self.agnostic, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")
        )
        # Every parity case again, now in a stack that does not know its region.
        self.case_outputs: list[str] = []
        for index, case in enumerate(CASES):
            bound = _image_for(case).bind(self.agnostic, instance_type=case["instance_type"])
            bound.grant_pull(self.agnostic_role)
            cdk.CfnOutput(self.agnostic, f"Case{index}", value=bound.image_uri)
            self.case_outputs.append(f"Case{index}")

        docker_dir = tmp / "image"
        docker_dir.mkdir()
        (docker_dir / "Dockerfile").write_text("FROM public.ecr.aws/docker/library/python:3.11\n")
        (docker_dir / "Dockerfile.gpu").write_text(
            "FROM public.ecr.aws/docker/library/python:3.11\n"
        )
        self.regional_role = iam.Role(
            self.regional, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")
        )
        self.asset_image = ContainerImage.from_asset(docker_dir)
        self.asset_bound = self.asset_image.bind(self.regional, instance_type="ml.c5.xlarge")
        self.asset_bound_again = self.asset_image.bind(self.regional, instance_type="ml.p3.2xlarge")
        self.asset_bound_arm = self.asset_image.bind(self.regional, instance_type="ml.c7g.xlarge")
        self.second_asset = ContainerImage.from_asset(
            docker_dir, file="Dockerfile.gpu", build_args={"X": "1"}
        ).bind(self.regional, instance_type="ml.c5.xlarge")
        self.repository = ecr.Repository(self.regional, "Repo")
        self.repo_bound = ContainerImage.from_ecr_repository(self.repository, "v1").bind(
            self.regional, instance_type="ml.c5.xlarge"
        )
        self.digest_bound = ContainerImage.from_ecr_repository(self.repository, DIGEST).bind(
            self.regional, instance_type="ml.c5.xlarge"
        )
        self.uri_bound = ContainerImage.from_uri(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/policy:1.0"
        ).bind(self.regional, instance_type="ml.c5.xlarge")
        self.rl_bound = ContainerImage.rl("coach", "0.11.1", "tensorflow").bind(
            self.regional, instance_type="ml.c5.xlarge"
        )
        for name, bound in [
            ("Asset", self.asset_bound),
            ("Asset2", self.second_asset),
            ("Repo", self.repo_bound),
            ("Digest", self.digest_bound),
            ("Uri", self.uri_bound),
            ("Rl", self.rl_bound),
        ]:
            bound.grant_pull(self.regional_role)
            cdk.CfnOutput(self.regional, f"{name}Uri", value=bound.image_uri)
        self.assembly = self.app.synth()
        self.templates = {
            name: self.assembly.get_stack_by_name(name).template
            for name in ("Agnostic", "Regional")
        }


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("images"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _evaluate(node: Any, region: str, mappings: dict[str, Any]) -> Any:
    """A tiny CloudFormation evaluator for the intrinsics image selection emits."""
    if isinstance(node, list):
        return [_evaluate(item, region, mappings) for item in node]
    if not isinstance(node, dict):
        return node
    ((key, value),) = node.items()
    if key == "Ref":
        return {
            "AWS::Region": region,
            "AWS::URLSuffix": URL_SUFFIX.get(region, "amazonaws.com"),
            "AWS::Partition": "aws",
        }[value]
    if key == "Fn::Join":
        separator, parts = value
        return separator.join(_evaluate(parts, region, mappings))
    if key == "Fn::FindInMap":
        name, top, second = _evaluate(value, region, mappings)
        return mappings[name][top][second]  # KeyError is CloudFormation's failure too
    if key == "Fn::Contains":
        haystack, needle = _evaluate(value, region, mappings)
        return needle in haystack
    raise AssertionError(f"unexpected intrinsic {key}")


def test_agnostic_uris_resolve_to_the_sdk_uri_in_every_recorded_region(synth: Synth) -> None:
    template = synth.templates["Agnostic"]
    for name, case in zip(synth.case_outputs, CASES, strict=True):
        value = template["Outputs"][name]["Value"]
        assert "Fn::Join" in value  # not a string baked at synth time
        assert _evaluate(value, case["region"], template["Mappings"]) == case["uri"], name


def test_one_mapping_and_one_rule_per_registry_set(synth: Synth) -> None:
    template = synth.templates["Agnostic"]
    assert sorted(template["Mappings"]) == [
        "ImageRegistryDlcAccounts",
        "ImageRegistryDlcTensorflowAccounts",
        "ImageRegistrySagemakerAccounts",
        "ImageRegistrySagemakerRlAccounts",
    ]
    assert sorted(r for r in template["Rules"] if r.startswith("ImageRegistry")) == [
        "ImageRegistryDlcRegionCheck",
        "ImageRegistryDlcTensorflowRegionCheck",
        "ImageRegistrySagemakerRegionCheck",
        "ImageRegistrySagemakerRlRegionCheck",
    ]
    rl = template["Mappings"]["ImageRegistrySagemakerRlAccounts"]
    assert rl == {region: {"account": "462105765813"} for region in rl}
    assert sorted(rl) == [
        "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
        "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "us-east-1", "us-east-2",
        "us-west-1", "us-west-2",
    ]  # fmt: skip
    legacy = template["Mappings"]["ImageRegistrySagemakerAccounts"]
    assert len(legacy) == 25
    assert legacy["cn-north-1"] == {"account": "422961961927"}
    assert legacy["us-isob-east-1"] == {"account": "453391408702"}


def test_rule_fails_outside_the_published_regions_and_says_why(synth: Synth) -> None:
    template = synth.templates["Agnostic"]
    rule = template["Rules"]["ImageRegistrySagemakerRlRegionCheck"]
    (assertion,) = rule["Assertions"]
    regions = sorted(template["Mappings"]["ImageRegistrySagemakerRlAccounts"])
    assert assertion["Assert"] == {"Fn::Contains": [regions, {"Ref": "AWS::Region"}]}
    assert _evaluate(assertion["Assert"], "us-west-2", {}) is True
    for unsupported in ("af-south-1", "cn-north-1", "us-gov-west-1", "eu-south-2"):
        assert _evaluate(assertion["Assert"], unsupported, {}) is False
    description = assertion["AssertDescription"]
    # Every image relying on the mapping is named, with the regions that would work.
    assert "sagemaker-rl-ray-container:ray-1.6.0-tf-cpu-py37" in description
    assert "sagemaker-rl-vw-container:vw-8.7.0-cpu" in description
    assert "sagemaker-rl-coach-container:coach-1.0.0-tf-gpu-py3" in description
    assert ", ".join(regions) in description


def test_agnostic_repository_arns_use_the_mapping_and_the_partition(synth: Synth) -> None:
    statements = [
        statement
        for resource in synth.templates["Agnostic"]["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    pull = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    resources = [r for s in pull for r in _as_list(s["Resource"])]
    ray = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ecr:",
                {"Ref": "AWS::Region"},
                ":",
                {
                    "Fn::FindInMap": [
                        "ImageRegistrySagemakerRlAccounts",
                        {"Ref": "AWS::Region"},
                        "account",
                    ]
                },
                ":repository/sagemaker-rl-ray-container",
            ],
        ]
    }
    assert ray in resources
    assert all(set(s["Action"]) == {
        "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"
    } for s in pull)  # fmt: skip
    token = [s for s in statements if s["Action"] == "ecr:GetAuthorizationToken"]
    assert token and all(s["Resource"] == "*" for s in token)


def test_cfn_lint_accepts_both_templates(synth: Synth, tmp_path: Path) -> None:
    paths = []
    for name, template in synth.templates.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(template))
        paths.append(str(path))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--regions", "us-east-1", "cn-north-1", "us-gov-west-1", "--", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_concrete_region_stack_has_no_mapping_and_a_plain_uri(synth: Synth) -> None:
    template = synth.templates["Regional"]
    assert "Mappings" not in template
    assert not [r for r in template.get("Rules", {}) if r.startswith("ImageRegistry")]
    assert synth.rl_bound.image_uri == (
        "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-tensorflow:coach0.11.1-cpu-py3"
    )
    assert template["Outputs"]["RlUri"]["Value"] == synth.rl_bound.image_uri


def test_from_uri_scopes_iam_to_the_parsed_repository(synth: Synth) -> None:
    bound = synth.uri_bound
    assert bound.is_custom and bound.toolkit is None and bound.processor is None
    assert bound.image_uri == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/policy:1.0"
    (arn,) = bound.repository_arns
    assert synth.regional.resolve(arn) == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ecr:eu-west-1:123456789012:repository/team/policy",
            ],
        ]
    }


def test_from_ecr_repository_uses_the_repository(synth: Synth) -> None:
    stack = synth.regional
    assert synth.repo_bound.repository_arns == (synth.repository.repository_arn,)
    assert synth.repo_bound.is_custom
    uri = json.dumps(stack.resolve(synth.repo_bound.image_uri))
    assert '":v1"' in uri and "Repo" in uri
    digest_uri = json.dumps(stack.resolve(synth.digest_bound.image_uri))
    assert f'"@{DIGEST}"' in digest_uri


def test_from_asset_builds_once_per_scope_and_platform(synth: Synth) -> None:
    # Training on x86 CPU and GPU share one build; a Graviton endpoint gets an arm64 build.
    assert synth.asset_bound is synth.asset_bound_again
    assert synth.asset_bound_arm is not synth.asset_bound
    assert synth.asset_bound.is_custom
    assert cdk.Token.is_unresolved(synth.asset_bound.image_uri)
    children = {c.node.id for c in synth.regional.node.children}
    assert {"ImageAsset", "ImageAsset2", "ImageAsset3"} <= children
    manifest = json.loads((Path(synth.assembly.directory) / "Regional.assets.json").read_text())
    sources = sorted(
        (image["source"].get("dockerFile", "Dockerfile"), image["source"]["platform"])
        for image in manifest["dockerImages"].values()
    )
    assert sources == [
        ("Dockerfile", "linux/amd64"),
        ("Dockerfile", "linux/arm64"),
        ("Dockerfile.gpu", "linux/amd64"),
    ]


def test_grant_pull_covers_every_custom_repository(synth: Synth) -> None:
    statements = [
        statement
        for resource in synth.templates["Regional"]["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    pulled = json.dumps([s["Resource"] for s in statements if "ecr:BatchGetImage" in s["Action"]])
    assert "repository/team/policy" in pulled  # from_uri
    assert "repository/sagemaker-rl-tensorflow" in pulled  # SageMaker image
    default_child = synth.repository.node.default_child
    assert isinstance(default_child, cdk.CfnElement)
    repository = synth.regional.get_logical_id(default_child)
    assert json.dumps({"Fn::GetAtt": [repository, "Arn"]}) in pulled  # from_ecr_repository
    assert "cdk-hnb659fds-container-assets" in pulled  # the asset repository


def test_grant_pull_is_a_no_op_without_an_ecr_repository() -> None:
    stack = cdk.Stack(cdk.App(), "NoEcr")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    bound = ContainerImage.from_uri("ghcr.io/org/policy:1").bind(
        stack, instance_type="ml.c5.xlarge"
    )
    assert bound.repository_arns == ()
    assert bound.grant_pull(role) is None


# --------------------------------------------------------------------------------------------
# ECR URI parsing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-image:1.0",
            EcrImageReference(
                "123456789012", "us-west-2", "amazonaws.com", "my-image", "1.0", None
            ),
        ),
        (
            f"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b/c@{DIGEST}",
            EcrImageReference(
                "123456789012", "cn-north-1", "amazonaws.com.cn", "a/b/c", None, DIGEST
            ),
        ),
        (
            f"123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov/rl_policy:v2@{DIGEST}",
            EcrImageReference(
                "123456789012", "us-iso-east-1", "c2s.ic.gov", "rl_policy", "v2", DIGEST
            ),
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/x.y",
            EcrImageReference("123456789012", "us-gov-west-1", "amazonaws.com", "x.y", None, None),
        ),
        (
            "123456789012.dkr-ecr.eu-south-1.on.aws/dualstack:latest",
            EcrImageReference("123456789012", "eu-south-1", "on.aws", "dualstack", "latest", None),
        ),
    ],
)
def test_parse_ecr_uri(uri: str, expected: EcrImageReference) -> None:
    assert parse_ecr_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "ubuntu:22.04",
        "ghcr.io/org/policy:1",
        "public.ecr.aws/docker/library/python:3.11",
        "localhost:5000/x",
    ],
)
def test_non_ecr_uris_are_passed_through(uri: str) -> None:
    assert parse_ecr_uri(uri) is None
    stack = cdk.Stack(cdk.App(), "PassThrough")
    bound = ContainerImage.from_uri(uri).bind(stack, instance_type="ml.p3.2xlarge")
    assert (bound.image_uri, bound.repository_arns, bound.is_custom) == (uri, (), True)


def test_token_uri_is_accepted_without_a_repository() -> None:
    stack = cdk.Stack(cdk.App(), "TokenUri")
    uri = cdk.CfnParameter(stack, "Image").value_as_string
    bound = ContainerImage.from_uri(uri).bind(stack, instance_type="ml.c5.xlarge")
    assert bound.image_uri is uri and bound.repository_arns == ()


# --------------------------------------------------------------------------------------------
# Errors: each names the value, what is allowed and where to look
# --------------------------------------------------------------------------------------------


def _error(func: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        func(*args, **kwargs)
    message = str(caught.value)
    assert "See " in message  # every message points somewhere
    return message


def test_unknown_toolkit() -> None:
    message = _error(ContainerImage.rl, "dqn")
    assert message.startswith("toolkit='dqn' is not valid. Allowed: one of: coach, ray, vw.")


def test_unknown_framework() -> None:
    message = _error(ContainerImage.rl, "ray", "1.6.0", "jax")
    assert "framework='jax' is not valid. Allowed: one of: mxnet, pytorch, tensorflow." in message


def test_unsupported_combination_reads_like_the_sdk_and_lists_what_is_supported() -> None:
    message = _error(ContainerImage.rl, "ray", "1.6.0", "mxnet")
    assert message.startswith("Provided `ray-1.6.0` and `mxnet` combination is not supported.")
    assert "ray 1.6.0 with pytorch 1.8.1; ray 1.6.0 with tensorflow 2.5.0" in message
    message = _error(ContainerImage.rl, RLToolkit.COACH, "0.11.1", RLFramework.MXNET)
    assert "coach 0.11.1 with tensorflow 1.12; mxnet is supported by coach 0.11, 0.11.0" in message


def test_unknown_toolkit_version_lists_the_catalogue() -> None:
    message = _error(ContainerImage.rl, "coach", "2.0.0", "tensorflow")
    assert message.startswith("toolkit_version='2.0.0' is not valid.")
    assert "0.10, 0.10.1, 0.11, 0.11.0, 0.11.1, 1.0.0" in message


def test_missing_framework() -> None:
    message = _error(ContainerImage.rl, "ray")
    assert message.startswith("framework=None is not valid. Allowed: one of pytorch, tensorflow")
    assert "ContainerImage.from_uri" in message
    assert "one of tensorflow " in _error(ContainerImage.rl, "coach", "0.11.1")


def test_vw_takes_no_framework() -> None:
    assert "Vowpal Wabbit images carry no deep-learning framework" in _error(
        ContainerImage.rl, "vw", "8.7.0", "tensorflow"
    )
    assert _error(ContainerImage.rl, "vw", None, None, "1.12").startswith(
        "framework_version='1.12' is not valid."
    )


def test_framework_version_disagreeing_with_toolkit_version() -> None:
    message = _error(ContainerImage.rl, "ray", "1.6.0", "tensorflow", "2.1")
    assert "2.5.0 (the tensorflow version in the ray 1.6.0 image)" in message
    assert "2.1 comes with ray 0.8.2, 0.8.5" in message


def test_framework_version_not_in_catalogue() -> None:
    message = _error(ContainerImage.rl, "ray", None, "tensorflow", "2.9")
    assert "a tensorflow version that a ray image carries: 1.11, 1.12, 2.1, 2.5.0" in message


@pytest.mark.parametrize("version", ["2", "latest", "2.5.0.1", ""])
def test_malformed_framework_version(version: str) -> None:
    assert "major.minor or major.minor.patch" in _error(
        ContainerImage.rl, "ray", None, "tensorflow", version
    )


def test_gpu_instance_for_vw() -> None:
    stack = cdk.Stack(cdk.App(), "Vw", env=cdk.Environment(region="us-west-2"))
    message = _error(ContainerImage.rl("vw").bind, stack, instance_type="ml.p3.2xlarge")
    assert message.startswith("instance_type='ml.p3.2xlarge' is not valid. Allowed: a CPU instance")
    assert "published for cpu only" in message


def test_neuron_instance_for_a_sagemaker_image() -> None:
    stack = cdk.Stack(cdk.App(), "Neuron", env=cdk.Environment(region="us-west-2"))
    message = _error(
        ContainerImage.pytorch_inference("2.6").bind, stack, instance_type="ml.inf2.xlarge"
    )
    assert "no AWS Neuron" in message


@pytest.mark.parametrize(
    "instance_type", ["ml.c7g.xlarge", "ml.m6gd.large", "ml.p6e-gb200.36xlarge"]
)
def test_arm_instance_for_a_sagemaker_image(instance_type: str) -> None:
    stack = cdk.Stack(cdk.App(), "Arm", env=cdk.Environment(region="us-west-2"))
    message = _error(
        ContainerImage.pytorch_inference("2.6").bind, stack, instance_type=instance_type
    )
    assert "is built for x86 only" in message


@pytest.mark.parametrize("instance_type", ["p3.2xlarge", "ml.p3", "ML.P3.2XLARGE"])
def test_malformed_instance_type(instance_type: str) -> None:
    assert "ml.<family>.<size>" in _error(Processor.for_instance_type, instance_type)


def test_token_instance_type_for_a_sagemaker_image() -> None:
    stack = cdk.Stack(cdk.App(), "TokenInstance", env=cdk.Environment(region="us-west-2"))
    token = cdk.CfnParameter(stack, "Type").value_as_string
    message = _error(
        ContainerImage.rl("ray", "1.6.0", "tensorflow").bind, stack, instance_type=token
    )
    assert "cannot be a token" in message


def test_unsupported_concrete_region_lists_regions_and_versions_that_work() -> None:
    stack = cdk.Stack(cdk.App(), "China", env=cdk.Environment(region="cn-north-1"))
    message = _error(
        ContainerImage.rl("ray", "1.6.0", "tensorflow").bind, stack, instance_type="ml.c5.xlarge"
    )
    assert message.startswith("region='cn-north-1' is not valid.")
    assert (
        "sagemaker-rl-ray-container:ray-1.6.0-tf-cpu-py37 is published: ap-northeast-1" in message
    )
    assert "pin toolkit_version to one published in cn-north-1: 0.5, 0.5.3, 0.6, 0.6.5" in message
    assert "vw" not in message
    # A region with nothing at all for the toolkit gets no version hint.
    stack = cdk.Stack(cdk.App(), "Zurich", env=cdk.Environment(region="eu-central-2"))
    message = _error(ContainerImage.rl("vw").bind, stack, instance_type="ml.c5.xlarge")
    assert "eu-central-2" in message and "pin toolkit_version" not in message


def test_framework_image_errors() -> None:
    message = _error(ContainerImage.pytorch_training, "1.8.1")
    assert message.startswith("pytorch-training version='1.8.1' is not valid.")
    assert "2.8.0" in message
    message = _error(ContainerImage.pytorch_inference, "2.6", "py310")
    assert message.startswith("pytorch-inference 2.6 py_version='py310' is not valid.")
    assert "py312" in message
    assert "1.11, 1.11.0, 1.12" in _error(ContainerImage.tensorflow_serving, "1.13")
    assert "1.3, 1.3.0" in _error(ContainerImage.mxnet_serving, "1.4.1")


def test_serving_fallback_only_within_the_same_minor_line() -> None:
    assert ContainerImage.tensorflow_serving("2.5.0").framework_version == "2.5"
    assert ContainerImage.mxnet_serving("1.3.0").framework_version == "1.3.0"
    _error(ContainerImage.tensorflow_serving, "2.6.0")
    _error(ContainerImage.pytorch_inference, "2.6.1")  # no fallback for DLC images


def test_no_serving_image_for_ray_pytorch_or_vw() -> None:
    for image in (ContainerImage.rl("ray", "1.6.0", "pytorch"), ContainerImage.rl("vw")):
        message = _error(image.serving_image)
        assert "there is no SageMaker serving image" in message
        assert "ContainerImage.pytorch_inference" in message


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("", "a non-empty image URI"),
        ("  ", "a non-empty image URI"),
        ("my image:1", "without whitespace"),
        ("https://123456789012.dkr.ecr.us-west-2.amazonaws.com/x:1", "no URL scheme"),
        ("123456789012.dkr.ecr.us-west-2.amazonaws.com/MyImage:1", "lower case"),
        ("123456789012.dkr.ecr.us-west-2.amazonaws.com/x@sha256:12", "sha256:<64 hex digits>"),
        ("123456789012.dkr.ecr.us-west-2.amazonaws.com/x:-bad", "a valid image tag"),
        ("123456789012.dkr.ecr.us-west-2.amazonaws.com", "an ECR image URI <account>"),
    ],
)
def test_from_uri_errors(uri: str, fragment: str) -> None:
    message = _error(ContainerImage.from_uri, uri)
    assert message.startswith(f"image_uri={uri!r} is not valid.")
    assert fragment in message


def test_from_ecr_repository_errors() -> None:
    stack = cdk.Stack(cdk.App(), "EcrErrors")
    repository = ecr.Repository(stack, "Repo")
    assert _error(ContainerImage.from_ecr_repository, "my-repo").startswith(
        "repository='my-repo' is not valid. Allowed: an aws_ecr.IRepository"
    )
    assert _error(ContainerImage.from_ecr_repository, repository, "has space").startswith(
        "tag='has space' is not valid."
    )


def test_from_asset_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert _error(ContainerImage.from_asset, missing).startswith(
        f"directory={str(missing)!r} is not valid. Allowed: an existing directory"
    )
    assert "a directory containing Dockerfile" in _error(ContainerImage.from_asset, tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert "a directory containing Dockerfile.gpu" in _error(
        ContainerImage.from_asset, tmp_path, file="Dockerfile.gpu"
    )
    message = _error(ContainerImage.from_asset, tmp_path, build_arg={"A": "1"})
    assert message.startswith("from_asset option='build_arg' is not valid.")
    assert "build_args" in message


def test_enum_parse_error_lists_values() -> None:
    assert _error(Processor.parse, "tpu", "processor").startswith(
        "processor='tpu' is not valid. Allowed: one of: cpu, gpu."
    )
    assert _error(RLFramework.parse, 3, "framework").startswith("framework=3 is not valid.")
