"""S3 locations as a training job sees them: a URI for the request, ARNs for the grants.

Users hold S3 places in three shapes: a literal ``s3://bucket/prefix``, a string with tokens in it
(``bucket.s3_url_for_object("rl")``, a parameter) and an ``s3.IBucket`` plus a prefix. Each is
turned into the same :class:`S3Location`, so that every policy names exactly that bucket and prefix
whatever the shape, and a literal that cannot work fails at synth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Fn
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from ._tokens import PARTITION, is_token_string
from .errors import invalid

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")
#: ``s3://<bucket>/<prefix>`` where the bucket (or the prefix) holds tokens: split on the first /.
_S3_URI_WITH_TOKENS = re.compile(r"^s3://(?P<bucket>[^/]+)(?:/(?P<key>.*))?$")


@dataclass(frozen=True)
class S3Location:
    """An S3 bucket and key prefix (no leading or trailing slash); either may be a token."""

    bucket_name: str
    prefix: str
    bucket: s3.IBucket | None = None
    #: The URI exactly as the user wrote it (the SDK sends ``output_path`` verbatim).
    given_uri: str | None = None

    @property
    def uri(self) -> str:
        if self.given_uri is not None:
            return self.given_uri
        return (
            f"s3://{self.bucket_name}/{self.prefix}" if self.prefix else f"s3://{self.bucket_name}"
        )

    @property
    def bucket_arn(self) -> str:
        # From the name even for a bucket object: the same ARN, and a cross-stack bucket
        # then costs one export (its name), not two.
        return f"arn:{PARTITION}:s3:::{self.bucket_name}"

    @property
    def encryption_key(self) -> kms.IKey | None:
        """The bucket's own key, when the bucket object says so: writers must be granted it."""
        return self.bucket.encryption_key if self.bucket is not None else None

    def objects_arn(self, below: str = "*") -> str:
        """Objects under the prefix: the narrowest ARN for keys SageMaker names at run time."""
        return (
            f"{self.bucket_arn}/{self.prefix}/{below}"
            if self.prefix
            else f"{self.bucket_arn}/{below}"
        )


def parse_s3_uri(value: object, argument: str) -> S3Location:
    """A user's ``s3://`` URI; anything that cannot be one is a synth-time error naming it.

    A string with tokens is accepted when its shape is still visible (``s3://${Token}/prefix``);
    a URI that is one opaque token is split at deploy time with ``Fn::Split``.
    """
    if not isinstance(value, str):
        raise invalid(argument, value, "an s3://bucket[/prefix] URI string or an s3.IBucket")
    if is_token_string(value):
        match = _S3_URI_WITH_TOKENS.match(value)
        if match:
            return S3Location(match["bucket"], (match["key"] or "").strip("/"), given_uri=value)
        # One opaque token: bucket = first segment after s3://, the rest is the prefix.
        after_scheme = Fn.select(1, Fn.split("s3://", value))
        bucket = Fn.select(0, Fn.split("/", after_scheme))
        return _OpaqueS3Location(bucket, "", given_uri=value, after_scheme=after_scheme)
    match = _S3_URI.match(value)
    if not match:
        raise invalid(argument, value, "an S3 URI of the form s3://bucket[/prefix]")
    return S3Location(match["bucket"], (match["key"] or "").strip("/"), given_uri=value)


@dataclass(frozen=True)
class _OpaqueS3Location(S3Location):
    """A URI only known at deploy time: its ARNs are computed by CloudFormation functions."""

    after_scheme: str = ""

    def objects_arn(self, below: str = "*") -> str:
        return f"arn:{PARTITION}:s3:::{self.after_scheme}/{below}"


def s3_location(
    value: str | s3.IBucket | None, prefix: str | None, argument: str
) -> S3Location | None:
    """``value`` as a location: a URI (``prefix`` must then be None) or a bucket plus ``prefix``."""
    if value is None:
        if prefix is not None:
            raise invalid(f"{argument} prefix", prefix, f"None unless {argument} is an s3.IBucket")
        return None
    if isinstance(value, str):
        if prefix is not None:
            raise invalid(
                f"{argument} prefix", prefix, f"None when {argument} is a URI (put it in the URI)"
            )
        return parse_s3_uri(value, argument)
    if not hasattr(value, "bucket_name") or not hasattr(value, "bucket_arn"):
        raise invalid(argument, value, "an s3://bucket[/prefix] URI string or an s3.IBucket")
    clean = (prefix or "").strip("/")
    if not is_token_string(clean) and any(c.isspace() for c in clean):
        raise invalid(f"{argument} prefix", prefix, "an S3 key prefix without whitespace")
    return S3Location(value.bucket_name, clean, bucket=value)
