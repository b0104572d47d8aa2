"""Wait conditions that wait: a handle whose Ref is a URL to signal, a condition that blocks.

moto ignores ``AWS::CloudFormation::WaitCondition(Handle)`` (its ``NULL_MODELS``): the handle's
Ref is empty and nothing waits. Here the handle's Ref is a URL on the emulator that accepts the
signal PUT, and creating the wait condition waits (up to its Timeout) for ``Count`` SUCCESS
signals, fails on a FAILURE signal, and gives the signals' data as its ``Data`` attribute.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..runtime import LOG, context
from .errors import ResourceFailedError
from .local_model import LocalModel
from .operation import current_operation

__all__ = [
    "WAIT_CONDITION_PATH",
    "LocalWaitCondition",
    "LocalWaitConditionHandle",
    "forget_handles",
    "handle_wait_condition_signal",
]

#: A handle's Ref is ``<emulator URL><this path><handle id>``; the emulator routes the PUT here.
WAIT_CONDITION_PATH = "/_local/wait-condition/"

#: CloudFormation's upper bound for a WaitCondition's Timeout.
MAX_WAIT_CONDITION_TIMEOUT = 43200


@dataclass
class _HandleState:
    """The signals a handle received so far, by UniqueId (a repeated UniqueId replaces)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)


_handles: dict[str, _HandleState] = {}
_handles_lock = threading.Lock()


def handle_wait_condition_signal(handle_id: str, body: bytes) -> tuple[int, str]:
    """The PUT that signals a wait condition handle (``{"Status","Reason","UniqueId","Data"}``)."""
    with _handles_lock:
        state = _handles.get(handle_id)
    if state is None:
        return 404, "no such wait condition handle"
    try:
        signal = json.loads(body)
    except ValueError:
        return 400, "the signal is not JSON"
    if not isinstance(signal, dict) or signal.get("Status") not in ("SUCCESS", "FAILURE"):
        return 400, 'the signal needs "Status": "SUCCESS" or "FAILURE"'
    unique_id = str(signal.get("UniqueId", ""))
    if not unique_id:
        return 400, 'the signal needs a "UniqueId"'
    with state.lock:
        state.signals[unique_id] = signal
    LOG.info("wait condition handle %s: %s signal %s", handle_id, signal["Status"], unique_id)
    return 200, ""


class LocalWaitConditionHandle(LocalModel):
    """``AWS::CloudFormation::WaitConditionHandle``: its Ref is the URL to signal."""

    def __init__(self, handle_id: str, url: str) -> None:
        self.handle_id = handle_id
        self.physical_resource_id = url

    CFN_TYPE = "AWS::CloudFormation::WaitConditionHandle"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalWaitConditionHandle:
        handle_id = uuid.uuid4().hex
        with _handles_lock:
            _handles[handle_id] = _HandleState()
        return cls(handle_id, f"{context().endpoint_url}{WAIT_CONDITION_PATH}{handle_id}")

    def delete(self, account_id: str, region_name: str) -> None:
        with _handles_lock:
            _handles.pop(self.handle_id, None)

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()


class LocalWaitCondition(LocalModel):
    """``AWS::CloudFormation::WaitCondition``: creation waits for the handle's signals."""

    def __init__(self, physical_resource_id: str, data: dict[str, Any]) -> None:
        self.physical_resource_id = physical_resource_id
        self.data = data

    CFN_TYPE = "AWS::CloudFormation::WaitCondition"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Data"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalWaitCondition:
        properties = cloudformation_json.get("Properties") or {}
        url = str(properties.get("Handle", ""))
        handle_id = url.rsplit(WAIT_CONDITION_PATH, 1)[-1] if WAIT_CONDITION_PATH in url else ""
        with _handles_lock:
            state = _handles.get(handle_id)
        if state is None:
            raise ResourceFailedError(
                f"Handle {url!r} is not a wait condition handle of this emulator"
            )
        try:
            timeout = int(float(properties.get("Timeout", MAX_WAIT_CONDITION_TIMEOUT)))
            count = int(properties.get("Count", 1))
        except (TypeError, ValueError) as exc:
            raise ResourceFailedError(f"Invalid Timeout or Count: {exc}") from exc
        timeout = min(max(timeout, 1), MAX_WAIT_CONDITION_TIMEOUT)
        op = current_operation()
        LOG.info(
            "wait condition %s: waiting up to %d s for %d signal(s)",
            kwargs["LogicalId"],
            timeout,
            count,
        )

        def settled() -> bool:
            with state.lock:
                signals = list(state.signals.values())
            if any(signal["Status"] == "FAILURE" for signal in signals):
                return True
            return bool(sum(signal["Status"] == "SUCCESS" for signal in signals) >= count)

        done = context().wait_for(
            settled, timeout, cancelled=None if op is None else op.cancelled, poll=0.2
        )
        with state.lock:
            signals = dict(state.signals)
        for unique_id, signal in signals.items():
            if signal["Status"] == "FAILURE":
                raise ResourceFailedError(
                    f"WaitCondition received failed message: '{signal.get('Reason', '')}' "
                    f"for uniqueId: {unique_id}"
                )
        if not done:
            received = sum(signal["Status"] == "SUCCESS" for signal in signals.values())
            raise ResourceFailedError(
                f"WaitCondition timed out. Received {received} conditions when expecting {count}"
            )
        data = {uid: signal.get("Data", "") for uid, signal in signals.items()}
        return cls(f"{resource_name}-{handle_id[:8]}", data)

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Data":
            return json.dumps(self.data)
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()


def forget_handles() -> None:
    """Drop every wait condition handle (emulator stop)."""
    with _handles_lock:
        _handles.clear()
