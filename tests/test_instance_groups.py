"""Heterogeneous clusters: ``instance_groups`` and ``TrainingInput`` channels, as SDK v2 had them.

The request is checked the way SageMaker would check it (botocore's validator plus the patterns
and maxima it skips, tests/test_api_shapes.py), the limits in ``_data/limits.json`` against
botocore's model, and every bad input is a synth-time ValidationError naming the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template
from constructs import Construct

from cdk_sagemaker_rl import (
    BoundImage,
    ContainerImage,
    InstanceGroup,
    RLEstimator,
    RLTrainingStep,
    TrainingConfig,
    TrainingInput,
    TrainingSource,
    ValidationError,
    s3_location,
    training_job_parts,
)
from cdk_sagemaker_rl._limits import limits
from tests.test_api_shapes import (
    Deployment,
    Integration,
    Machine,
    TemplateResolver,
    execution_inputs,
    request_problems,
    state_machine_definition,
    walk,
)

ENV = cdk.Environment(account="111122223333", region="us-west-2")
IMAGE = "111122223333.dkr.ecr.us-west-2.amazonaws.com/my-rl:2"
GROUPS = [
    InstanceGroup("learner", "ml.g5.xlarge", 1),
    InstanceGroup("simulators", "ml.c5.2xlarge", 3),
]
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


class RecordingImage(ContainerImage):
    """A user's image that records how the job bound it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def bind(
        self,
        scope: Construct,
        *,
        instance_type: str,
        instance_groups: Any = None,
    ) -> BoundImage:
        self.calls.append({"instance_type": instance_type, "instance_groups": instance_groups})
        return BoundImage(image_uri=IMAGE, repository_arns=(), is_custom=True)


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("groups-src")
    (root / "train.py").write_text("print('train')\n")
    return root


def make(source_dir: Path, **overrides: Any) -> RLEstimator:
    stack = cdk.Stack(cdk.App(), "Groups", env=ENV)
    kwargs: dict[str, Any] = {
        "entry_point": "train.py",
        "source_dir": str(source_dir),
        "image_uri": IMAGE,
        "instance_groups": GROUPS,
        "train_volume_size": 50,
        "job_name": "hetero",
    }
    kwargs.update(overrides)
    return RLEstimator(stack, "Estimator", **kwargs)


@dataclass
class Synth:
    estimator: RLEstimator
    image: RecordingImage
    template: dict[str, Any]
    request: dict[str, Any]


def train_call(stack: cdk.Stack, template: dict[str, Any]) -> dict[str, Any]:
    """The CreateTrainingJob request the deploy's execution sends, resolved for us-west-2."""
    resolver = TemplateResolver(template, Deployment("us-west-2", stack_name=stack.stack_name))
    (machine_id,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    machine = Machine(
        stack.stack_name, machine_id, resolver, state_machine_definition(resolver, machine_id)
    )
    _, execution_input, context = execution_inputs(machine)[0]
    result = walk(machine.definition, execution_input, context, resolver.deployment)
    (call,) = [c for c in result.calls if c.integration.operation == "CreateTrainingJob"]
    return call.request


@pytest.fixture(scope="module")
def synth(source_dir: Path) -> Synth:
    image = RecordingImage()
    estimator = make(source_dir, image_uri=image)
    estimator.fit(
        {
            "experience": TrainingInput("s3://my-data/experience", instance_groups=["learner"]),
            "maps": "s3://my-data/maps",
        }
    )
    stack = cdk.Stack.of(estimator)
    template = Template.from_stack(stack).to_json()
    return Synth(estimator, image, template, train_call(stack, template))


def test_the_request_sends_the_groups_instead_of_one_type(synth: Synth) -> None:
    assert synth.request["ResourceConfig"] == {
        "InstanceGroups": [
            {"InstanceGroupName": "learner", "InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
            {
                "InstanceGroupName": "simulators",
                "InstanceType": "ml.c5.2xlarge",
                "InstanceCount": 3,
            },
        ],
        "VolumeSizeInGB": 50,
    }


def test_a_channel_goes_to_the_groups_it_names(synth: Synth) -> None:
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in synth.request["InputDataConfig"]
    }
    assert channels == {
        "experience": {
            "S3DataType": "S3Prefix",
            "S3Uri": "s3://my-data/experience",
            "S3DataDistributionType": "FullyReplicated",
            "InstanceGroupNames": ["learner"],
        },
        # A plain string is what it always was: every instance downloads it.
        "maps": {
            "S3DataType": "S3Prefix",
            "S3Uri": "s3://my-data/maps",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def test_the_request_is_one_sagemaker_accepts(synth: Synth) -> None:
    problems = request_problems(
        Integration("sagemaker", "CreateTrainingJob", "optimized"), synth.request
    )
    assert problems == []


def test_the_image_is_bound_for_every_group(synth: Synth) -> None:
    assert synth.image.calls == [
        {
            "instance_type": "ml.g5.xlarge",
            "instance_groups": {"learner": "ml.g5.xlarge", "simulators": "ml.c5.2xlarge"},
        }
    ]


def test_the_role_may_read_every_channel(synth: Synth) -> None:
    text = json.dumps(synth.template)
    assert "my-data/experience/*" in text
    assert "my-data/maps/*" in text


def test_one_instance_type_still_renders_as_before() -> None:
    config = TrainingConfig(instance_type="ml.c5.xlarge", instance_count=3)
    assert config.resource_config() == {
        "InstanceCount": 3,
        "InstanceType": "ml.c5.xlarge",
        "VolumeSizeInGB": 30,
    }
    assert config.instance_groups == ()


def test_a_bare_training_input_is_the_training_channel(source_dir: Path) -> None:
    estimator = make(source_dir)
    location = s3_location("s3://my-data/all", None, "s3_data")
    assert location is not None
    estimator.fit(TrainingInput(location, instance_groups=("simulators", "learner")))
    (channel,) = cdk.Stack.of(estimator).resolve(estimator.training_request())["InputDataConfig"]
    assert channel["ChannelName"] == "training"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://my-data/all"
    assert channel["DataSource"]["S3DataSource"]["InstanceGroupNames"] == ["simulators", "learner"]


def test_a_users_step_gets_the_groups_too(source_dir: Path) -> None:
    stack = cdk.Stack(cdk.App(), "Own", env=ENV)
    image = RecordingImage()
    parts = training_job_parts(
        stack,
        config=TrainingConfig(instance_groups=GROUPS),
        image=image,
        source=TrainingSource(stack, "Code", entry_point="train.py", source_dir=str(source_dir)),
        output_path="s3://my-models/rl",
        job_name_base="own-hetero",
    )
    step = RLTrainingStep(
        stack,
        "Train",
        parts=parts,
        inputs={"experience": TrainingInput("s3://my-data/x", instance_groups=["simulators"])},
    )
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(step))
    request = stack.resolve(step.request())
    assert [g["InstanceGroupName"] for g in request["ResourceConfig"]["InstanceGroups"]] == [
        "learner",
        "simulators",
    ]
    assert "InstanceType" not in request["ResourceConfig"]
    assert step.channels["experience"].instance_groups == ("simulators",)
    assert image.calls[0]["instance_groups"] == {
        "learner": "ml.g5.xlarge",
        "simulators": "ml.c5.2xlarge",
    }
    with pytest.raises(ValidationError, match=r"'nowhere'.*learner, simulators"):
        step.add_inputs({"more": TrainingInput("s3://my-data/y", instance_groups=["nowhere"])})


def test_the_limits_are_botocores() -> None:
    rules = limits()["instance_groups"]
    create = SAGEMAKER.operation_model("CreateTrainingJob").input_shape
    groups = create.members["ResourceConfig"].members["InstanceGroups"]
    assert groups.metadata["max"] == rules["max_entries"]
    name = groups.member.members["InstanceGroupName"]
    assert (name.metadata["min"], name.metadata["max"]) == (
        rules["name_min_length"],
        rules["name_max_length"],
    )
    assert f"^{name.metadata['pattern']}$" == rules["name_pattern"]
    count = groups.member.members["InstanceCount"]
    assert count.metadata["min"] <= rules["instance_count_min"]
    assert "max" not in count.metadata  # no per-group maximum to copy
    source = create.members["InputDataConfig"].member.members["DataSource"]
    names = source.members["S3DataSource"].members["InstanceGroupNames"]
    assert names.metadata["max"] == rules["channel_max_groups"]


BAD_CONFIGS = [
    (
        {"instance_groups": [GROUPS[0], InstanceGroup("learner", "ml.c5.xlarge", 2)]},
        r"instance_groups\[1\]\.instance_group_name='learner'.*no other group",
    ),
    (
        {"instance_groups": [InstanceGroup(f"g{i}", "ml.c5.xlarge", 1) for i in range(6)]},
        r"<6 groups>.*at most 5 instance groups",
    ),
    (
        {"instance_groups": [InstanceGroup("learner", "ml.c5.xlarge", 0)]},
        r"instance_groups\[0\]\.instance_count=0.*integer >= 1",
    ),
    (
        {"instance_groups": [InstanceGroup("learner", "ml.c5.xlarge", True)]},  # type: ignore[arg-type]
        r"instance_count=True",
    ),
    (
        {"instance_groups": [InstanceGroup("learner", "ml.c5.huge", 1)]},
        r"instance_groups\[0\]\.instance_type='ml.c5.huge'",
    ),
    (
        {"instance_groups": [InstanceGroup("x" * 65, "ml.c5.xlarge", 1)]},
        r"instance_group_name='x{65}'.*1 to 64 characters",
    ),
    ({"instance_groups": [("learner", "ml.c5.xlarge", 1)]}, r"instance_groups\[0\]=\('learner'"),
    ({"instance_groups": GROUPS[0]}, r"instance_groups=InstanceGroup\("),
    ({"instance_groups": []}, r"instance_groups=\[\].*at least one"),
    (
        {"instance_groups": GROUPS, "instance_type": "ml.c5.xlarge"},
        r"train_instance_type='ml.c5.xlarge'.*None when instance_groups",
    ),
    (
        {"instance_groups": GROUPS, "instance_count": 2},
        r"train_instance_count=2.*None when instance_groups",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_CONFIGS)
def test_bad_groups_are_refused_at_synth(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingConfig(**kwargs)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("train_instance_type", "ml.c5.xlarge"),
        ("instance_type", "ml.c5.xlarge"),
        ("train_instance_count", 2),
        ("instance_count", 2),
    ],
)
def test_one_type_and_groups_are_refused_together(
    source_dir: Path, argument: str, value: object
) -> None:
    with pytest.raises(ValidationError, match=rf"^{argument}={value!r}.*None when instance_groups"):
        make(source_dir, **{argument: value})


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"x": TrainingInput("s3://my-data/x", instance_groups=["learner", "gpu"])},
            r"inputs\['x'\]\.instance_groups='gpu'.*learner, simulators",
        ),
        (
            {"x": TrainingInput("s3://my-data/x", instance_groups="learner")},  # type: ignore[arg-type]
            r"inputs\['x'\]\.instance_groups='learner'.*list of instance group names",
        ),
        (
            {"x": TrainingInput("s3://my-data/x", instance_groups=["learner", "learner"])},
            r"each group named once",
        ),
        ({"x": TrainingInput("/tmp/x")}, r"inputs\['x'\]\.s3_data='/tmp/x'"),
        ({"x": 3}, r"inputs\['x'\]=3.*TrainingInput"),
    ],
)
def test_bad_channels_are_refused_at_fit(
    source_dir: Path, inputs: dict[str, Any], message: str
) -> None:
    estimator = make(source_dir)
    with pytest.raises(ValidationError, match=message):
        estimator.fit(inputs)


def test_a_channel_for_groups_needs_groups(source_dir: Path) -> None:
    estimator = make(source_dir, instance_groups=None, train_instance_type="ml.c5.xlarge")
    with pytest.raises(ValidationError, match=r"'learner'.*the job has no instance_groups"):
        estimator.fit(TrainingInput("s3://my-data/x", instance_groups=["learner"]))
