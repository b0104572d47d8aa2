"""Instance-type data equals botocore's SageMaker model, and typos fail with a suggestion."""

from __future__ import annotations

import json
from importlib import resources

import aws_cdk as cdk
import botocore
import botocore.session
import pytest

from cdk_sagemaker_rl.errors import ValidationError
from cdk_sagemaker_rl.instance_types import (
    serving_instance_types,
    training_instance_types,
    validate_serving_instance_type,
    validate_training_instance_type,
)


@pytest.fixture(scope="module")
def sagemaker_model() -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture(scope="module")
def stored() -> dict[str, object]:
    text = resources.files("cdk_sagemaker_rl").joinpath("_data/instance_types.json").read_text()
    data: dict[str, object] = json.loads(text)
    return data


def test_training_types_equal_botocore_enum(
    sagemaker_model: botocore.model.ServiceModel, stored: dict[str, object]
) -> None:
    """Drift detection: run scripts/refresh_instance_types.py when this fails."""
    expected = sorted(sagemaker_model.shape_for("TrainingInstanceType").enum)
    assert stored["training"] == expected
    assert training_instance_types() == frozenset(expected)


def test_serving_types_equal_botocore_enum(
    sagemaker_model: botocore.model.ServiceModel, stored: dict[str, object]
) -> None:
    expected = sorted(sagemaker_model.shape_for("ProductionVariantInstanceType").enum)
    assert stored["serving"] == expected
    assert serving_instance_types() == frozenset(expected)


def test_data_records_the_botocore_version_it_came_from(stored: dict[str, object]) -> None:
    assert isinstance(stored["botocore_version"], str)
    assert stored["botocore_version"].count(".") == 2


def test_data_holds_the_instance_types_rl_users_need() -> None:
    # The SDK docs' examples and the facts sheet: a CPU and a GPU trainer, a small endpoint.
    assert {"ml.c5.xlarge", "ml.p3.2xlarge", "ml.g4dn.xlarge"} <= training_instance_types()
    assert {"ml.t2.medium", "ml.m5.large", "ml.g4dn.xlarge"} <= serving_instance_types()


def test_valid_values_are_returned_unchanged() -> None:
    assert validate_training_instance_type("ml.p3.2xlarge") == "ml.p3.2xlarge"
    assert validate_serving_instance_type("ml.t2.medium", "instance_type") == "ml.t2.medium"


def test_tokens_pass_because_they_resolve_at_deploy_time() -> None:
    stack = cdk.Stack(cdk.App(), "Tokens")
    token = cdk.CfnParameter(stack, "InstanceType").value_as_string
    assert validate_training_instance_type(token) is token
    assert validate_serving_instance_type(token) is token


@pytest.mark.parametrize("typo", ["ml.p3.2xlarg", "p3.2xlarge", "ML.P3.2XLARGE"])
def test_typo_suggests_the_close_match(typo: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_training_instance_type(typo, "train_instance_type")
    message = str(caught.value)
    assert message.startswith(f"train_instance_type={typo!r} is not valid.")
    assert "closest matches: ml.p3.2xlarge" in message
    assert "See https://aws.amazon.com/sagemaker/pricing/" in message


def test_serving_only_type_is_rejected_for_training_with_an_explanation() -> None:
    with pytest.raises(ValidationError, match=r"ml\.t2\.medium exists for endpoints only"):
        validate_training_instance_type("ml.t2.medium")


def test_serving_error_names_the_argument_and_the_purpose() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_serving_instance_type("ml.m5.larg", "deploy_instance_type")
    message = str(caught.value)
    assert message.startswith("deploy_instance_type='ml.m5.larg' is not valid.")
    assert "serving (endpoint) instance type" in message
    assert "ml.m5.large" in message


def test_unrelated_value_gets_no_suggestion() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_training_instance_type("a-big-computer")
    assert "closest matches" not in str(caught.value)
    assert "a SageMaker training instance type such as ml.c5.xlarge" in str(caught.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"instance_type=4 is not valid"):
        validate_training_instance_type(4)  # type: ignore[arg-type]
