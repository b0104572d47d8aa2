"""The deployed stack as the emulator reports it: its outputs, its failed events, clients of it.

The outputs come from the ``--outputs-file`` of the last deploy; CDK appends a hash to each
output's logical id, so an output is found by its construct id (:func:`named_output`), and the
reward gate's verdicts by their key (:func:`gate_verdict_lines`). A failed deploy is explained by
the failed events of its own operation (:func:`failure_reasons`), in full.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .messages import LocalModeError
from .state import State
from .target import REGION, STACK, aws_env

__all__ = [
    "client",
    "failure_message",
    "failure_reasons",
    "gate_verdict_lines",
    "named_output",
    "reasons_of_events",
    "stack_outputs",
]

#: Stack outputs whose key contains this are the reward gate's verdicts.
GATE_VERDICT = "GateVerdict"
#: Resource events that only echo another resource's failure (CloudFormation's own words).
_CONSEQUENTIAL = ("Resource creation cancelled", "Resource update cancelled")


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


def gate_verdict_lines(outputs: Mapping[str, str]) -> list[str]:
    """``gate verdict: <value>`` for every output whose key contains ``GateVerdict``, by key."""
    return [f"gate verdict: {outputs[key]}" for key in sorted(outputs) if GATE_VERDICT in key]


def failure_message(code: int, reasons: Sequence[str], limit: int = 10) -> str:
    """What a failed ``cdk deploy`` reports: the exit code, then each reason unabridged."""
    lines = [f"cdk deploy of {STACK} failed (exit {code})."]
    lines += [f"  {reason}" for reason in reasons[:limit]]
    if len(reasons) > limit:
        lines.append(f"  ... and {len(reasons) - limit} more (see the stack events above)")
    return "\n".join(lines)


def failure_reasons(state: State) -> list[str]:
    """Why the last stack operation failed (:func:`reasons_of_events` of its events)."""
    with contextlib.suppress(Exception):
        events = client("cloudformation", state).describe_stack_events(StackName=STACK)
        return reasons_of_events(events["StackEvents"])
    return []


def reasons_of_events(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """``<logical id>: <reason>`` of the failed resources of the last operation, cause first.

    ``events`` are DescribeStackEvents' ``StackEvents``, newest first. Only the last operation
    counts (back to its stack-level ``User Initiated`` event). Its resource failures are listed
    oldest first (the first is the cause), without those that only echo it ("Resource creation
    cancelled"); the stack's own failure ("The following resource(s) failed ...") only when no
    resource gave a reason. Reasons are never shortened: a training error or a reward gate's
    verdict is shown in full.
    """
    resources: list[str] = []
    stack: list[str] = []
    for event in events:
        status = str(event.get("ResourceStatus", ""))
        reason = event.get("ResourceStatusReason")
        on_stack = event.get("ResourceType") == "AWS::CloudFormation::Stack"
        if on_stack and status.endswith("_IN_PROGRESS") and reason == "User Initiated":
            break  # the start of the last operation: older events are earlier deploys'
        if "FAILED" not in status or not reason:
            continue
        line = f"{event.get('LogicalResourceId', '?')}: {reason}"
        (stack if on_stack else resources).append(line)
    causes = [r for r in resources if not r.endswith(_CONSEQUENTIAL)]
    ordered = list(reversed(causes or resources)) or list(reversed(stack))
    return list(dict.fromkeys(ordered))
