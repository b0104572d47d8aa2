"""S3 clients that act as a role: what a training job or a model server fetches and writes with.

SageMaker makes those requests with the job's ``RoleArn`` or the model's ``ExecutionRoleArn``.
The emulator takes any credentials, so the role travels in the User-Agent app id
(``lambda_exec.app_id_for``) and a recording of the emulator's requests can be checked against
the role's policies.
"""

from __future__ import annotations

from typing import Any

from ..lambda_exec import app_id_for
from ..runtime import DummyCredentials, context

__all__ = ["s3_as"]


def s3_as(role_arn: str) -> Any:
    """An S3 client on the emulator whose requests name ``role_arn`` (User-Agent app id)."""
    import boto3
    from botocore.config import Config

    ctx = context()
    key, secret, token = DummyCredentials
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=ctx.region,
    )
    return session.client(
        "s3",
        endpoint_url=ctx.endpoint_url,
        config=Config(
            retries={"max_attempts": 2, "mode": "standard"},
            user_agent_appid=app_id_for(role_arn),
        ),
    )
