"""The one place each for S3 locations (``_s3``) and KMS keys (``_kms``): every shape users hold."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from cdk_sagemaker_rl import ValidationError, s3_location
from cdk_sagemaker_rl._kms import kms_key

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Shapes", env=cdk.Environment(account=ACCOUNT, region="eu-west-1"))


def _resolve(stack: cdk.Stack, value: Any) -> Any:
    return stack.resolve(value)


def test_a_literal_uri_keeps_its_text_and_names_its_prefix(stack: cdk.Stack) -> None:
    location = s3_location("s3://my-bucket/rl/out/", None, "output_path")
    assert location is not None
    assert location.uri == "s3://my-bucket/rl/out/"  # verbatim, as the SDK sends it
    assert _resolve(stack, location.objects_arn()) == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::my-bucket/rl/out/*"]]
    }


def test_a_uri_with_a_token_bucket_keeps_the_prefix(stack: cdk.Stack) -> None:
    bucket = s3.Bucket(stack, "Tokened")
    location = s3_location(bucket.s3_url_for_object("rl"), None, "output_path")
    assert location is not None and location.prefix == "rl"
    arn = _resolve(stack, location.objects_arn())
    assert {"Ref": stack.get_logical_id(bucket.node.default_child)} in arn["Fn::Join"][1]
    assert arn["Fn::Join"][1][-1] == "/rl/*"


def test_an_opaque_token_uri_is_split_at_deploy_time(stack: cdk.Stack) -> None:
    uri = cdk.CfnParameter(stack, "Output").value_as_string
    location = s3_location(uri, None, "output_path")
    assert location is not None
    rendered = str(_resolve(stack, location.objects_arn()))
    assert "Fn::Split" in rendered and "'Ref': 'Output'" in rendered
    assert "Fn::Select" in str(_resolve(stack, location.bucket_arn))


def test_a_bucket_with_a_prefix_carries_its_key(stack: cdk.Stack) -> None:
    key = kms.Key(stack, "BucketKey")
    bucket = s3.Bucket(stack, "Keyed", encryption_key=key)
    location = s3_location(bucket, "/models/", "output_path")
    assert location is not None
    assert location.prefix == "models" and location.bucket is bucket
    assert location.encryption_key is key
    assert _resolve(stack, location.uri)["Fn::Join"][1][-1] == "/models"


@pytest.mark.parametrize(
    ("value", "prefix", "fragment"),
    [
        (42, None, "output_path=42 is not valid"),
        ("https://bucket/x", None, "s3://bucket[/prefix]"),
        ("s3://my-bucket/x", "more", "None when output_path is a URI"),
        (None, "orphan", "None unless output_path is an s3.IBucket"),
    ],
)
def test_bad_locations_name_the_value(value: Any, prefix: str | None, fragment: str) -> None:
    with pytest.raises(ValidationError, match=r"Allowed: ") as error:
        s3_location(value, prefix, "output_path")
    assert fragment in str(error.value)


def test_key_shapes_give_the_request_value_and_what_to_grant_on(stack: cdk.Stack) -> None:
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    by_id = kms_key(stack, key_id, "kms_key")
    assert by_id is not None and by_id.request_value == key_id
    assert _resolve(stack, by_id.key_arn)["Fn::Join"][1][-1] == (
        f":kms:eu-west-1:{ACCOUNT}:key/{key_id}"
    )
    arn = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{key_id}"
    assert kms_key(stack, arn, "kms_key") == type(by_id)(arn, arn)
    alias = kms_key(stack, "alias/rl", "kms_key")
    assert alias is not None and alias.key_arn is None  # an alias names no key to grant on
    key = kms.Key(stack, "Given")
    given = kms_key(stack, key, "kms_key")
    assert given is not None and given.key is key
    assert kms_key(stack, None, "kms_key") is None


@pytest.mark.parametrize("value", ["my key", 42, "arn:aws:s3:::not-a-key"])
def test_bad_keys_name_the_value_and_the_shapes_allowed(stack: cdk.Stack, value: Any) -> None:
    with pytest.raises(ValidationError, match=r"an aws_kms.IKey, a key ARN, a key id") as error:
        kms_key(stack, value, "output_kms_key")
    assert f"output_kms_key={value!r}" in str(error.value)
