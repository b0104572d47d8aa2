"""KMS keys as users hold them (an ``IKey``, an ARN, an id, an alias), converted in one place.

SageMaker takes any of those strings in ``KmsKeyId``, but an IAM policy can only name a key by its
ARN, and an alias names no key at all. Every argument that takes a key goes through
:func:`kms_key`, so the request value and what can be granted on are decided once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from constructs import IConstruct

from ._tokens import is_token_string
from .errors import invalid

_KEY_ID = re.compile(
    r"^(?:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})$"
)
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(?P<id>.+)$")
_ALIAS = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
_ALIAS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:alias/[a-zA-Z0-9/_-]{1,250}$")
ALLOWED = (
    "an aws_kms.IKey, a key ARN, a key id (UUID or mrk-...), an alias (alias/name) or alias ARN"
)


@dataclass(frozen=True)
class KmsKeyRef:
    """One key argument: what SageMaker receives, and the ARN to grant on (None for aliases)."""

    request_value: str
    key_arn: str | None
    key: kms.IKey | None = None


def kms_key(scope: IConstruct, value: object, argument: str) -> KmsKeyRef | None:
    if value is None:
        return None
    if isinstance(value, str):
        if is_token_string(value):
            return KmsKeyRef(value, value)
        if _KEY_ARN.match(value):
            return KmsKeyRef(value, value)
        if _KEY_ID.match(value):
            arn = Stack.of(scope).format_arn(service="kms", resource="key", resource_name=value)
            return KmsKeyRef(value, arn)
        if _ALIAS.match(value) or _ALIAS_ARN.match(value):
            return KmsKeyRef(value, None)
        raise invalid(argument, value, ALLOWED)
    # One read of key_arn (hasattr would be a second): each is a round trip to the jsii process.
    key_arn = getattr(value, "key_arn", None)
    if key_arn is not None and hasattr(value, "grant"):
        return KmsKeyRef(key_arn, key_arn, value)  # type: ignore[arg-type]
    raise invalid(argument, value, ALLOWED)
