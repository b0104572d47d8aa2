"""Tokens the library reads often, without a round trip to the jsii node process each time.

Every read of ``Aws.REGION`` and every ``Token.is_unresolved`` is a request to the node process
that runs aws-cdk-lib. The pseudo parameters are static tokens (one string per process, the same in
every stack and app), so they are read once, here. A string holds its tokens as ``${Token[...]}``
markers, so whether a *string* has one can be seen in Python; numbers and objects encode tokens
differently: ask ``Token.is_unresolved`` for them.
"""

from __future__ import annotations

from aws_cdk import Aws

#: ``{"Ref": "AWS::Partition"}`` and friends, as the token strings CDK encodes them with.
PARTITION: str = Aws.PARTITION
REGION: str = Aws.REGION
ACCOUNT_ID: str = Aws.ACCOUNT_ID
URL_SUFFIX: str = Aws.URL_SUFFIX

_STRING_TOKEN = "${Token["


def is_token_string(value: str) -> bool:
    """``Token.is_unresolved(value)`` for a string: it contains a token marker."""
    return _STRING_TOKEN in value
