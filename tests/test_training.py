"""RLEstimator: template assertions on the training workflow, its IAM and deploy-time run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from cdk_sagemaker_rl import ContainerImage, RLEstimator, RLFramework, RLToolkit, ValidationError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cartpole"
ENV = cdk.Environment(account="111122223333", region="us-west-2")


def render(value: Any) -> str:
    """Flatten an intrinsic-function string into text with readable placeholders."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    if "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    if "Fn::Sub" in value:
        return str(value["Fn::Sub"])
    if "Fn::Select" in value:
        index, (_, (separator, source)) = value["Fn::Select"][0], *value["Fn::Select"][1].items()
        return f"<Select:{index}:Split:{separator}:{render(source)}>"
    raise AssertionError(f"unexpected intrinsic {value}")


def state_machine_definition(template: Template) -> dict[str, Any]:
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    return dict(json.loads(render(machine["Properties"]["DefinitionString"])))


def estimator_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "entry_point": "train.py",
        "source_dir": str(EXAMPLE),
        "toolkit": RLToolkit.RAY,
        "toolkit_version": "1.6.0",
        "framework": RLFramework.TENSORFLOW,
        "train_instance_type": "ml.c5.2xlarge",
        "train_instance_count": 2,
        "train_volume_size": 50,
        "train_max_run": cdk.Duration.hours(2),
        "hyperparameters": {"rl.training.config.lr": 0.001, "stop": {"episodes": 5}, "name": "x"},
        "job_name": "cartpole-ray",
    }
    kwargs.update(overrides)
    return kwargs


def make_stack(**overrides: Any) -> tuple[cdk.Stack, RLEstimator]:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=ENV)
    estimator = RLEstimator(stack, "Estimator", **estimator_kwargs(**overrides))
    return stack, estimator


@pytest.fixture(scope="module")
def fitted() -> tuple[Template, RLEstimator]:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=ENV)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    estimator = RLEstimator(stack, "Estimator", output_kms_key=key, **estimator_kwargs())
    estimator.fit({"train": "s3://my-data/cartpole/train", "eval": "s3://my-data/cartpole/eval"})
    estimator.deploy(instance_type="ml.c5.large", initial_instance_count=2, kms_key=key)
    return Template.from_stack(stack), estimator


def test_training_task_sends_the_sdk_request(fitted: tuple[Template, RLEstimator]) -> None:
    template, _ = fitted
    train = state_machine_definition(template)["States"]["Train"]
    assert train["Resource"] == "arn:<Ref:AWS::Partition>:states:::sagemaker:createTrainingJob.sync"
    params = train["Parameters"]
    assert params["TrainingJobName.$"] == "$$.Execution.Name"
    assert params["AlgorithmSpecification"] == {
        "TrainingImage": "462105765813.dkr.ecr.us-west-2.amazonaws.com/"
        "sagemaker-rl-ray-container:ray-1.6.0-tf-cpu-py37",
        "TrainingInputMode": "File",
        "MetricDefinitions": [
            {
                "Name": "episode_reward_mean",
                "Regex": "episode_reward_mean: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)",
            },
            {
                "Name": "episode_reward_max",
                "Regex": "episode_reward_max: ([-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?)",
            },
        ],
    }
    assert params["ResourceConfig"] == {
        "InstanceCount": 2,
        "InstanceType": "ml.c5.2xlarge",
        "VolumeSizeInGB": 50,
    }
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert params["OutputDataConfig"]["S3OutputPath"].startswith("s3://<Ref:EstimatorArtifacts")
    assert params["OutputDataConfig"]["KmsKeyId"].startswith("<GetAtt:Key")
    hps = params["HyperParameters"]
    assert hps["rl.training.config.lr"] == "0.001"
    assert hps["stop"] == '{"episodes": 5}'
    assert hps["name"] == '"x"'
    assert hps["sagemaker_program"] == '"train.py"'
    assert hps["sagemaker_estimator"] == '"RLEstimator"'
    assert hps["sagemaker_container_log_level"] == "20"
    assert hps["sagemaker_region"] == '"<Ref:AWS::Region>"'
    assert hps["sagemaker_submit_directory"].startswith('"s3://cdk-')
    assert hps["sagemaker_submit_directory"].endswith('.gz"')
    assert hps["sagemaker_job_name.$"] == "States.Format('\"{}\"', $$.Execution.Name)"
    assert params["InputDataConfig"] == [
        {
            "ChannelName": channel,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"s3://my-data/cartpole/{channel}",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
        for channel in ("train", "eval")
    ]


def test_state_machine_logs_everything_and_traces(fitted: tuple[Template, RLEstimator]) -> None:
    template, _ = fitted
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "LoggingConfiguration": Match.object_like(
                {"Level": "ALL", "IncludeExecutionData": True}
            ),
            "TracingConfiguration": {"Enabled": True},
        },
    )


def test_failure_is_caught_and_reported_to_the_waiting_deploy(
    fitted: tuple[Template, RLEstimator],
) -> None:
    states = state_machine_definition(fitted[0])["States"]
    (catch,) = states["Train"]["Catch"]
    assert catch == {
        "ErrorEquals": ["States.ALL"],
        "ResultPath": "$.Error",
        "Next": "DeployWaitingForFailure?",
    }
    assert states["ReportFailure"]["Parameters"]["Status"] == "FAILURE"
    assert states["ReportFailure"]["Next"] == "TrainingFailed"
    assert states["TrainingFailed"]["Type"] == "Fail"
    assert states["ReportSuccess"]["Parameters"]["ModelDataUrl.$"] == "$.Training.ModelDataUrl"


def _policy_statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    assert statements, f"no policy for {role_prefix}"
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_no_policy_grants_a_wildcard_action(fitted: tuple[Template, RLEstimator]) -> None:
    for policy in fitted[0].find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _actions(statement):
                assert "*" not in action, (action, statement)


def test_state_machine_passes_only_the_execution_role_to_sagemaker(
    fitted: tuple[Template, RLEstimator],
) -> None:
    statements = _policy_statements(fitted[0], "EstimatorStateMachineRole")
    (pass_role,) = [s for s in statements if "iam:PassRole" in _actions(s)]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert pass_role["Resource"]["Fn::GetAtt"][0].startswith("EstimatorExecutionRole")
    (jobs,) = [s for s in statements if "sagemaker:CreateTrainingJob" in _actions(s)]
    assert render(jobs["Resource"]).endswith(":training-job/cartpole-ray-*")
    (events,) = [s for s in statements if "events:PutRule" in _actions(s)]
    assert render(events["Resource"]).endswith(
        ":rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"
    )


def test_execution_role_is_scoped_to_our_prefixes(fitted: tuple[Template, RLEstimator]) -> None:
    statements = _policy_statements(fitted[0], "EstimatorExecutionRole")
    resources = {render(r) for s in statements for r in _as_list(s["Resource"])}
    assert any(
        r.startswith("arn:<Ref:AWS::Partition>:s3:::<Ref:EstimatorArtifacts")
        and r.endswith("/training/*")
        for r in resources
    )
    assert "arn:<Ref:AWS::Partition>:s3:::my-data/cartpole/train/*" in resources
    assert "arn:<Ref:AWS::Partition>:s3:::my-data" in resources
    assert any(":repository/sagemaker-rl-ray-container" in r for r in resources)
    (metrics,) = [s for s in statements if "cloudwatch:PutMetricData" in _actions(s)]
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_artifact_bucket_is_locked_down_and_retained(fitted: tuple[Template, RLEstimator]) -> None:
    template = fitted[0]
    buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": Match.any_value()}}
    )
    (bucket,) = buckets.values()
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_deploy_waits_for_training_then_serves(fitted: tuple[Template, RLEstimator]) -> None:
    template, estimator = fitted
    (condition_id,) = template.find_resources("AWS::CloudFormation::WaitCondition").keys()
    (handle_id,) = template.find_resources("AWS::CloudFormation::WaitConditionHandle").keys()
    condition = template.to_json()["Resources"][condition_id]
    assert condition["Properties"]["Handle"] == {"Ref": handle_id}
    # 2 h of training plus 30 min of head-room.
    assert condition["Properties"]["Timeout"] == str(2 * 3600 + 1800)
    (run_id,) = template.find_resources("Custom::RLTrainingRun").keys()
    assert run_id in condition["DependsOn"]
    run = template.to_json()["Resources"][run_id]["Properties"]
    assert run["WaitHandleUrl"] == {"Ref": handle_id}
    assert run["JobNameBase"] == "cartpole-ray"
    assert run["Fingerprint"] == estimator.training_run.fingerprint

    (model_id,) = template.find_resources("AWS::SageMaker::Model").keys()
    model = template.to_json()["Resources"][model_id]
    assert condition_id in model["DependsOn"]
    assert model["Properties"]["PrimaryContainer"]["ModelDataUrl"] == {
        "Fn::GetAtt": [run_id, "ModelDataUrl"]
    }
    # Ray + TensorFlow policies are served by TensorFlow Serving (the SDK refused Ray).
    assert "tensorflow-inference:2.5" in render(model["Properties"]["PrimaryContainer"]["Image"])
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "ModelName": {"Fn::GetAtt": [model_id, "ModelName"]},
                        "InstanceType": "ml.c5.large",
                        "InitialInstanceCount": 2,
                    }
                )
            ],
            "KmsKeyId": Match.any_value(),
        },
    )
    (config_id,) = template.find_resources("AWS::SageMaker::EndpointConfig").keys()
    (endpoint_id,) = template.find_resources("AWS::SageMaker::Endpoint").keys()
    endpoint = template.to_json()["Resources"][endpoint_id]["Properties"]
    # Named at synth time (so the model role's log permission can name its log group).
    assert {k: v for k, v in endpoint.items() if k != "DeploymentConfig"} == {
        "EndpointName": "Test-Estimator-Serving-6C5172EF",
        "EndpointConfigName": {"Fn::GetAtt": [config_id, "EndpointConfigName"]},
    }
    # The default update: blue/green, rolled back by the endpoint's own alarms.
    assert len(endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]) == 2
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "predict.index.handler",
            "Environment": {
                "Variables": Match.object_like({"ENDPOINT_NAME": "Test-Estimator-Serving-6C5172EF"})
            },
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
        },
    )


def test_serving_roles_are_scoped(fitted: tuple[Template, RLEstimator]) -> None:
    template = fitted[0]
    (endpoint_id,) = template.find_resources("AWS::SageMaker::Endpoint").keys()
    predict = _policy_statements(template, "EstimatorServingPredictFunctionRole")
    invoke = [s for s in predict if "sagemaker:InvokeEndpoint" in _actions(s)]
    assert invoke == [
        {"Action": "sagemaker:InvokeEndpoint", "Effect": "Allow", "Resource": {"Ref": endpoint_id}}
    ]
    model_role = _policy_statements(template, "EstimatorServingRole")
    (read,) = [s for s in model_role if "s3:GetObject" in _actions(s)]
    # Exactly the trained artifact: the bucket/key part of the run's ModelDataUrl.
    (run_id,) = template.find_resources("Custom::RLTrainingRun").keys()
    assert render(read["Resource"]) == (
        f"arn:<Ref:AWS::Partition>:s3:::<Select:1:Split:s3://:<GetAtt:{run_id}.ModelDataUrl>>"
    )


def test_outputs_name_what_a_user_needs(fitted: tuple[Template, RLEstimator]) -> None:
    outputs = " ".join(fitted[0].to_json()["Outputs"])
    for name in (
        "TrainingJobName",
        "ModelDataUrl",
        "StateMachineArn",
        "TrainingLogs",
        "EndpointName",
        "PredictFunctionName",
        "PredictFunctionArn",
    ):
        assert name in outputs


def _condition_logical_id(**overrides: Any) -> str:
    stack, estimator = make_stack(**overrides)
    estimator.fit()
    (logical_id,) = Template.from_stack(stack).find_resources("AWS::CloudFormation::WaitCondition")
    return str(logical_id)


def test_retrain_only_when_the_training_definition_changes() -> None:
    first = _condition_logical_id()
    assert _condition_logical_id() == first
    assert _condition_logical_id(hyperparameters={"changed": 1}) != first
    assert _condition_logical_id(train_instance_type="ml.c5.4xlarge") != first
    assert _condition_logical_id(training_revision="2") != first


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"train_instance_count": 0}, "train_instance_count=0"),
        ({"train_volume_size": 0}, "train_volume_size=0"),
        ({"train_max_run": 0}, "train_max_run=0"),
        ({"train_max_run": 40 * 24 * 3600}, "28-day"),
        ({"job_name": "bad_name!"}, "job_name='bad_name!'"),
        ({"input_mode": "Stream"}, "input_mode='Stream'"),
        ({"output_path": "/tmp/out"}, "output_path='/tmp/out'"),
        ({"hyperparameters": {"sagemaker_program": "x.py"}}, "sagemaker_program"),
        ({"toolkit": "keras"}, "keras"),
        ({"toolkit_version": "9.9.9"}, "9.9.9"),
        ({"framework": RLFramework.MXNET}, "mxnet"),
        ({"toolkit": None}, "Please provide `toolkit`"),
        ({"train_instance_type": "ml.m4.huge"}, "ml.m4.huge"),
        ({"entry_point": "missing.py"}, "missing.py"),
        ({"source_dir": "/does/not/exist"}, "/does/not/exist"),
        ({"dependencies": ["/no/such/lib"]}, "/no/such/lib"),
        ({"instance_type": "ml.c5.xlarge"}, "instance_type"),
        ({"max_wait": 100}, "use_spot_instances"),
    ],
)
def test_bad_input_is_a_clear_synth_time_error(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as error:
        make_stack(**overrides)
    assert fragment in str(error.value)


def test_gpu_instance_for_vw_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"ml\.p3\.2xlarge.*cpu only"):
        make_stack(
            toolkit=RLToolkit.VW,
            toolkit_version="8.7.0",
            framework=None,
            train_instance_type="ml.p3.2xlarge",
        )


def test_region_without_the_image_is_refused() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account="111122223333", region="af-south-1"))
    with pytest.raises(ValidationError, match="af-south-1"):
        RLEstimator(stack, "Estimator", **estimator_kwargs())


def test_deploy_time_wait_longer_than_12_hours_is_refused() -> None:
    _, estimator = make_stack(train_max_run=cdk.Duration.hours(12))
    with pytest.raises(ValidationError, match="12 h"):
        estimator.fit()


def test_deploy_before_fit_is_refused() -> None:
    _, estimator = make_stack()
    with pytest.raises(ValidationError, match="call fit\\(\\) first"):
        estimator.deploy(instance_type="ml.c5.large")


def test_image_with_toolkit_arguments_warns() -> None:
    stack, _ = make_stack(image_uri="123456789012.dkr.ecr.us-west-2.amazonaws.com/mine:1")
    warnings = [
        entry
        for entry in stack.node.find_all()
        for entry in entry.node.metadata
        if entry.type == "aws:cdk:warning"
    ]
    assert any("toolkit arguments are ignored" in str(w.data) for w in warnings)


def test_seed_and_sdk_names_are_aliases_but_not_both() -> None:
    _, estimator = make_stack(train_instance_type=None, instance_type="ml.c5.xlarge")
    assert estimator.config.instance_type == "ml.c5.xlarge"
    with pytest.raises(ValidationError, match="name the same argument"):
        make_stack(train_max_run=60, max_run=60)


def test_image_name_from_the_seed_is_accepted() -> None:
    _, estimator = make_stack(
        toolkit=None,
        toolkit_version=None,
        framework=None,
        image_name=ContainerImage.from_uri("123456789012.dkr.ecr.us-west-2.amazonaws.com/mine:1"),
    )
    assert estimator.image.is_custom
    assert estimator.config.metric_definitions(estimator.image) == []
