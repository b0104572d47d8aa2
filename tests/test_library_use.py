"""The library as its users use it: many estimators per account, CDK objects, tags, bad input.

Each group synthesizes one app for the whole module (module-scoped fixtures) and reads the
templates from that one synth; the bad-input cases only construct, they never synthesize.

1. isolation: every estimator's IAM names only its own jobs, log streams and state machines;
2. construct paths of any length synthesize;
3. CDK-native arguments (VPC, buckets, token URIs, keys) end up in the request and in IAM;
4. ``Tags.of(...)`` reaches the training job (and what the TrainAndServe workflow creates);
5. every bad input is a :class:`ValidationError` naming the value and what is allowed;
6. ``RLTrainingStep`` in a user's own state machine, without ``RLEstimator``;
7. the reference stack lints clean in an app without the recommended feature flags.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template
from constructs import Construct, IConstruct

from app import ENVIRONMENTS_KEY, build_app
from cdk_sagemaker_rl import (
    ContainerImage,
    RLEstimator,
    RLTrainingStep,
    TrainingConfig,
    TrainingJobParts,
    TrainingSource,
    ValidationError,
)
from cdk_sagemaker_rl._naming import MAX_JOB_NAME_BASE
from cdk_sagemaker_rl._s3 import s3_location
from tests.conftest import cdk_json_context
from tests.test_api_shapes import (
    Deployment,
    TemplateResolver,
    request_problems,
    state_machine_definition,
    walk,
)
from tests.test_reference_app import cfn_lint

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cartpole"
ACCOUNT = "123456789012"
REGIONAL = cdk.Environment(account=ACCOUNT, region="eu-west-1")
#: A job name as a deploy names it: ``<base>-<timestamp>``.
TIMESTAMP = "-2026-03-14-15-09-26-535"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def estimator_kwargs(**overrides: Any) -> dict[str, Any]:
    """The reference app's training (PyTorch DLC, CartPole example), any base name."""
    kwargs: dict[str, Any] = {
        "entry_point": "train.py",
        "source_dir": str(EXAMPLE),
        "image_uri": ContainerImage.pytorch_training("2.8"),
        "train_instance_type": "ml.m5.large",
        "train_max_run": cdk.Duration.hours(1),
    }
    kwargs.update(overrides)
    return kwargs


#: deploy() arguments that serve the PyTorch policy (the inference image of the reference app).
DEPLOY: dict[str, Any] = {
    "instance_type": "ml.m5.large",
    "image": ContainerImage.pytorch_inference("2.6"),
    "entry_point": "inference.py",
}


def flat(value: Any) -> str:
    """A template value as text, intrinsics as readable placeholders (for patterns and search)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(flat(item) for item in value)
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"<Ref:{arg}>"
        if key == "Fn::GetAtt":
            return f"<GetAtt:{'.'.join(arg) if isinstance(arg, list) else arg}>"
        if key == "Fn::Join":
            separator, parts = arg
            return str(separator).join(flat(part) for part in parts)
        if key == "Fn::ImportValue":
            return f"<Import:{flat(arg)}>"
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else str(arg[0])
        if key in ("Fn::Select", "Fn::Split", "Fn::FindInMap"):
            return f"<{key[4:]}:{flat(arg)}>"
    return json.dumps(value, sort_keys=True)


def definition(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A state machine definition with intrinsics as placeholders (JSON-safe inside strings)."""
    props = template["Resources"][logical_id]["Properties"]
    return dict(json.loads(flat(props["DefinitionString"])))


def logical_id(construct: IConstruct) -> str:
    element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    assert isinstance(element, cdk.CfnElement), construct.node.path
    return str(cdk.Stack.of(element).resolve(element.logical_id))


def cfn_under(scope: IConstruct, kind: type) -> list[Any]:
    return [c for c in scope.node.find_all() if isinstance(c, kind)]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], role_ids: set[str]) -> list[dict[str, Any]]:
    """Every statement of every policy attached to these roles (inline ones included)."""
    statements: list[dict[str, Any]] = []
    for resource_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            attached = {r.get("Ref") for r in props.get("Roles", []) if isinstance(r, dict)}
            if attached & role_ids:
                statements += props["PolicyDocument"]["Statement"]
        elif resource["Type"] == "AWS::IAM::Role" and resource_id in role_ids:
            for policy in props.get("Policies", []):
                statements += policy["PolicyDocument"]["Statement"]
    return statements


def statements_of(template: dict[str, Any], scope: IConstruct) -> list[dict[str, Any]]:
    """Every IAM statement of every role created under ``scope``."""
    roles = {logical_id(role) for role in cfn_under(scope, iam.CfnRole)}
    assert roles, f"no role under {scope.node.path}"
    statements = role_statements(template, roles)
    assert statements, f"no policy for the roles under {scope.node.path}"
    return statements


def actions(statement: dict[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement["Action"])]


def resources_for(statements: list[dict[str, Any]], action: str) -> list[str]:
    return [
        flat(resource)
        for statement in statements
        if action in actions(statement)
        for resource in as_list(statement["Resource"])
    ]


# ============================================================================================
# 1. Isolation: estimators that share an account never share permissions
# ============================================================================================


@dataclass
class Isolated:
    """Two estimators of one account and the synthesized template(s) they live in."""

    label: str
    first: RLEstimator
    second: RLEstimator
    templates: dict[str, dict[str, Any]]

    def template_of(self, estimator: RLEstimator) -> dict[str, Any]:
        return self.templates[cdk.Stack.of(estimator).artifact_id]


def _names_owned_by(estimator: RLEstimator) -> tuple[str, list[str]]:
    """The estimator's job-name base and the logical ids of its state machines."""
    machines = [logical_id(m) for m in cfn_under(estimator, sfn.CfnStateMachine)]
    assert machines, estimator.node.path
    return estimator.job_name_base, machines


@pytest.fixture(scope="module")
def isolation() -> list[Isolated]:
    """One app: two default-named estimators in an environment-agnostic stack, two in a stack
    with a concrete region, and one each in two stacks of one account (same image, same id; the
    first of those stacks is the regional one, to synthesize one stack less)."""
    app = cdk.App()
    agnostic = cdk.Stack(app, "Agnostic")
    regional = cdk.Stack(app, "Regional", env=REGIONAL)
    team_two = cdk.Stack(app, "TeamTwo", env=REGIONAL)
    alpha = RLEstimator(agnostic, "Alpha", **estimator_kwargs())
    beta = RLEstimator(agnostic, "Beta", **estimator_kwargs())
    alpha.fit()
    alpha.deploy(**DEPLOY)
    # The TrainAndServe workflow's role names models and endpoint configs after the base.
    beta.fit(wait=False)
    beta.deploy(**DEPLOY)
    gamma = RLEstimator(regional, "Gamma", **estimator_kwargs())
    delta = RLEstimator(regional, "Delta", **estimator_kwargs())
    one = RLEstimator(regional, "Policy", **estimator_kwargs())
    two = RLEstimator(team_two, "Policy", **estimator_kwargs())
    for estimator in (gamma, delta, one, two):
        estimator.fit()
    assembly = app.synth()
    templates = {s.stack_name: dict(s.template) for s in assembly.stacks}
    return [
        Isolated("agnostic stack", alpha, beta, templates),
        Isolated("regional stack", gamma, delta, templates),
        Isolated("two stacks, one account", one, two, templates),
    ]


def _job_patterns(statements: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, pattern) of every resource scoped by a job name: jobs, models, configs, streams."""
    patterns = []
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            text = flat(resource)
            for marker in _MARKERS:
                if marker in text:
                    patterns.append((marker, text.split(marker, 1)[1]))
    return patterns


#: Actions on one job's resources (or its log stream's events): never granted beyond the base.
JOB_SCOPED_ACTIONS = frozenset(
    {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "logs:PutLogEvents",
        "logs:GetLogEvents",
    }
)
_MARKERS = (":training-job/", ":model/", ":endpoint-config/", ":log-stream:")
#: The model role's endpoint logs: see test_model_roles_write_only_their_endpoints_logs.
ENDPOINT_LOGS = ":log-group:/aws/sagemaker/Endpoints/"


def _broader_than_a_base(statements: list[dict[str, Any]], owner: IConstruct) -> list[str]:
    """Resources of job-scoped actions that name no job-name base (a group, a bare wildcard),
    other than resources of ``owner`` itself (its functions' own log groups)."""
    own = tuple(
        f"<{kind}:{logical_id(element)}{end}"
        for element in cfn_under(owner, cdk.CfnElement)
        for kind, end in (("Ref", ">"), ("GetAtt", "."))
    )
    return [
        text
        for statement in statements
        if JOB_SCOPED_ACTIONS & set(actions(statement))
        for text in map(flat, as_list(statement["Resource"]))
        if not any(marker in text for marker in (*_MARKERS, ENDPOINT_LOGS))
        and not text.startswith(own)
    ]


def _covers(pattern: str, marker: str, job_name: str) -> bool:
    """Whether an ARN pattern's name part matches a job (or its log stream) of that name."""
    if marker == ":log-stream:":
        return fnmatch.fnmatchcase(f"{job_name}/algo-1-1773501000", pattern)
    # SageMaker lowercases names in ARNs.
    return fnmatch.fnmatchcase(job_name.lower(), pattern)


@pytest.mark.parametrize("case", range(3), ids=["agnostic", "regional", "two-stacks"])
def test_no_estimator_is_granted_anything_of_another(isolation: list[Isolated], case: int) -> None:
    pair = isolation[case]
    for mine, other in ((pair.first, pair.second), (pair.second, pair.first)):
        statements = statements_of(pair.template_of(mine), mine)
        text = json.dumps(statements).lower()
        other_base, other_machines = _names_owned_by(other)
        assert other_base.lower() not in text, (pair.label, mine.node.path, other_base)
        if cdk.Stack.of(mine) is cdk.Stack.of(other):  # logical ids are per template
            for machine in other_machines:
                assert machine.lower() not in text, (pair.label, mine.node.path, machine)
        assert _broader_than_a_base(statements, mine) == [], (pair.label, mine.node.path)
        patterns = _job_patterns(statements)
        kinds = {marker for marker, _ in patterns}
        # Not vacuous: the estimator's own jobs and log streams are named (and covered).
        assert {":training-job/", ":log-stream:"} <= kinds, (pair.label, kinds)
        own_job, other_job = mine.job_name_base + TIMESTAMP, other_base + TIMESTAMP
        for marker, pattern in patterns:
            assert _covers(pattern, marker, own_job), (pattern, own_job)
            assert not _covers(pattern, marker, other_job), (pair.label, pattern, other_job)


def test_model_roles_write_only_their_endpoints_logs(isolation: list[Isolated]) -> None:
    pair = isolation[0]
    statements = statements_of(pair.template_of(pair.first), pair.first)
    logs = resources_for(statements, "logs:PutLogEvents")
    endpoint_logs = [r for r in logs if ENDPOINT_LOGS in r]
    assert endpoint_logs, logs
    assert not [r for r in endpoint_logs if r.endswith(f"{ENDPOINT_LOGS}*")], endpoint_logs


def test_default_job_name_bases_are_distinct_and_fit_a_job_name(
    isolation: list[Isolated],
) -> None:
    bases = [e.job_name_base for pair in isolation for e in (pair.first, pair.second)]
    assert len({b.lower() for b in bases}) == len(bases), bases
    for base in bases:
        assert len(base) <= MAX_JOB_NAME_BASE == 39, base
        # With the deploy's timestamp it is a valid SageMaker job name.
        assert len(base + TIMESTAMP) <= 63


def test_the_same_path_in_two_stacks_gets_two_bases(isolation: list[Isolated]) -> None:
    pair = isolation[2]
    assert pair.first.node.path.split("/")[1:] == pair.second.node.path.split("/")[1:]
    assert pair.first.job_name_base != pair.second.job_name_base


def test_an_explicit_base_that_prefixes_another_is_refused() -> None:
    app = cdk.App()
    RLEstimator(cdk.Stack(app, "One"), "Policy", **estimator_kwargs(base_job_name="cartpole"))
    with pytest.raises(ValidationError) as error:
        RLEstimator(
            cdk.Stack(app, "Two"), "Policy", **estimator_kwargs(base_job_name="cartpole-v2")
        )
    message = str(error.value)
    assert "base_job_name='cartpole-v2'" in message
    assert "'cartpole'" in message
    assert "Allowed:" in message


def test_long_explicit_bases_stay_distinct() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Long")
    names = ["a" * 59 + "1", "a" * 59 + "2"]
    bases = [
        RLEstimator(stack, f"E{i}", **estimator_kwargs(base_job_name=name)).job_name_base
        for i, name in enumerate(names)
    ]
    assert bases[0] != bases[1]
    assert all(len(base) <= MAX_JOB_NAME_BASE for base in bases), bases


# ============================================================================================
# 2. Construct paths of any length
# ============================================================================================


@pytest.fixture(scope="module")
def deep() -> tuple[RLEstimator, dict[str, Any]]:
    app = cdk.App()
    stack = cdk.Stack(app, "Deep")
    scope: Construct = stack
    for level in range(4):
        scope = Construct(scope, f"Level{level}" + "WithAVeryLongConstructIdentifier" * 2)
    estimator = RLEstimator(scope, "Estimator" + "X" * 60, **estimator_kwargs())
    estimator.fit()
    estimator.deploy(**DEPLOY)
    assembly = app.synth()
    return estimator, dict(assembly.get_stack_by_name("Deep").template)


def test_any_construct_path_length_synthesizes(deep: tuple[RLEstimator, dict[str, Any]]) -> None:
    estimator, template = deep
    assert len(estimator.node.path) > 4 * 60
    assertions = Template.from_json(template)
    assertions.resource_count_is("AWS::SageMaker::Endpoint", 1)
    (handle,) = assertions.find_resources("AWS::CloudFormation::WaitConditionHandle")
    (condition,) = assertions.find_resources("AWS::CloudFormation::WaitCondition")
    assert handle != condition
    assert len(handle) <= 255 and len(condition) <= 255
    for resource_id in template["Resources"]:
        assert len(resource_id) <= 255, resource_id
    assert len(estimator.job_name_base) <= MAX_JOB_NAME_BASE


# ============================================================================================
# 3. CDK-native arguments
# ============================================================================================


@dataclass
class Native:
    train: cdk.Stack
    data: cdk.Stack
    networked: RLEstimator
    default_group: RLEstimator
    imported: RLEstimator
    local_bucket: s3.Bucket
    data_bucket: s3.Bucket
    key: kms.Key
    group: ec2.SecurityGroup
    vpc: ec2.Vpc
    template: dict[str, Any]
    data_template: dict[str, Any]

    def request(self, estimator: RLEstimator) -> dict[str, Any]:
        (machine,) = cfn_under(estimator, sfn.CfnStateMachine)
        return dict(definition(self.template, logical_id(machine))["States"]["Train"]["Parameters"])

    def statements(self, estimator: RLEstimator) -> list[dict[str, Any]]:
        return role_statements(self.template, {logical_id(estimator.role.node.default_child)})


@pytest.fixture(scope="module")
def native() -> Native:
    app = cdk.App()
    data = cdk.Stack(app, "Data", env=REGIONAL)
    data_bucket = s3.Bucket(data, "Bucket", enforce_ssl=True)
    train = cdk.Stack(app, "Train", env=REGIONAL)
    vpc = ec2.Vpc(
        train,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    group = ec2.SecurityGroup(train, "JobGroup", vpc=vpc)
    local_bucket = s3.Bucket(train, "Local", enforce_ssl=True)
    key = kms.Key(train, "Key", enable_key_rotation=True)
    networked = RLEstimator(
        train,
        "Networked",
        **estimator_kwargs(
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[group],
            output_path=local_bucket.s3_url_for_object("rl"),
            checkpoint_s3_uri=local_bucket.s3_url_for_object("checkpoints"),
            output_kms_key=key,
        ),
    )
    default_group = RLEstimator(
        train,
        "DefaultGroup",
        **estimator_kwargs(
            vpc=vpc,
            output_path=data_bucket,
            output_prefix="rl",
            checkpoint_s3_uri=data_bucket,
            checkpoint_prefix="checkpoints",
            output_kms_key=KEY_ARN,
        ),
    )
    imported = RLEstimator(
        train,
        "Imported",
        **estimator_kwargs(
            output_path=s3.Bucket.from_bucket_name(train, "Existing", "existing-rl-bucket"),
            output_prefix="policies/rl",
        ),
    )
    for estimator in (networked, default_group, imported):
        estimator.fit()
    assembly = app.synth()
    return Native(
        train=train,
        data=data,
        networked=networked,
        default_group=default_group,
        imported=imported,
        local_bucket=local_bucket,
        data_bucket=data_bucket,
        key=key,
        group=group,
        vpc=vpc,
        template=dict(assembly.get_stack_by_name("Train").template),
        data_template=dict(assembly.get_stack_by_name("Data").template),
    )


def test_vpc_objects_render_the_vpc_config_and_network_permissions(native: Native) -> None:
    subnets = [f"<Ref:{logical_id(s)}>" for s in native.vpc.isolated_subnets]
    assert len(subnets) == 2
    group = f"<GetAtt:{logical_id(native.group)}.GroupId>"
    assert native.request(native.networked)["VpcConfig"] == {
        "SecurityGroupIds": [group],
        "Subnets": subnets,
    }
    statements = native.statements(native.networked)
    interfaces = resources_for(statements, "ec2:CreateNetworkInterface")
    for subnet in subnets:
        assert any(r.endswith(f":subnet/{subnet}") for r in interfaces), (subnet, interfaces)
    assert any(r.endswith(f":security-group/{group}") for r in interfaces), interfaces
    # Exactly these subnets: no other subnet (and no subnet wildcard) may be attached to.
    assert [r for r in interfaces if ":subnet/" in r] == [
        r for r in interfaces if any(r.endswith(f":subnet/{s}") for s in subnets)
    ]


def test_vpc_without_security_groups_gets_one_created(native: Native) -> None:
    (created,) = cfn_under(native.default_group, ec2.CfnSecurityGroup)
    group = f"<GetAtt:{logical_id(created)}.GroupId>"
    assert native.request(native.default_group)["VpcConfig"]["SecurityGroupIds"] == [group]
    interfaces = resources_for(
        native.statements(native.default_group), "ec2:CreateNetworkInterface"
    )
    assert any(r.endswith(f":security-group/{group}") for r in interfaces), interfaces


def test_mixing_vpc_and_subnet_ids_is_refused() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Mixed", env=REGIONAL)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0)
    with pytest.raises(ValidationError) as error:
        RLEstimator(stack, "E", **estimator_kwargs(vpc=vpc, subnets=["subnet-0abc"]))
    assert "subnet-0abc" in str(error.value)
    assert "vpc_subnets" in str(error.value)


def test_a_token_output_path_is_accepted_and_scopes_the_role(native: Native) -> None:
    bucket = f"<Ref:{logical_id(native.local_bucket)}>"
    request = native.request(native.networked)
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{bucket}/rl"
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://{bucket}/checkpoints"
    statements = native.statements(native.networked)
    assert resources_for(statements, "s3:PutObject") == [
        f"arn:<Ref:AWS::Partition>:s3:::{bucket}/rl/*",
        f"arn:<Ref:AWS::Partition>:s3:::{bucket}/checkpoints/*",
    ]


def test_a_bucket_of_another_stack_works_across_stacks(native: Native) -> None:
    request = native.request(native.default_group)
    output = request["OutputDataConfig"]["S3OutputPath"]
    assert output.startswith("s3://<Import:Data:") and output.endswith("/rl"), output
    assert request["CheckpointConfig"]["S3Uri"].endswith("/checkpoints")
    writes = resources_for(native.statements(native.default_group), "s3:PutObject")
    assert len(writes) == 2
    assert writes[0].startswith("arn:<Ref:AWS::Partition>:s3:::<Import:Data:"), writes
    assert writes[0].endswith("/rl/*") and writes[1].endswith("/checkpoints/*"), writes
    # The data stack exports its bucket, and nothing in it depends on the training stack.
    bucket = logical_id(native.data_bucket)
    Template.from_json(native.data_template).has_output(
        "*", {"Value": {"Ref": bucket}, "Export": {"Name": Match.string_like_regexp("^Data:")}}
    )
    assert "Train" not in json.dumps(native.data_template)


def test_an_imported_bucket_with_a_prefix(native: Native) -> None:
    request = native.request(native.imported)
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://existing-rl-bucket/policies/rl"
    statements = native.statements(native.imported)
    assert resources_for(statements, "s3:PutObject") == [
        "arn:<Ref:AWS::Partition>:s3:::existing-rl-bucket/policies/rl/*"
    ]
    assert resources_for(statements, "s3:ListBucket") == [
        "arn:<Ref:AWS::Partition>:s3:::existing-rl-bucket"
    ]


def test_output_kms_key_as_a_key_and_as_an_arn(native: Native) -> None:
    key = f"<GetAtt:{logical_id(native.key)}.Arn>"
    assert native.request(native.networked)["OutputDataConfig"]["KmsKeyId"] == key
    assert key in resources_for(native.statements(native.networked), "kms:GenerateDataKey")
    assert native.request(native.default_group)["OutputDataConfig"]["KmsKeyId"] == KEY_ARN
    assert KEY_ARN in resources_for(native.statements(native.default_group), "kms:GenerateDataKey")


def _fitted(**overrides: Any) -> RLEstimator:
    app = cdk.App()
    estimator = RLEstimator(cdk.Stack(app, "Bad"), "Estimator", **estimator_kwargs(**overrides))
    estimator.fit()
    return estimator


def test_a_misspelt_deploy_option_lists_the_options() -> None:
    with pytest.raises(ValidationError) as error:
        _fitted().deploy(**DEPLOY, instance_count=2)
    message = str(error.value)
    assert "option='instance_count'" in message
    for option in ("initial_instance_count", "kms_key", "variant_name", "function_url"):
        assert option in message


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        ({"kms_key": 42}, "kms_key=42"),
        ({"function_url": "yes"}, "function_url='yes'"),
    ],
)
def test_deploy_option_of_the_wrong_type_is_refused(option: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as error:
        _fitted().deploy(**DEPLOY, **option)
    assert fragment in str(error.value)
    assert "Allowed:" in str(error.value)


# ============================================================================================
# 4. Tags
# ============================================================================================


@pytest.fixture(scope="module")
def tagged() -> dict[str, Any]:
    app = cdk.App()
    cdk.Tags.of(app).add("team", "rl")
    cdk.Tags.of(app).add("owner", "the-app")
    stack = cdk.Stack(app, "Tagged", env=REGIONAL)
    waiting = RLEstimator(stack, "Waiting", **estimator_kwargs(tags={"owner": "me"}))
    waiting.fit()
    background = RLEstimator(stack, "Background", **estimator_kwargs(tags={"owner": "me"}))
    background.fit(wait=False)
    background.deploy(**DEPLOY)
    template = dict(app.synth().get_stack_by_name("Tagged").template)
    machines = {
        path: definition(template, logical_id(machine))
        for estimator in (waiting, background)
        for machine in cfn_under(estimator, sfn.CfnStateMachine)
        for path in [machine.node.path]
    }
    return {"template": template, "machines": machines}


def _training_tags(tagged: dict[str, Any], estimator: str) -> list[dict[str, str]]:
    machine = tagged["machines"][f"Tagged/{estimator}/StateMachine/Resource"]
    return list(machine["States"]["Train"]["Parameters"]["Tags"])


@pytest.mark.parametrize("estimator", ["Waiting", "Background"])
def test_tags_of_the_app_reach_the_training_job(tagged: dict[str, Any], estimator: str) -> None:
    tags = _training_tags(tagged, estimator)
    text = json.dumps(tags, separators=(",", ":"))
    assert '"Key":"team"' in text
    # Explicit tags win over inherited ones with the same key; each key appears once.
    assert {t["Key"]: t["Value"] for t in tags} == {"owner": "me", "team": "rl"}
    assert len(tags) == 2


def test_tags_of_the_app_reach_what_the_serving_workflow_creates(tagged: dict[str, Any]) -> None:
    (workflow,) = [
        m for path, m in tagged["machines"].items() if path.startswith("Tagged/Background/Serving")
    ]
    requests = [
        state["Parameters"]
        for state in workflow["States"].values()
        if state.get("Type") == "Task"
        and str(state.get("Resource", "")).rsplit(":", 1)[-1]
        in ("createModel", "createEndpointConfig")
    ]
    assert len(requests) == 2, workflow["States"].keys()
    for request in requests:
        tags = {t["Key"]: t.get("Value", t.get("Value.$")) for t in request["Tags"]}
        assert tags["team"] == "rl", tags
        # Only Tags.of(...): the estimator's explicit tags are the training job's.
        assert tags["owner"] == "the-app", tags
        assert "cdk-sagemaker-rl:endpoint" in tags


# ============================================================================================
# 5. Every bad input of the issue
# ============================================================================================

BAD_INPUT = [
    pytest.param({"dependencies": "some/dir"}, ["dependencies='some/dir'", "a list"], id="deps"),
    pytest.param({"tags": "k=v"}, ["tags='k=v'", "a dict"], id="tags-str"),
    pytest.param(
        {"hyperparameters": {"x": object()}},
        ["hyperparameters['x']=<object", "JSON-serialisable"],
        id="hp-object",
    ),
    pytest.param(
        {"hyperparameters": {f"k{i}": i for i in range(101)}},
        ["<101 entries>", "at most 93"],
        id="hp-101",
    ),
    pytest.param(
        {"hyperparameters": {"x": "a" * 2501}},
        ["hyperparameters['x']", "at most 2500 characters"],
        id="hp-long",
    ),
    pytest.param({"environment": {"N": 1}}, ["environment['N']=1", "a string"], id="env"),
    pytest.param({"output_kms_key": "my key"}, ["output_kms_key='my key'", "key ARN"], id="kms"),
    pytest.param(
        {"train_volume_size": 20000}, ["train_volume_size=20000", "1 to 16384"], id="volume"
    ),
    pytest.param(
        {"metric_definitions": [{"Name": "m", "Regex": "(unclosed"}]},
        ["Regex='(unclosed'", "a valid regular expression"],
        id="regex",
    ),
    pytest.param({"tags": {"aws:x": "1"}}, ["key='aws:x'", "not starting with 'aws:'"], id="tag"),
    pytest.param(
        {"train_instance_typ": "ml.m5.large"},
        ["option='train_instance_typ'", "train_instance_type"],
        id="misspelt",
    ),
]


@pytest.mark.parametrize(("overrides", "fragments"), BAD_INPUT)
def test_bad_estimator_input_is_a_validation_error(
    overrides: dict[str, Any], fragments: list[str]
) -> None:
    app = cdk.App()
    with pytest.raises(ValidationError) as error:
        RLEstimator(cdk.Stack(app, "Bad"), "Estimator", **estimator_kwargs(**overrides))
    for fragment in fragments:
        assert fragment in str(error.value)
    assert "Allowed:" in str(error.value)


def test_a_variant_name_sagemaker_refuses() -> None:
    with pytest.raises(ValidationError) as error:
        _fitted().deploy(**DEPLOY, variant_name="bad_name!")
    assert "variant_name='bad_name!'" in str(error.value)
    assert "letters, digits and hyphens" in str(error.value)


def test_deploy_twice_is_refused() -> None:
    estimator = _fitted()
    endpoint = estimator.deploy(**DEPLOY)
    with pytest.raises(ValidationError) as error:
        estimator.deploy(**DEPLOY)
    assert "deploy() was already called" in str(error.value)
    assert endpoint.node.path in str(error.value)


def test_spot_without_max_wait_waits_as_long_as_it_runs() -> None:
    """The documented default: max_wait = max_run, including the run time fit() lowers."""
    app = cdk.App()
    stack = cdk.Stack(app, "Spot")
    given = RLEstimator(stack, "Given", **estimator_kwargs(use_spot_instances=True))
    lowered = RLEstimator(
        stack, "Lowered", **estimator_kwargs(use_spot_instances=True, train_max_run=None)
    )
    for estimator in (given, lowered):
        estimator.fit()
    stopping = [stack.resolve(e.training_request())["StoppingCondition"] for e in (given, lowered)]
    assert stopping == [
        {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600},
        {"MaxRuntimeInSeconds": 41400, "MaxWaitTimeInSeconds": 41400},
    ]
    for stop in stopping:
        assert stop["MaxWaitTimeInSeconds"] == stop["MaxRuntimeInSeconds"]


# ============================================================================================
# 6. The composable pieces in a user's own state machine
# ============================================================================================


@dataclass
class Composed:
    stack: cdk.Stack
    role: iam.Role
    reader: iam.Role
    source: TrainingSource
    step: RLTrainingStep
    machine: sfn.StateMachine
    template: dict[str, Any]


def user_parts(stack: cdk.Stack) -> TrainingJobParts:
    """What a user assembles by hand: their config, image, role, code and output bucket."""
    output = s3_location(s3.Bucket(stack, "Bucket", enforce_ssl=True), "out", "output_path")
    assert output is not None
    return TrainingJobParts(
        config=TrainingConfig(instance_type="ml.m5.large", max_run=3600),
        image=ContainerImage.pytorch_training("2.8").bind(stack, instance_type="ml.m5.large"),
        role=iam.Role(stack, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
        source=TrainingSource(stack, "Code", entry_point="train.py", source_dir=str(EXAMPLE)),
        output=output,
    )


@pytest.fixture(scope="module")
def composed() -> Composed:
    app = cdk.App()
    stack = cdk.Stack(app, "Own")
    parts = user_parts(stack)
    assert isinstance(parts.role, iam.Role)
    role, source = parts.role, parts.source
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    data = s3.Bucket(stack, "Data", enforce_ssl=True)
    step = RLTrainingStep(stack, "Train", parts=parts, job_name="$.jobName", job_name_base="myjobs")
    done = sfn.Pass(stack, "Done")
    machine = sfn.StateMachine(
        stack, "Mine", definition_body=sfn.DefinitionBody.from_chainable(step.next(done))
    )
    data.grant_read(step)
    source.grant_read(reader)
    template = dict(app.synth().get_stack_by_name("Own").template)
    return Composed(stack, role, reader, source, step, machine, template)


def test_the_users_state_machine_role_gets_the_steps_permissions(composed: Composed) -> None:
    machine_role = logical_id(composed.machine.role)
    statements = role_statements(composed.template, {machine_role})
    assert resources_for(statements, "sagemaker:CreateTrainingJob") == [
        "arn:<Ref:AWS::Partition>:sagemaker:<Ref:AWS::Region>:<Ref:AWS::AccountId>:"
        "training-job/myjobs-*"
    ]
    (passing,) = [s for s in statements if "iam:PassRole" in actions(s)]
    assert passing["Resource"] == {"Fn::GetAtt": [logical_id(composed.role), "Arn"]}
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_grants_to_the_step_go_to_the_job_role(composed: Composed) -> None:
    principal = composed.step.grant_principal
    assert composed.stack.resolve(principal.policy_fragment.principal_json) == (
        composed.stack.resolve(composed.role.policy_fragment.principal_json)
    )
    job_role = role_statements(composed.template, {logical_id(composed.role)})
    reads = resources_for(job_role, "s3:GetObject*")
    data = next(b for b in cfn_under(composed.stack, s3.CfnBucket) if "Data" in b.node.path)
    assert f"<GetAtt:{logical_id(data)}.Arn>/*" in reads, reads


def test_the_users_request_is_a_valid_create_training_job(composed: Composed) -> None:
    deployment = Deployment("eu-west-1", stack_name="Own")
    resolver = TemplateResolver(composed.template, deployment)
    machine_id = logical_id(composed.machine)
    states = state_machine_definition(resolver, machine_id)
    arn = resolver.attribute(machine_id, "Ref")
    job = "myjobs" + TIMESTAMP
    execution_input = {"jobName": job}
    context = {
        "Execution": {"Id": f"{arn}:run-1", "Name": "run-1", "Input": execution_input},
        "StateMachine": {"Id": arn, "Name": arn.rsplit(":", 1)[-1]},
    }
    result = walk(states, execution_input, context, deployment)
    (call,) = result.calls
    assert call.integration.operation == "CreateTrainingJob"
    assert request_problems(call.integration, call.request) == []
    assert call.request["TrainingJobName"] == job
    assert call.request["HyperParameters"]["sagemaker_job_name"] == json.dumps(job)
    assert result.ends == [("Done", "Succeed")]


def test_training_source_grants_read_of_exactly_its_archive(composed: Composed) -> None:
    statements = role_statements(composed.template, {logical_id(composed.reader)})
    assert statements == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": composed.stack.resolve(composed.source.object_arn),
        }
    ]
    assert flat(statements[0]["Resource"]).endswith(f"/{composed.source.asset.asset_hash}.gz"), (
        flat(statements[0]["Resource"])
    )


@pytest.mark.parametrize(
    ("job_name_base", "job_name", "fragment"),
    [
        ("my_jobs!", "$.jobName", "job_name_base='my_jobs!'"),
        ("myjobs", "myjobs-1", "job_name='myjobs-1'"),
    ],
)
def test_a_step_with_a_bad_name_is_refused(
    job_name_base: str, job_name: str, fragment: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValidationError) as error:
        RLTrainingStep(
            stack,
            "Train",
            parts=user_parts(stack),
            job_name=job_name,
            job_name_base=job_name_base,
        )
    assert fragment in str(error.value)
    assert "Allowed:" in str(error.value)


# ============================================================================================
# 7. The reference stack in an app without the recommended feature flags
# ============================================================================================


@pytest.fixture(scope="module")
def flagless_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("flagless")
    context = {ENVIRONMENTS_KEY: cdk_json_context()[ENVIRONMENTS_KEY], "environment": "dev"}
    build_app(context, outdir=str(out)).synth()
    yield out / "RLCartPole-dev.template.json"


def test_reference_stack_lints_clean_without_feature_flags(flagless_template: Path) -> None:
    result = cfn_lint([flagless_template])
    assert "W3045" not in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
