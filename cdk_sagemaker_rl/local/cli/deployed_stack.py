"""The deployed stack as the emulator reports it: its outputs, its failed events, clients of it.

The outputs come from the ``--outputs-file`` of the last deploy; CDK appends a hash to each
output's logical id, so an output is found by its construct id (:func:`named_output`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .messages import LocalModeError
from .state import State
from .target import REGION, STACK, aws_env

__all__ = ["client", "failure_reasons", "named_output", "stack_outputs"]


def client(service: str, state: State, config: Any = None) -> Any:
    """A boto3 client of the emulator of ``state``, with its dummy credentials."""
    import boto3

    env = aws_env(state.port)
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        config=config,
    )


def stack_outputs(state: State) -> dict[str, str]:
    """The outputs the last deploy wrote (empty before any deploy)."""
    if state.outputs.exists():
        data = json.loads(state.outputs.read_text())
        return dict(data.get(STACK, {}))
    return {}


def named_output(outputs: Mapping[str, str], name: str) -> str:
    """An output by its construct id (CDK appends a hash to the logical id)."""
    for key, value in outputs.items():
        if re.fullmatch(rf"\w*{name}[0-9A-F]{{8}}", key):
            return value
    raise LocalModeError(
        f"the deployed stack has no {name!r} output: deploy first "
        "(python -m cdk_sagemaker_rl.local deploy)"
    )


def failure_reasons(state: State) -> list[str]:
    """The stack events that failed, newest first: where a training error surfaces."""
    with contextlib.suppress(Exception):
        events = client("cloudformation", state).describe_stack_events(StackName=STACK)
        return [
            f"{e['LogicalResourceId']}: {e['ResourceStatusReason']}"
            for e in events["StackEvents"]
            if "FAILED" in e.get("ResourceStatus", "") and e.get("ResourceStatusReason")
        ]
    return []
