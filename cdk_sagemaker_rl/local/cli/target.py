"""Where local mode deploys: the emulator's account, region and port, and the environment that
points every AWS client there.

The reference stack is deployed by the real ``cdk`` CLI and called through boto3, both of which
read their endpoint and credentials from the environment; :func:`aws_env` replaces whatever AWS
settings the user has, so that nothing local mode runs can reach a real account.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ACCOUNT", "DEFAULT_PORT", "PORT_ENV", "REGION", "ROOT", "STACK", "aws_env"]

#: The project: ``app.py``, ``cdk.json`` and ``node_modules`` (the aws-cdk CLI) live here.
ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "RLCartPole-dev"
#: The emulator's port unless ``--port`` or :data:`PORT_ENV` says otherwise.
DEFAULT_PORT = 4599
PORT_ENV = "CDK_SAGEMAKER_RL_LOCAL_PORT"


def aws_env(port: int) -> dict[str, str]:
    """Environment for every AWS client local mode runs: the emulator, dummy credentials."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in ("AWS_CA_BUNDLE",)
    }
    env.update(
        {
            "AWS_ENDPOINT_URL": f"http://localhost:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": REGION,
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
    )
    return env
