"""Observability of one estimator: dashboard, training-metric searches, alarms and their topic.

Two apps are synthesized once each for the module: ``observed`` (a real RLEndpoint, default
options, the three cdk-nag packs, cfn-lint) and ``variants`` (one stack per option: a given topic
and given endpoint alarms, each off switch, a chosen metric, two bases of which one holds the
other's tokens). The checks without a synth build constructs only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

from cdk_sagemaker_rl import ContainerImage, RLEndpoint, ServingPlan, ValidationError
from cdk_sagemaker_rl.observability import (
    EstimatorMonitoring,
    Monitoring,
    search_expression,
    training_metric,
)
from cdk_sagemaker_rl.observability.training_metrics import (
    holds,
    ordered_metric_names,
    register_base,
)
from tests.conftest import cdk_json_context
from tests.test_nag_packs import acknowledged, violations
from tests.test_reference_app import cfn_lint
from tests.test_training import ENV, render

BASE = "rlcartpole-dev-trainer-1a2b3c4d"
REWARD = {"Name": "episode_reward_mean", "Regex": "episode_reward_mean: ([-0-9.]+)"}
LOSS = {"Name": "loss", "Regex": "loss=([-0-9.]+)"}
DEFINITIONS = [LOSS, REWARD]
PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5")
SEE = "README.md#monitoring"


def reward_search(base: str = BASE, name: str = "episode_reward_mean", tail: str = "") -> str:
    return (
        f'SEARCH(\'{{"/aws/sagemaker/TrainingJobs",Host}} MetricName="{name}" '
        f"Host={base} Host=algo-1{tail}', 'Average', 60)"
    )


class StandIn:
    """An endpoint that is not an RLEndpoint: what the MonitoredEndpoint protocol asks for."""

    endpoint_name = "stand-in"
    variant_name = "Blue"

    def metric(self, metric_name: str, **props: Any) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": self.variant_name},
            **props,
        )

    def metric_invocations(self) -> cloudwatch.Metric:
        return self.metric("Invocations", statistic="Sum")

    def metric_model_latency(self) -> cloudwatch.Metric:
        return self.metric("ModelLatency")

    def metric_invocation4xx_errors(self) -> cloudwatch.Metric:
        return self.metric("Invocation4XXErrors", statistic="Sum")

    def metric_invocation5xx_errors(self) -> cloudwatch.Metric:
        return self.metric("Invocation5XXErrors", statistic="Sum")

    def metric_invocation_model_errors(self) -> cloudwatch.Metric:
        return self.metric("InvocationModelErrors", statistic="Sum")

    def metric_instance(self, metric_name: str, **props: Any) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="/aws/sagemaker/Endpoints",
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": self.variant_name},
            **props,
        )

    def metric_failed_requests(self, period: cdk.Duration | None = None) -> cloudwatch.IMetric:
        return cloudwatch.MathExpression(
            expression="MAX([FILL(a, 0), FILL(b, 0)])",
            using_metrics={
                "a": self.metric_invocation5xx_errors(),
                "b": self.metric_invocation_model_errors(),
            },
            period=period or cdk.Duration.minutes(5),
        )


def training_machine(stack: cdk.Stack) -> sfn.StateMachine:
    return sfn.StateMachine(
        stack,
        "Training",
        definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Train")),
    )


def monitor(stack: cdk.Stack, base: str = BASE, **kwargs: Any) -> EstimatorMonitoring:
    return EstimatorMonitoring(
        stack,
        "Monitoring",
        name_base=base,
        metric_definitions=kwargs.pop("metric_definitions", DEFINITIONS),
        state_machine=kwargs.pop("state_machine", None) or training_machine(stack),
        **kwargs,
    )


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def dashboards(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: json.loads(render(resource["Properties"]["DashboardBody"]))
        for logical_id, resource in of_type(template, "AWS::CloudWatch::Dashboard").items()
    }


def expressions(body: dict[str, Any]) -> list[str]:
    return [
        entry["expression"]
        for widget in body["widgets"]
        for line in widget["properties"].get("metrics", [])
        for entry in line
        if isinstance(entry, dict) and "expression" in entry
    ]


def titles(body: dict[str, Any]) -> list[str]:
    return [w["properties"].get("title", "") for w in body["widgets"]]


# ============================================================================================
# The observed stack: a real RLEndpoint, default options, three nag packs, cfn-lint
# ============================================================================================
@dataclass
class Observed:
    template: dict[str, Any]
    path: Path
    report: dict[str, Any]
    monitoring: EstimatorMonitoring
    stack: cdk.Stack

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Observed:
    out = tmp_path_factory.mktemp("observed")
    app = cdk.App(outdir=str(out), context=cdk_json_context())
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(), HIPAASecurityChecks(app), NIST80053R5Checks(app)
    )
    stack = cdk.Stack(app, "Observed", env=ENV)
    endpoint = RLEndpoint(
        stack,
        "Policy",
        model_data_url="s3://bucket/model.tar.gz",
        model_data_object_arn="arn:aws:s3:::bucket/model.tar.gz",
        plan=ServingPlan(
            "custom", ContainerImage.from_uri("111122223333.dkr.ecr.us-west-2.amazonaws.com/p:1")
        ),
        instance_type="ml.m5.large",
    )
    monitoring = monitor(stack)
    monitoring.add_endpoint(endpoint)
    try:
        app.synth()
    except RuntimeError as err:  # findings outside this package fail the synth after the report
        if "ValidationFailed" not in str(err):
            raise
    path = out / "Observed.template.json"
    return Observed(
        template=json.loads(path.read_text()),
        path=path,
        report=json.loads((out / "validation-report.json").read_text()),
        monitoring=monitoring,
        stack=stack,
    )


def test_one_dashboard_charts_each_metric_definition_reward_first(observed: Observed) -> None:
    ((logical_id, body),) = dashboards(observed.template).items()
    assert logical_id == observed.logical_id(observed.monitoring.dashboard)
    assert logical_id.startswith("MonitoringDashboard")
    found = expressions(body)
    assert found.index(reward_search()) < found.index(reward_search(name="loss"))
    assert titles(body).index("Training: episode_reward_mean") < titles(body).index(
        "Training: loss"
    )
    assert body["start"] == "-P1D"
    # The dashboard's name is CloudFormation's: nothing random at synth.
    (dashboard,) = of_type(observed.template, "AWS::CloudWatch::Dashboard").values()
    assert "DashboardName" not in dashboard["Properties"]


def test_each_run_is_one_line_labelled_with_its_host(observed: Observed) -> None:
    (body,) = dashboards(observed.template).values()
    (reward,) = [
        line[0]
        for w in body["widgets"]
        for line in w["properties"].get("metrics", [])
        if line and isinstance(line[0], dict) and line[0].get("expression") == reward_search()
    ]
    assert reward["label"] == "${PROP('Dim.Host')}"
    assert reward["period"] == 60


def test_dashboard_charts_the_endpoint(observed: Observed) -> None:
    (body,) = dashboards(observed.template).values()
    assert {"Invocations", "Model latency (microseconds)", "Errors", "Instances"} <= set(
        titles(body)
    )
    text = json.dumps(body, separators=(",", ":"))
    endpoint_name = observed.monitoring._endpoint.endpoint_name  # type: ignore[union-attr]
    for metric in (
        "Invocations",
        "ModelLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "InvocationModelErrors",
        "InvocationsPerInstance",
    ):
        assert f'["AWS/SageMaker","{metric}","EndpointName","{endpoint_name}",' in text
    assert f'["/aws/sagemaker/Endpoints","CPUUtilization","EndpointName","{endpoint_name}"' in text
    assert "invocations / perInstance" in text
    assert '"p99"' in text


def test_alarms_notify_the_created_topic(observed: Observed) -> None:
    (topic_id,) = of_type(observed.template, "AWS::SNS::Topic")
    assert topic_id.startswith("MonitoringAlarmTopic")
    alarms = {
        k: r
        for k, r in of_type(observed.template, "AWS::CloudWatch::Alarm").items()
        if k.startswith("Monitoring")
    }
    assert sorted(k.rsplit("Alarm", 1)[0] for k in alarms) == [
        "MonitoringEndpointErrors",
        "MonitoringTrainingFailed",
    ]
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"
        assert alarm["Properties"]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_training_failed_alarm_counts_failed_and_timed_out_executions(observed: Observed) -> None:
    alarm = observed.monitoring.training_failed_alarm
    assert alarm is not None
    props = observed.template["Resources"][observed.logical_id(alarm)]["Properties"]
    assert props["Threshold"] == 1
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "FILL(failed, 0) + FILL(timedOut, 0)"
    watched = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]
        for m in props["Metrics"]
        if "MetricStat" in m
    }
    assert set(watched) == {"ExecutionsFailed", "ExecutionsTimedOut"}
    for stat in watched.values():
        assert stat["Stat"] == "Sum"
        (dimension,) = stat["Metric"]["Dimensions"]
        assert dimension["Name"] == "StateMachineArn"
        assert dimension["Value"]["Ref"].startswith("Training")


def test_endpoint_errors_alarm_takes_the_larger_error_count(observed: Observed) -> None:
    (alarm,) = [
        r
        for k, r in of_type(observed.template, "AWS::CloudWatch::Alarm").items()
        if k.startswith("MonitoringEndpointErrorsAlarm")
    ]
    props = alarm["Properties"]
    assert props["Threshold"] == 5
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "MAX([FILL(errors5xx, 0), FILL(modelErrors, 0)])"
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
    assert names == {"Invocation5XXErrors", "InvocationModelErrors"}


def test_topic_is_tls_only_and_lets_this_accounts_alarms_publish(observed: Observed) -> None:
    (topic,) = of_type(observed.template, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" not in topic.get("Properties", {})
    (policy,) = of_type(observed.template, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": "111122223333"}
    assert render(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:aws:cloudwatch:us-west-2:111122223333:alarm:*"
    )


def test_cfn_lint_is_clean(observed: Observed) -> None:
    result = cfn_lint([observed.path])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("pack", PACKS)
def test_no_nag_findings_on_monitoring(observed: Observed, pack: str) -> None:
    found = violations(observed.report, pack, "Observed")
    assert sorted(f for f in found if f[0].startswith("Monitoring/")) == []


@pytest.mark.parametrize("pack", PACKS)
def test_the_unencrypted_topic_is_the_one_acknowledgement(observed: Observed, pack: str) -> None:
    found = {f for f in acknowledged(observed.report, pack, "Observed") if f[0].startswith("Mon")}
    expected = (
        set() if pack == "AwsSolutions" else {("Monitoring/AlarmTopic/Resource", "SNSEncryptedKMS")}
    )
    assert found == expected


# ============================================================================================
# Variants: each option in its own stack of one app, synthesized once
# ============================================================================================
@dataclass
class Variants:
    templates: dict[str, dict[str, Any]]
    given_alarm_id: str
    given_topic_id: str


@pytest.fixture(scope="module")
def variants() -> Variants:
    app = cdk.App(context=cdk_json_context())
    stacks = {
        name: cdk.Stack(app, name, env=ENV)
        for name in ("Given", "NoDashboard", "NoAlarms", "Disabled", "Chosen", "Tokens", "Empty")
    }
    given = stacks["Given"]
    topic = sns.Topic(given, "OpsTopic")
    stand_in = StandIn()
    rollback = cloudwatch.Alarm(
        given,
        "Rollback",
        metric=stand_in.metric_invocation5xx_errors(),
        threshold=1,
        evaluation_periods=1,
    )
    monitor(given, options=Monitoring(alarm_topic=topic)).add_endpoint(stand_in, alarms=[rollback])
    monitor(stacks["NoDashboard"], options=Monitoring(dashboard=False)).add_endpoint(StandIn())
    monitor(stacks["NoAlarms"], options=Monitoring(alarms=False)).add_endpoint(StandIn())
    monitor(stacks["Disabled"], options=Monitoring.disabled()).add_endpoint(StandIn())
    monitor(
        stacks["Chosen"],
        options=Monitoring(training_metric_names=["loss"], dashboard_name="rl-ops"),
    )
    # "cartpole" is a run of tokens inside "my-cartpole": its search must exclude that base.
    tokens = stacks["Tokens"]
    machine = training_machine(tokens)
    for construct_id, base in (("Short", "cartpole"), ("Long", "my-cartpole")):
        EstimatorMonitoring(
            tokens,
            construct_id,
            name_base=base,
            metric_definitions=[REWARD],
            state_machine=machine,
            options=Monitoring(alarms=False),
        )
    monitor(stacks["Empty"], metric_definitions=[])
    assembly = app.synth()
    return Variants(
        templates={n: assembly.get_stack_by_name(n).template for n in stacks},
        given_alarm_id=str(given.get_logical_id(rollback.node.default_child)),
        given_topic_id=str(given.get_logical_id(topic.node.default_child)),
    )


def test_a_given_topic_is_used_and_none_created(variants: Variants) -> None:
    template = variants.templates["Given"]
    assert list(of_type(template, "AWS::SNS::Topic")) == [variants.given_topic_id]
    assert of_type(template, "AWS::SNS::TopicPolicy") == {}
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": variants.given_topic_id}]


def test_given_endpoint_alarms_replace_the_endpoint_errors_alarm(variants: Variants) -> None:
    template = variants.templates["Given"]
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert variants.given_alarm_id in alarms
    assert not [k for k in alarms if "EndpointErrors" in k]
    (body,) = dashboards(template).values()
    (status,) = [w for w in body["widgets"] if w["properties"].get("title") == "Endpoint alarms"]
    assert status["type"] == "alarm"
    assert status["properties"]["alarms"] == [f"<GetAtt:{variants.given_alarm_id}.Arn>"]


def test_dashboard_off(variants: Variants) -> None:
    template = variants.templates["NoDashboard"]
    assert dashboards(template) == {}
    assert len(of_type(template, "AWS::CloudWatch::Alarm")) == 2
    assert len(of_type(template, "AWS::SNS::Topic")) == 1


def test_alarms_off(variants: Variants) -> None:
    template = variants.templates["NoAlarms"]
    assert of_type(template, "AWS::CloudWatch::Alarm") == {}
    assert of_type(template, "AWS::SNS::Topic") == {}
    (body,) = dashboards(template).values()
    assert "Invocations" in titles(body)
    assert not [w for w in body["widgets"] if w["type"] == "alarm"]


def test_everything_off(variants: Variants) -> None:
    template = variants.templates["Disabled"]
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert (
        not {
            "AWS::CloudWatch::Dashboard",
            "AWS::CloudWatch::Alarm",
            "AWS::SNS::Topic",
        }
        & kinds
    )


def test_chosen_metrics_and_dashboard_name(variants: Variants) -> None:
    template = variants.templates["Chosen"]
    (dashboard,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "rl-ops"
    (body,) = dashboards(template).values()
    assert expressions(body) == [reward_search(name="loss")]


def test_a_base_inside_another_excludes_it(variants: Variants) -> None:
    found = {
        logical_id: expressions(body)
        for logical_id, body in dashboards(variants.templates["Tokens"]).items()
    }
    assert len(found) == 2  # one dashboard per estimator
    (short,) = [e for k, e in found.items() if k.startswith("Short")]
    (long,) = [e for k, e in found.items() if k.startswith("Long")]
    assert short == [reward_search("cartpole", tail=" NOT Host=my-cartpole")]
    assert long == [reward_search("my-cartpole")]


def test_no_metric_definitions_says_how_to_get_them(variants: Variants) -> None:
    (body,) = dashboards(variants.templates["Empty"]).values()
    assert expressions(body) == []
    assert any("metric_definitions" in w["properties"].get("markdown", "") for w in body["widgets"])


# ============================================================================================
# Without a synth
# ============================================================================================
def test_training_metric_is_a_search_of_this_estimators_first_hosts() -> None:
    metric = training_metric(BASE, "episode_reward_mean")
    assert isinstance(metric, cloudwatch.SearchExpression)
    assert metric.expression == reward_search()
    custom = training_metric(
        BASE, "loss", period=cdk.Duration.minutes(5), statistic="Maximum", label="runs"
    )
    assert custom.expression == reward_search(name="loss").replace(
        "'Average', 60", "'Maximum', 300"
    )


def test_exact_terms_are_escaped() -> None:
    expression = search_expression(BASE, 'reward "best" (x)\\y')
    assert 'MetricName="reward \\"best\\" \\(x\\)\\\\y"' in expression


def test_rewards_lead_unless_names_are_chosen() -> None:
    assert ordered_metric_names(DEFINITIONS, None) == ["episode_reward_mean", "loss"]
    assert ordered_metric_names(DEFINITIONS, ["loss"]) == ["loss"]


@pytest.fixture
def stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Checks", env=ENV)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"dashboard": "yes"}, "Monitoring dashboard='yes'"),
        ({"alarms": 1}, "Monitoring alarms=1"),
        ({"alarm_topic": "arn:aws:sns:us-west-2:111122223333:ops"}, "aws_sns.ITopic"),
        ({"dashboard_name": "rl ops"}, "Monitoring dashboard_name='rl ops'"),
        ({"dashboard_name": "x" * 256}, "1-255 letters"),
        ({"endpoint_error_threshold": 0}, "at least 1"),
        ({"endpoint_error_threshold": True}, "endpoint_error_threshold=True"),
        ({"alarm_period": cdk.Duration.seconds(30)}, "whole number of minutes"),
        ({"alarm_period": cdk.Duration.days(2)}, "whole number of minutes"),
        ({"alarm_period": 300}, "aws_cdk.Duration"),
        ({"training_metric_names": "loss"}, "training_metric_names='loss'"),
        ({"training_metric_names": ["loss", "loss"]}, "each once"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as error:
        Monitoring(**kwargs)
    assert fragment in str(error.value)
    assert SEE in str(error.value)


def test_a_topic_with_alarms_off_is_refused(stack: cdk.Stack) -> None:
    with pytest.raises(ValidationError, match="alarms=False"):
        Monitoring(alarms=False, alarm_topic=sns.Topic(stack, "T"))


def test_a_topic_on_the_aws_managed_key_is_refused(stack: cdk.Stack) -> None:
    managed = kms.Alias.from_alias_name(stack, "Managed", "alias/aws/sns")
    with pytest.raises(ValidationError, match=r"cloudwatch\.amazonaws\.com"):
        Monitoring(alarm_topic=sns.Topic(stack, "T", master_key=managed))
    own = kms.Key(stack, "Own", enable_key_rotation=True)
    assert Monitoring(alarm_topic=sns.Topic(stack, "Mine", master_key=own)).alarms


def test_disabled_is_nothing() -> None:
    assert not Monitoring.disabled().enabled
    assert Monitoring().enabled


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name_base": "bad_base"}, "name_base='bad_base'"),
        ({"metric_definitions": {"Name": "x"}}, "metric_definitions="),
        ({"metric_definitions": [{"Regex": "x"}]}, "metric_definitions="),
        ({"state_machine": "arn:aws:states:..."}, "aws_stepfunctions.IStateMachine"),
        ({"options": {"alarms": False}}, "a Monitoring(...)"),
        (
            {"options": Monitoring(training_metric_names=["reward"])},
            "training_metric_names='reward'",
        ),
    ],
)
def test_bad_construct_input_is_refused(
    stack: cdk.Stack, kwargs: dict[str, Any], fragment: str
) -> None:
    arguments: dict[str, Any] = {
        "name_base": BASE,
        "metric_definitions": DEFINITIONS,
        "state_machine": training_machine(stack),
        **kwargs,
    }
    with pytest.raises(ValidationError) as error:
        EstimatorMonitoring(stack, "Monitoring", **arguments)
    assert fragment in str(error.value)
    assert SEE in str(error.value)


def test_bad_training_metric_input_is_refused() -> None:
    for kwargs, fragment in (
        ({"metric_name": "it's"}, "single quotes"),
        ({"statistic": "p99"}, "statistic='p99'"),
        ({"period": cdk.Duration.seconds(90)}, "whole minutes"),
        ({"metric_name": "x" * 300}, "1-255 characters"),
    ):
        arguments: dict[str, Any] = {"metric_name": "reward", **kwargs}
        with pytest.raises(ValidationError, match=fragment):
            training_metric(BASE, **arguments)


def test_bad_endpoints_are_refused(stack: cdk.Stack) -> None:
    monitoring = monitor(stack)
    with pytest.raises(ValidationError, match="metric_invocations"):
        monitoring.add_endpoint(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="IAlarm"):
        monitoring.add_endpoint(StandIn(), alarms=["not an alarm"])  # type: ignore[list-item]
    monitoring.add_endpoint(StandIn())
    with pytest.raises(ValidationError, match="already called"):
        monitoring.add_endpoint(StandIn())


@pytest.mark.parametrize(
    ("outer", "inner", "held"),
    [
        ("my-cartpole", "cartpole", True),
        ("CartPole-v2", "pole", True),
        ("CartPole", "cart-pole", True),
        ("rlcartpole-dev-trainer-1a2b3c4d", "cartpole", False),
        ("mycartpole", "cartpole", False),
        ("cartpole-dev-1a2b3c4d5", "cartpole-dev-1a2b3c4d", True),  # digits end tokens: held
        ("cartpole-dev-1a2b3c4e", "cartpole-dev-1a2b3c4d", False),
    ],
)
def test_token_runs(outer: str, inner: str, held: bool) -> None:
    assert holds(outer, inner) is held


def test_exclusions_spare_bases_that_look_like_this_ones_runs() -> None:
    app = cdk.App()
    short = register_base(app, "cartpole")
    for other in ("my-cartpole", "cartpole-2024", "rlcartpole", "CartPole-v2"):
        register_base(app, other)
    # cartpole-2024 holds "cartpole-2024-05-..." (this base's own runs): never excluded.
    assert short() == ["CartPole-v2", "my-cartpole"]
    metric = training_metric(BASE, "reward", excluding=[f"x-{BASE}"])
    assert metric.expression.endswith(f"Host=algo-1 NOT Host=x-{BASE}', 'Average', 60)")
