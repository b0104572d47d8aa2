"""Where a training job's artifacts go and which key protects them, as the estimator resolves them.

The estimator's ``output_path``/``artifact_bucket`` arguments, the key that encrypts
``model.tar.gz`` (the serving role must decrypt it) and the default data-capture destination all
follow from the job's output location; they live here, beside the job, so that the facade only
maps arguments.
"""

from __future__ import annotations

import dataclasses

from aws_cdk import Token
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .._kms import kms_key
from ..errors import ValidationError, invalid
from ..serving import DataCapture
from .artifacts import artifact_bucket as create_artifact_bucket
from .request import TrainingJobParts


def capture_destination(capture: DataCapture | None, parts: TrainingJobParts) -> DataCapture | None:
    """``DataCapture()`` without a destination: the artifact location's bucket."""
    if not isinstance(capture, DataCapture) or capture.destination is not None:
        return capture  # checked (and refused when it is no DataCapture) by the endpoint
    output = parts.output
    if output.bucket is not None:
        return dataclasses.replace(capture, destination=output.bucket)
    return dataclasses.replace(
        capture,
        destination=f"s3://{output.bucket_name}/{capture.prefix or 'data-capture'}",
        prefix=None,
    )


def artifact_key(scope: Construct, parts: TrainingJobParts) -> kms.IKey | None:
    """The key that encrypts model.tar.gz: output_kms_key, else the bucket's own key."""
    key = parts.output_kms_key
    if key is not None:
        if key.key is not None:
            return key.key
        if key.key_arn is not None and not Token.is_unresolved(key.key_arn):
            return kms.Key.from_key_arn(scope, "OutputKey", key.key_arn)
    return parts.output.encryption_key


def output_location(
    scope: Construct,
    output_path: str | s3.IBucket | None,
    output_prefix: str | None,
    artifact_bucket: s3.IBucket | None,
    bucket_encryption_key: kms.IKey | None,
) -> tuple[str | s3.IBucket, str | None]:
    """The user's output location, else their artifact bucket or one of ours (prefix training)."""
    bucket_key = kms_key(scope, bucket_encryption_key, "bucket_encryption_key")
    if bucket_key is not None and bucket_key.key is None:
        raise invalid("bucket_encryption_key", bucket_encryption_key, "an aws_kms.IKey")
    if output_path is not None:
        if artifact_bucket is not None:
            raise ValidationError(
                f"output_path={output_path!r} and artifact_bucket are two ways to name where "
                "artifacts go; give one. See README.md#argument-reference."
            )
        return output_path, output_prefix
    if output_prefix is not None:
        raise invalid("output_prefix", output_prefix, "None unless output_path is given")
    bucket = artifact_bucket or create_artifact_bucket(
        scope, bucket_key.key if bucket_key else None
    )
    return bucket, "training"
