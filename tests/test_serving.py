"""deploy() and attach(): serving images, IAM of the serving side, and bad input."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from cdk_sagemaker_rl import ContainerImage, RLEstimator, RLFramework, RLToolkit, ValidationError
from cdk_sagemaker_rl.images import rl_image_specs
from cdk_sagemaker_rl.serving import serving_plan
from tests.test_training import ENV, EXAMPLE, render

PYTORCH = {
    "entry_point": "train.py",
    "source_dir": str(EXAMPLE),
    "image_uri": ContainerImage.pytorch_training("2.6"),
    "train_instance_type": "ml.m5.large",
}


def fitted_estimator(**overrides: Any) -> tuple[cdk.Stack, RLEstimator]:
    app = cdk.App()
    stack = cdk.Stack(app, "Serve", env=ENV)
    estimator = RLEstimator(stack, "Estimator", **{**PYTORCH, **overrides})
    estimator.fit()
    return stack, estimator


@pytest.fixture(scope="module")
def pytorch_served() -> Template:
    stack, estimator = fitted_estimator()
    estimator.deploy(instance_type="ml.m5.large", entry_point="inference.py", function_url=True)
    return Template.from_stack(stack)


def test_pytorch_policy_is_served_by_the_pytorch_inference_container(
    pytorch_served: Template,
) -> None:
    (model,) = pytorch_served.find_resources("AWS::SageMaker::Model").values()
    container = model["Properties"]["PrimaryContainer"]
    assert render(container["Image"]) == (
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.6-cpu-py312"
    )
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}


def test_function_url_uses_iam_auth(pytorch_served: Template) -> None:
    pytorch_served.has_resource_properties("AWS::Lambda::Url", {"AuthType": "AWS_IAM"})
    outputs = pytorch_served.to_json()["Outputs"]
    assert any("PredictFunctionUrl" in name for name in outputs)


def test_model_role_pulls_only_the_serving_image(pytorch_served: Template) -> None:
    policies = pytorch_served.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("EstimatorServingRole")}]}},
    )
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    pulls = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert [render(s["Resource"]) for s in pulls] == [
        "arn:<Ref:AWS::Partition>:ecr:us-west-2:763104351884:repository/pytorch-inference"
    ]


def test_coach_mxnet_is_served_with_the_training_entry_point() -> None:
    stack, estimator = fitted_estimator(
        image_uri=None,
        toolkit=RLToolkit.COACH,
        toolkit_version="0.11.0",
        framework=RLFramework.MXNET,
        train_instance_type="ml.c4.2xlarge",
    )
    estimator.deploy(instance_type="ml.m4.xlarge", initial_instance_count=1)
    (model,) = Template.from_stack(stack).find_resources("AWS::SageMaker::Model").values()
    container = model["Properties"]["PrimaryContainer"]
    assert "sagemaker-mxnet:1.3" in render(container["Image"])
    env = container["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "train.py"
    assert render(env["SAGEMAKER_SUBMIT_DIRECTORY"]).startswith("s3://cdk-")
    assert env["SAGEMAKER_CONTAINER_LOG_LEVEL"] == "20"


def test_attach_looks_the_job_up_at_deploy_time_read_only() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Attach", env=ENV)
    attached = RLEstimator.attach(stack, "Existing", training_job_name="MyAwesomeRLTrainingJob")
    attached.deploy(instance_type="ml.m5.large", initial_instance_count=1)
    template = Template.from_stack(stack)
    (lookup_id,) = template.find_resources("Custom::RLTrainingJobLookup").keys()
    lookup = template.to_json()["Resources"][lookup_id]["Properties"]
    assert lookup["TrainingJobName"] == "MyAwesomeRLTrainingJob"
    ((_, model),) = template.find_resources("AWS::SageMaker::Model").items()
    assert lookup_id in model["DependsOn"]
    container = model["Properties"]["PrimaryContainer"]
    assert container["Image"] == {"Fn::GetAtt": [lookup_id, "TrainingImage"]}
    assert container["ModelDataUrl"] == {"Fn::GetAtt": [lookup_id, "ModelDataUrl"]}
    lookup_policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if any("LookupFunction" in r["Ref"] for r in p["Properties"]["Roles"])
    ]
    (statements,) = lookup_policies
    (describe,) = [s for s in statements if s["Action"] == "sagemaker:DescribeTrainingJob"]
    # Names in SageMaker ARNs are lowercase.
    assert render(describe["Resource"]).endswith(":training-job/myawesomerltrainingjob")


@pytest.mark.parametrize(
    ("deploy_kwargs", "fragment"),
    [
        ({"instance_type": "ml.m5.large", "initial_instance_count": 0}, "initial_instance_count=0"),
        ({"instance_type": "ml.m5.giant", "entry_point": "inference.py"}, "ml.m5.giant"),
        ({"instance_type": "ml.m5.large"}, "needs entry_point"),
        (
            {
                "instance_type": "ml.m5.large",
                "entry_point": "inference.py",
                "function_url": True,
                "function_url_auth_type": lambda_.FunctionUrlAuthType.NONE,
            },
            "allow_unauthenticated_function_url",
        ),
    ],
)
def test_bad_deploy_input_is_refused(deploy_kwargs: dict[str, Any], fragment: str) -> None:
    _, estimator = fitted_estimator()
    with pytest.raises(ValidationError) as error:
        estimator.deploy(**deploy_kwargs)
    assert fragment in str(error.value)


def test_ray_pytorch_without_a_way_to_serve_is_refused() -> None:
    _, estimator = fitted_estimator(
        image_uri=None,
        toolkit=RLToolkit.RAY,
        toolkit_version="1.6.0",
        framework=RLFramework.PYTORCH,
    )
    with pytest.raises(ValidationError, match=r"no way to be served.*entry_point="):
        estimator.deploy(instance_type="ml.m5.large")


def test_deploy_after_fit_without_wait_serves_through_a_workflow() -> None:
    """The model only exists after the deploy: a workflow serves it (test_workflow_serving.py)."""
    app = cdk.App()
    stack = cdk.Stack(app, "NoWait", env=ENV)
    estimator = RLEstimator(stack, "Estimator", **PYTORCH)
    estimator.fit(wait=False)
    endpoint = estimator.deploy(instance_type="ml.m5.large", entry_point="inference.py")
    assert endpoint.workflow is not None
    with pytest.raises(ValidationError, match="wait=False"):
        endpoint.model  # noqa: B018 - the access is what is tested


def test_fit_without_wait_has_no_wait_condition() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "NoWait", env=ENV)
    estimator = RLEstimator(stack, "Estimator", **PYTORCH)
    estimator.fit(wait=False, logs=False)
    template = Template.from_stack(stack)
    assert template.find_resources("AWS::CloudFormation::WaitCondition") == {}
    (run,) = template.find_resources("Custom::RLTrainingRun").values()
    assert "WaitHandleUrl" not in run["Properties"]
    assert not any("TrainingLogs" in name for name in template.to_json()["Outputs"])


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-west-2", "https://console.aws.amazon.com/"),
        ("cn-north-1", "https://console.amazonaws.cn/"),
        ("us-gov-west-1", "https://console.amazonaws-us-gov.com/"),
    ],
)
def test_training_logs_console_link_uses_the_partitions_console(region: str, host: str) -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Logs", env=cdk.Environment(account="111122223333", region=region))
    RLEstimator(stack, "Estimator", **PYTORCH).fit()
    outputs = Template.from_stack(stack).to_json()["Outputs"]
    (link,) = [v["Value"] for k, v in outputs.items() if "TrainingLogsConsole" in k]
    assert render(link).startswith(host)


def test_environment_agnostic_console_link_looks_the_host_up_by_partition() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Agnostic")
    RLEstimator(stack, "Estimator", **PYTORCH).fit()
    template = Template.from_stack(stack).to_json()
    assert template["Mappings"]["ConsoleHosts"]["aws-cn"] == {"host": "console.amazonaws.cn"}
    (link,) = [v["Value"] for k, v in template["Outputs"].items() if "TrainingLogsConsole" in k]
    assert {"Fn::FindInMap": ["ConsoleHosts", {"Ref": "AWS::Partition"}, "host"]} in (
        link["Fn::Join"][1]
    )


def test_the_model_role_can_decrypt_an_encrypted_model_artifact() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Kms", env=ENV)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    estimator = RLEstimator(stack, "Estimator", output_kms_key=key, **PYTORCH)
    estimator.fit()
    estimator.deploy(instance_type="ml.m5.large", entry_point="inference.py")
    template = Template.from_stack(stack)
    (key_id,) = template.find_resources("AWS::KMS::Key").keys()
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if any("EstimatorServingRole" in r["Ref"] for r in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert {
        "Action": "kms:Decrypt",
        "Effect": "Allow",
        "Resource": {"Fn::GetAtt": [key_id, "Arn"]},
    } in statements


def test_ray_pytorch_is_served_by_the_inference_image_of_its_torch_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the catalogue has an inference image for the torch of a Ray image, it serves it."""
    from cdk_sagemaker_rl.images.catalogue import catalogue

    # Pretend AWS published a PyTorch inference image for torch 1.8.1 (Ray 1.6.0's torch).
    inference = catalogue().families["pytorch-inference"]
    monkeypatch.setitem(inference.aliases, "1.8.1", "2.6.0")  # type: ignore[index]
    training = ContainerImage.rl("ray", "1.6.0", "pytorch")
    stack = cdk.Stack(cdk.App(), "Ray", env=ENV)
    plan = serving_plan(training, training.bind(stack, instance_type="ml.c5.2xlarge"), None)
    assert (plan.kind, plan.needs_entry_point) == ("pytorch", True)
    assert plan.image.framework_version == "1.8.1"


def test_the_serving_plan_serves_what_serving_image_chooses() -> None:
    """One serving-image choice: deploy() and ContainerImage.serving_image() never disagree."""
    stack = cdk.Stack(cdk.App(), "Every", env=ENV)
    trainings = [
        ContainerImage.rl(s.toolkit, s.toolkit_version, s.framework, s.framework_version)
        for s in rl_image_specs()
    ]
    trainings += [ContainerImage.pytorch_training(v) for v in ("2.4", "2.5.1", "2.6", "2.8")]
    trainings.append(ContainerImage.from_uri("111122223333.dkr.ecr.us-west-2.amazonaws.com/x:1"))
    for training in trainings:
        bound = training.bind(stack, instance_type="ml.c5.2xlarge")
        try:
            expected = repr(training.serving_image())
        except ValidationError:
            with pytest.raises(ValidationError, match=r"See README.md#deploying\.$"):
                serving_plan(training, bound, None)
            continue
        assert repr(serving_plan(training, bound, None).image) == expected, training
