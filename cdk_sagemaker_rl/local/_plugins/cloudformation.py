"""CloudFormation that waits: synchronous custom resources, real wait conditions, async stacks.

What moto does and why it is not enough for deploy-time training:

- ``Custom::*`` resources invoke their Lambda on Create only, in a thread, and create the
  dependents before the answer arrives, so ``GetAtt`` on the custom resource is None for them;
  FAILED answers are ignored; Update and Delete are never sent.
- ``AWS::CloudFormation::WaitCondition(Handle)`` are ignored (``NULL_MODELS``): the handle's Ref is
  empty and nothing waits.
- CreateStack/UpdateStack/DeleteStack do all the work inside the HTTP call, in an order that only
  follows ``DependsOn`` (updates even remove old resources first and create new ones before
  modifying the ones they depend on), and a failure surfaces as a 500 instead of a rollback.

This plugin makes stack operations behave like CloudFormation's, as far as moto's model allows:

- every operation runs in a background thread; the stack is ``*_IN_PROGRESS`` meanwhile, so the
  CDK CLI's calls return at once and it polls, as against AWS (a wait condition may wait hours);
- resources are created, updated and deleted in dependency order (``DependsOn`` plus ``Ref``,
  ``Fn::GetAtt`` and ``Fn::Sub`` references), with resource events (``CREATE_IN_PROGRESS``,
  ``CREATE_FAILED`` with the reason, ...) in DescribeStackEvents, which the CLI prints;
- custom resources get Create, Update (when their properties change) and Delete, and the
  operation waits for the answer at a response URL on the emulator; a FAILED answer fails the
  resource with CloudFormation's message, and a replaced physical id gets its Delete at clean-up;
- the wait condition handle's Ref is a URL on the emulator that accepts the signal PUT; the wait
  condition waits (up to its Timeout) for ``Count`` SUCCESS signals, fails on a FAILURE signal,
  and its ``Data`` attribute is the JSON object of the signals' data by UniqueId;
- a failed create rolls back (deleting what was created, custom resources included) to
  ``ROLLBACK_COMPLETE``; a failed update rolls back to ``UPDATE_ROLLBACK_COMPLETE`` (custom
  resources get an Update with the old properties); ``DisableRollback`` leaves
  ``CREATE_FAILED``/``UPDATE_FAILED``; DeleteStack during an operation cancels it (waits end with
  "Resource creation cancelled") and then deletes.

Outputs and the resource list are only evaluated from what exists: moto evaluates both lazily and
would otherwise create missing resources inside a DescribeStacks call.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from .runtime import LOG, EmulatorStopping, context

__all__ = [
    "CUSTOM_RESOURCE_RESPONSE_PATH",
    "DEFAULT_CUSTOM_RESOURCE_TIMEOUT",
    "WAIT_CONDITION_PATH",
    "forget",
    "handle_custom_resource_response",
    "handle_wait_condition_signal",
    "install",
    "stop_all",
]

CUSTOM_RESOURCE_RESPONSE_PATH = "/_local/cfn-response/"
WAIT_CONDITION_PATH = "/_local/wait-condition/"

#: CloudFormation waits an hour for a custom resource's answer unless ServiceTimeout says less.
DEFAULT_CUSTOM_RESOURCE_TIMEOUT = 3600.0

#: When the handler itself failed (FunctionError) and sent nothing, CloudFormation would still wait
#: for the full timeout; locally that is an hour lost, so give a late answer this long and fail.
FAILED_HANDLER_GRACE_SECONDS = 2.0

#: CloudFormation rejects custom resource responses larger than this.
MAX_RESPONSE_BYTES = 4096

#: CloudFormation's upper bound for a WaitCondition's Timeout.
MAX_WAIT_CONDITION_TIMEOUT = 43200

_OUTPUT_STATUSES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "IMPORT_COMPLETE",
    }
)


# --- errors -----------------------------------------------------------------------------------


class ResourceFailed(Exception):
    """A resource of the current operation failed; its event already carries ``reason``."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason


def _reason(exc: BaseException) -> str:
    """The human part of an exception, without moto's XML/JSON wrapping."""
    if isinstance(exc, ResourceFailed):
        return exc.reason
    if isinstance(exc, EmulatorStopping):
        return "Resource creation cancelled"
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    text = str(exc)
    return text or type(exc).__name__


# --- the current operation --------------------------------------------------------------------


@dataclass
class _Replacement:
    """A custom resource whose Update answered a new physical id: the old one gets a Delete."""

    resource: LocalCustomResource
    old_physical_id: str
    old_properties: dict[str, Any]
    new_physical_id: str


@dataclass
class StackOperation:
    """One CreateStack/UpdateStack/DeleteStack being carried out in the background."""

    stack: Any
    backend: Any
    action: str
    disable_rollback: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    delete_requested: bool = False
    thread: threading.Thread | None = None
    previous: StackOperation | None = None
    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    removals: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)
    replacements: list[_Replacement] = field(default_factory=list)
    failed_custom: list[LocalCustomResource] = field(default_factory=list)
    attempted_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    rolling_back: bool = False


_local = threading.local()
_operations: dict[str, StackOperation] = {}
_operations_lock = threading.Lock()


def current_operation() -> StackOperation | None:
    """The operation this thread carries out, if any."""
    op: StackOperation | None = getattr(_local, "op", None)
    return op


def _start(op: StackOperation, work: Any) -> None:
    def run() -> None:
        _local.op = op
        try:
            work(op)
        except Exception:
            LOG.exception("stack operation %s on %s crashed", op.action, op.stack.name)
        finally:
            _local.op = None
            with _operations_lock:
                if _operations.get(op.stack.stack_id) is op:
                    del _operations[op.stack.stack_id]

    thread = threading.Thread(
        target=run, name=f"cfn-{op.action.lower()}-{op.stack.name}", daemon=True
    )
    op.thread = thread
    with _operations_lock:
        _operations[op.stack.stack_id] = op
    thread.start()


def stop_all(timeout: float = 10.0) -> None:
    """Cancel every running operation and wait a little for their threads (emulator stop)."""
    with _operations_lock:
        ops = list(_operations.values())
    for op in ops:
        op.cancelled.set()
    for op in ops:
        if op.thread is not None:
            op.thread.join(timeout)


def forget() -> None:
    """Drop pending responses, wait condition handles and operations (emulator stop)."""
    with _pending_lock:
        _pending.clear()
    with _handles_lock:
        _handles.clear()
    with _operations_lock:
        _operations.clear()


def _status(op: StackOperation, status: str, reason: str | None = None) -> None:
    """Set the stack's status and add the stack event, unless a DeleteStack took the stack over."""
    if op.delete_requested and op.action != "DELETE":
        return
    op.stack.status = status
    op.stack.status_reason = reason
    op.stack._add_stack_event(status, resource_status_reason=reason)


def _resource_event(
    op: StackOperation | None,
    logical_id: str,
    resource_type: str,
    status: str,
    reason: str | None = None,
    physical_id: str | None = "",
) -> None:
    if op is None:
        return
    from moto.cloudformation.models import Event

    stack = op.stack
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id or "",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


# --- dependency order ---------------------------------------------------------------------------

_SUB_REFERENCE = re.compile(r"\$\{([^!}][^}]*)\}")


def _references(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                if isinstance(inner, list) and inner and isinstance(inner[0], str):
                    found.add(inner[0])
                elif isinstance(inner, str):
                    found.add(inner.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str):
                    found.update(m.split(".", 1)[0] for m in _SUB_REFERENCE.findall(text))
                if isinstance(inner, list) and len(inner) > 1:
                    _references(inner[1], found)
            else:
                _references(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _references(inner, found)


def _dependencies(resources: dict[str, Any]) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for name, definition in resources.items():
        found: set[str] = set()
        depends = definition.get("DependsOn", [])
        found.update([depends] if isinstance(depends, str) else depends)
        _references(definition.get("Properties", {}), found)
        graph[name] = [dep for dep in resources if dep in found and dep != name]
    return graph


def dependency_order(resources: dict[str, Any]) -> list[str]:
    """Resource names with every dependency before its dependents (template order otherwise)."""
    graph = _dependencies(resources)
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name):
            return  # done, or a cycle: CloudFormation would reject the template
        state[name] = 1
        for dep in graph[name]:
            visit(dep)
        state[name] = 2
        order.append(name)

    for name in resources:
        visit(name)
    return order


# --- custom resources ---------------------------------------------------------------------------


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""


_pending: dict[str, _Pending] = {}
_pending_lock = threading.Lock()


def handle_custom_resource_response(token: str, body: bytes) -> tuple[int, str]:
    """The PUT a custom resource handler sends to its ResponseURL."""
    with _pending_lock:
        pending = _pending.get(token)
    if pending is None:
        return 404, "no custom resource request is waiting for this response URL"
    pending.body = body
    pending.done.set()
    return 200, ""


def _lambda_function(service_token: str, account_id: str, region: str) -> Any:
    from moto.awslambda.utils import get_backend

    if ":lambda:" not in service_token:
        raise ResourceFailedError(
            f"ServiceToken {service_token!r}: local mode runs Lambda-backed custom resources only"
        )
    try:
        return get_backend(account_id, region).get_function(service_token)
    except Exception as exc:
        raise ResourceFailedError(f"ServiceToken {service_token}: {_reason(exc)}") from exc


class ResourceFailedError(Exception):
    """A resource handler's failure, with CloudFormation's wording as the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _as_cloudformation_sends(value: Any) -> Any:
    """Property values as CloudFormation sends them to a custom resource: every scalar leaf is a
    string (``3`` -> ``"3"``, ``True`` -> ``"true"``); lists and objects keep their shape."""
    if isinstance(value, dict):
        return {key: _as_cloudformation_sends(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_as_cloudformation_sends(inner) for inner in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class LocalCustomResource:
    """A Lambda-backed custom resource (``Custom::*`` and ``AWS::CloudFormation::CustomResource``).

    Not a moto ``CloudFormationModel`` subclass on purpose: moto's resource map only needs the
    class protocol (classmethods, ``physical_resource_id``, ``get_cfn_attribute``), and being
    outside ``CloudFormationModel.__subclasses__()`` keeps the registration explicit (see
    :func:`install`).
    """

    def __init__(
        self,
        *,
        account_id: str,
        region_name: str,
        stack_id: str,
        logical_id: str,
        resource_type: str,
        properties: dict[str, Any],
    ) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.stack_id = stack_id
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.properties = properties
        self.physical_resource_id = ""
        self.data: dict[str, Any] = {}
        self.request_id = ""

    # moto's model protocol -------------------------------------------------------------------

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFormation::CustomResource"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalCustomResource:
        resource = cls(
            account_id=account_id,
            region_name=region_name,
            stack_id=kwargs["StackId"],
            logical_id=kwargs["LogicalId"],
            resource_type=kwargs["ResourceType"],
            properties=dict(cloudformation_json.get("Properties") or {}),
        )
        try:
            response = resource._request("Create")
        except ResourceFailedError:
            op = current_operation()
            if op is not None and resource.physical_resource_id:
                op.failed_custom.append(resource)
            raise
        physical = response.get("PhysicalResourceId")
        if not isinstance(physical, str) or not physical:
            raise ResourceFailedError("Invalid PhysicalResourceId")
        resource.physical_resource_id = physical
        resource.data = dict(response.get("Data") or {})
        return resource

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: LocalCustomResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LocalCustomResource:
        original = original_resource
        new_properties = dict(cloudformation_json.get("Properties") or {})
        if new_properties.get("ServiceToken") != original.properties.get("ServiceToken"):
            raise ResourceFailedError("Modifying service token is not allowed.")
        op = current_operation()
        old_properties = original.properties
        if op is not None and op.rolling_back:
            old_properties = op.attempted_properties.get(original.logical_id, old_properties)
        elif op is not None:
            op.attempted_properties[original.logical_id] = new_properties
        response = original._request(
            "Update", properties=new_properties, old_properties=old_properties
        )
        physical = response.get("PhysicalResourceId") or original.physical_resource_id
        updated = cls(
            account_id=original.account_id,
            region_name=original.region_name,
            stack_id=original.stack_id,
            logical_id=original.logical_id,
            resource_type=original.resource_type,
            properties=new_properties,
        )
        updated.physical_resource_id = str(physical)
        updated.data = dict(response.get("Data") or {})
        if op is not None and updated.physical_resource_id != original.physical_resource_id:
            op.replacements.append(
                _Replacement(
                    resource=updated,
                    old_physical_id=original.physical_resource_id,
                    old_properties=original.properties,
                    new_physical_id=updated.physical_resource_id,
                )
            )
        return updated

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        """Unused: moto calls :meth:`delete` on the instance first."""

    def delete(self, account_id: str, region_name: str) -> None:
        self._request("Delete")

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name in self.data:
            return self.data[attribute_name]
        if current_operation() is not None:
            raise ResourceFailedError(
                f"CustomResource attribute error: Vendor response doesn't contain "
                f"{attribute_name} attribute in object {self.stack_id}|{self.logical_id}|"
                f"{self.request_id}"
            )
        return None

    # the request/response exchange -----------------------------------------------------------

    def _request(
        self,
        request_type: str,
        *,
        properties: dict[str, Any] | None = None,
        old_properties: dict[str, Any] | None = None,
        physical_resource_id: str | None = None,
    ) -> dict[str, Any]:
        """Send one request to the handler and return its SUCCESS response (or raise)."""
        ctx = context()
        properties = self.properties if properties is None else properties
        service_token = str(properties.get("ServiceToken", ""))
        function = _lambda_function(service_token, self.account_id, self.region_name)
        self.request_id = str(uuid.uuid4())
        token = uuid.uuid4().hex
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": service_token,
            "ResponseURL": f"{ctx.endpoint_url}{CUSTOM_RESOURCE_RESPONSE_PATH}{token}",
            "StackId": self.stack_id,
            "RequestId": self.request_id,
            "LogicalResourceId": self.logical_id,
            "ResourceType": self.resource_type,
            "ResourceProperties": _as_cloudformation_sends(properties),
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = physical_resource_id or self.physical_resource_id
        if request_type == "Update":
            event["OldResourceProperties"] = _as_cloudformation_sends(old_properties or {})
        timeout = DEFAULT_CUSTOM_RESOURCE_TIMEOUT
        with contextlib.suppress(TypeError, ValueError):
            timeout = float(properties.get("ServiceTimeout", timeout))
        pending = _Pending()
        with _pending_lock:
            _pending[token] = pending
        LOG.info(
            "custom resource %s %s: %s via %s",
            self.logical_id,
            request_type,
            self.request_id,
            function.function_name,
        )
        op = current_operation()
        try:
            from .lambda_exec import invoke_function

            invocation = invoke_function(function, json.dumps(event))
            wait = FAILED_HANDLER_GRACE_SECONDS if invocation.function_error else timeout
            answered = ctx.wait_for(
                pending.done.is_set, wait, cancelled=None if op is None else op.cancelled
            )
        finally:
            with _pending_lock:
                _pending.pop(token, None)
        if not answered:
            if invocation.function_error:
                raise ResourceFailedError(
                    f"Custom resource handler {function.function_name} failed without sending a "
                    f"response ({invocation.error_summary}). CloudFormation would wait "
                    f"{timeout:.0f} s for it; local mode fails at once."
                )
            raise ResourceFailedError(
                "CloudFormation did not receive a response from your Custom Resource. Please "
                f"check your logs for requestId [{self.request_id}]."
            )
        if len(pending.body) > MAX_RESPONSE_BYTES:
            raise ResourceFailedError("Response object is too long.")
        try:
            response = json.loads(pending.body)
        except ValueError as exc:
            raise ResourceFailedError(f"Invalid response object: {exc}") from exc
        if not isinstance(response, dict):
            raise ResourceFailedError("Invalid response object: not a JSON object")
        physical = response.get("PhysicalResourceId")
        if request_type == "Create" and isinstance(physical, str) and physical:
            self.physical_resource_id = physical
        status = response.get("Status")
        if status == "FAILED":
            raise ResourceFailedError(
                "Received response status [FAILED] from custom resource. Message returned: "
                f"{response.get('Reason', '')} (RequestId: {self.request_id})"
            )
        if status != "SUCCESS":
            raise ResourceFailedError(f"Invalid response status {status!r} from custom resource")
        data = response.get("Data")
        if data is not None and not isinstance(data, dict):
            raise ResourceFailedError("Invalid response object: Data must be a JSON object")
        return response


# --- wait conditions --------------------------------------------------------------------------


@dataclass
class _HandleState:
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


class LocalWaitConditionHandle:
    """``AWS::CloudFormation::WaitConditionHandle``: its Ref is the URL to signal."""

    def __init__(self, handle_id: str, url: str) -> None:
        self.handle_id = handle_id
        self.physical_resource_id = url

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFormation::WaitConditionHandle"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

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

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: LocalWaitConditionHandle,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LocalWaitConditionHandle:
        return original_resource  # a handle has no properties to update

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        """Unused: :meth:`delete` is called on the instance."""

    def delete(self, account_id: str, region_name: str) -> None:
        with _handles_lock:
            _handles.pop(self.handle_id, None)

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()


class LocalWaitCondition:
    """``AWS::CloudFormation::WaitCondition``: creation waits for the handle's signals."""

    def __init__(self, physical_resource_id: str, data: dict[str, Any]) -> None:
        self.physical_resource_id = physical_resource_id
        self.data = data

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFormation::WaitCondition"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Data"

    def is_created(self) -> bool:
        return True

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

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: LocalWaitCondition,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LocalWaitCondition:
        return original_resource  # CloudFormation does not update wait conditions either

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        """Unused: :meth:`delete` is called on the instance."""

    def delete(self, account_id: str, region_name: str) -> None:
        """Nothing to release."""

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Data":
            return json.dumps(self.data)
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()


# --- resource map: ordered create / update / delete with events -------------------------------


def _supported(resource_type: str) -> bool:
    from moto.cloudformation import parsing

    if resource_type in parsing.NULL_MODELS:
        return False
    return resource_type.startswith("Custom::") or resource_type in parsing.get_model_map()


def _make_create_with_events(original: Any) -> Any:
    def parse_and_create_resource(
        logical_id: str,
        resource_json: dict[str, Any],
        resources_map: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        op = current_operation()
        resource_type = str(resource_json.get("Type", ""))
        condition = resource_json.get("Condition")
        if (
            op is None
            or op.stack.stack_id != resources_map.stack_id
            or (condition and not resources_map.lazy_condition_map[condition])
            or not _supported(resource_type)
        ):
            return original(logical_id, resource_json, resources_map, account_id, region_name)
        _resource_event(op, logical_id, resource_type, "CREATE_IN_PROGRESS")
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:
            raise
        except Exception as exc:
            reason = _reason(exc)
            op.failed.append(logical_id)
            _resource_event(op, logical_id, resource_type, "CREATE_FAILED", reason)
            raise ResourceFailed(logical_id, reason) from exc
        physical = getattr(resource, "physical_resource_id", "")
        _resource_event(op, logical_id, resource_type, "CREATE_COMPLETE", physical_id=physical)
        op.created.append(logical_id)
        _remember_inputs(resources_map, logical_id, resource_json)
        return resource

    return parse_and_create_resource


def _map_create(self: Any, template: dict[str, Any]) -> bool:
    """``ResourceMap.create`` in dependency order (moto follows DependsOn only)."""
    from moto.ec2 import models as ec2_models
    from moto.ec2.models.core import TaggedEC2Resource

    self._template = template
    self._resource_json_map = template["Resources"]
    self.tags.update(
        {
            "aws:cloudformation:stack-name": self["AWS::StackName"],
            "aws:cloudformation:stack-id": self["AWS::StackId"],
        }
    )
    for name in dependency_order(self._resource_json_map):
        instance: Any = self[name]
        if isinstance(instance, TaggedEC2Resource):
            self.tags["aws:cloudformation:logical-id"] = name
            backend = ec2_models.ec2_backends[self._account_id][self._region_name]
            backend.create_tags([getattr(instance, "physical_resource_id", "")], self.tags)
    return True


def _resolved_properties(rmap: Any, definition: dict[str, Any]) -> Any:
    from moto.cloudformation.parsing import clean_json

    return clean_json(copy.deepcopy(definition.get("Properties") or {}), rmap)


def _remember_inputs(rmap: Any, name: str, definition: dict[str, Any]) -> None:
    """Keep the resolved properties a resource was created or updated with.

    CloudFormation updates a resource when a value it references changes (a new
    ``GetAtt TrainingRun.ModelDataUrl``), not only when its template text does; moto compares
    template text only. :func:`_inputs_changed` compares these against the current values.
    """
    try:
        resolved = _resolved_properties(rmap, definition)
    except Exception:
        return
    rmap.__dict__.setdefault("_local_resolved", {})[name] = resolved


def _inputs_changed(rmap: Any, name: str) -> bool:
    remembered: dict[str, Any] = rmap.__dict__.get("_local_resolved", {})
    if name not in remembered or name not in rmap._resource_json_map:
        return False
    try:
        current = _resolved_properties(rmap, rmap._resource_json_map[name])
    except Exception:
        return False
    return bool(current != remembered[name])


def _update_one(
    op: StackOperation | None, rmap: Any, name: str, definition: dict[str, Any]
) -> None:
    from moto.cloudformation import parsing

    resource_type = str(definition.get("Type", ""))
    original = rmap._parsed_resources.get(name)
    physical = getattr(original, "physical_resource_id", "")
    _resource_event(op, name, resource_type, "UPDATE_IN_PROGRESS", physical_id=physical)
    try:
        changed = parsing.parse_and_update_resource(
            name, definition, rmap, account_id=rmap._account_id, region_name=rmap._region_name
        )
    except Exception as exc:
        reason = _reason(exc)
        if op is not None:
            op.failed.append(name)
        _resource_event(op, name, resource_type, "UPDATE_FAILED", reason, physical)
        raise ResourceFailed(name, reason) from exc
    if changed is not None:
        rmap._parsed_resources[name] = changed
        physical = getattr(changed, "physical_resource_id", physical)
    _resource_event(op, name, resource_type, "UPDATE_COMPLETE", physical_id=physical)
    _remember_inputs(rmap, name, definition)
    if op is not None and not op.rolling_back:
        op.modified.append(name)


def _map_update(
    self: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> None:
    """``ResourceMap.update``: add and modify in dependency order, remove at clean-up.

    Inside a stack operation the removals are left to the operation's clean-up phase (as
    CloudFormation does after the update succeeded); outside one (change sets) they happen here.
    """
    diff = self.build_resource_diff(template, parameters)
    op = current_operation()
    old_resources = self._resource_json_map
    self._template = template
    if parameters:
        self.input_parameters = parameters
    self.load_mapping()
    self.load_parameters()
    self.load_conditions()
    self._resource_json_map = template["Resources"]
    adds, modifies = set(diff["Add"]), set(diff["Modify"])
    for name in dependency_order(self._resource_json_map):
        if name in adds:
            _ = self[name]
        elif name in modifies or _inputs_changed(self, name):
            _update_one(op, self, name, self._resource_json_map[name])
    removals = [
        (name, self._parsed_resources.get(name), old_resources[name])
        for name in reversed(dependency_order(old_resources))
        if name in diff["Remove"]
    ]
    if op is not None:
        op.removals.extend(removals)
        return
    for name, resource, definition in removals:
        if resource is not None:
            self._delete_resource(resource, definition)
            self._parsed_resources.pop(name, None)


def _delete_resources(
    op: StackOperation | None,
    rmap: Any,
    items: Iterable[tuple[str, Any, dict[str, Any]]],
    *,
    retain: tuple[str, ...] = ("Retain", "RetainExceptOnCreate"),
) -> list[str]:
    """Delete ``(name, resource, definition)`` in the given order; return the names that failed.

    ``retain`` lists the DeletionPolicy values that keep a resource: a stack delete honours both
    retaining policies, the rollback of a create deletes ``RetainExceptOnCreate`` resources.
    """
    failed: list[str] = []
    for name, resource, definition in items:
        if resource is None or isinstance(resource, (str, int, float, list, dict)):
            continue
        resource_type = str(definition.get("Type", ""))
        physical = getattr(resource, "physical_resource_id", "")
        if definition.get("DeletionPolicy") in retain:
            _resource_event(op, name, resource_type, "DELETE_SKIPPED", physical_id=physical)
            rmap._parsed_resources.pop(name, None)
            continue
        _resource_event(op, name, resource_type, "DELETE_IN_PROGRESS", physical_id=physical)
        try:
            rmap._delete_resource(resource, definition)
        except Exception as exc:
            reason = _reason(exc)
            LOG.warning("deleting %s (%s) failed: %s", name, resource_type, reason)
            _resource_event(op, name, resource_type, "DELETE_FAILED", reason, physical)
            failed.append(name)
            continue
        rmap._parsed_resources.pop(name, None)
        _resource_event(op, name, resource_type, "DELETE_COMPLETE", physical_id=physical)
    return failed


def _current_items(rmap: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    resources = rmap._resource_json_map
    return [
        (name, rmap._parsed_resources.get(name), resources[name])
        for name in reversed(dependency_order(resources))
    ]


def _map_delete(self: Any) -> None:
    """``ResourceMap.delete`` in reverse dependency order, each resource once."""
    failed = _delete_resources(current_operation(), self, _current_items(self))
    if failed:
        raise ResourceFailedError(
            f"The following resource(s) failed to delete: [{', '.join(failed)}]. "
        )


def _delete_custom(
    op: StackOperation, resource: LocalCustomResource, physical_id: str, properties: dict[str, Any]
) -> None:
    """Delete one physical id of a custom resource (replacement clean-up, failed creates)."""
    _resource_event(
        op,
        resource.logical_id,
        resource.resource_type,
        "DELETE_IN_PROGRESS",
        physical_id=physical_id,
    )
    try:
        resource._request("Delete", properties=properties, physical_resource_id=physical_id)
    except Exception as exc:
        reason = _reason(exc)
        _resource_event(
            op, resource.logical_id, resource.resource_type, "DELETE_FAILED", reason, physical_id
        )
        return
    _resource_event(
        op, resource.logical_id, resource.resource_type, "DELETE_COMPLETE", physical_id=physical_id
    )


# --- stack operations -------------------------------------------------------------------------


def _finish_outputs(op: StackOperation) -> None:
    """Evaluate outputs and exports now, in the operation, so that their errors fail it."""
    stack, backend = op.stack, op.backend
    _ORIGINAL_OUTPUTS.fget(stack)
    exports = stack.output_map.exports
    own = {
        name
        for name, export in backend.exports.items()
        if export.exporting_stack_id == stack.stack_id
    }
    for export in exports:
        if export.name in backend.exports and export.name not in own:
            raise ResourceFailedError(
                f"Export with name {export.name} is already exported by another stack"
            )
    for name in own:
        backend.exports.pop(name, None)
    for export in exports:
        backend.exports[export.name] = export


def _failure_summary(op: StackOperation, exc: BaseException, verb: str) -> str:
    if op.failed:
        names = ", ".join(dict.fromkeys(op.failed))
        return f"The following resource(s) failed to {verb}: [{names}]. "
    return f"{_reason(exc)} "


def _run_create(op: StackOperation) -> None:
    stack = op.stack
    try:
        stack.resource_map.create(stack.template_dict)
        stack.description = stack.template_dict.get("Description")
        _finish_outputs(op)
    except Exception as exc:
        _fail_create(op, exc)
        return
    _status(op, "CREATE_COMPLETE")


def _fail_create(op: StackOperation, exc: BaseException) -> None:
    if op.delete_requested:
        return  # the DeleteStack that cancelled us deletes what was created
    if context().shutdown.is_set():
        return  # the emulator forgets every resource anyway: no Lambda calls for a rollback
    summary = _failure_summary(op, exc, "create")
    LOG.warning("stack %s: create failed: %s", op.stack.name, _reason(exc))
    if op.disable_rollback:
        _status(op, "CREATE_FAILED", summary.strip())
        return
    _status(op, "ROLLBACK_IN_PROGRESS", f"{summary}Rollback requested by user.")
    op.rolling_back = True
    rmap = op.stack.resource_map
    failed = _delete_resources(op, rmap, _current_items(rmap), retain=("Retain",))
    for resource in op.failed_custom:
        _delete_custom(op, resource, resource.physical_resource_id, resource.properties)
    if failed:
        _status(
            op,
            "ROLLBACK_FAILED",
            f"The following resource(s) failed to delete: [{', '.join(failed)}]. ",
        )
    else:
        _status(op, "ROLLBACK_COMPLETE", f"{summary}Rollback requested by user.".strip())


@dataclass
class _Snapshot:
    template: Any
    template_dict: dict[str, Any]
    input_parameters: dict[str, Any]
    parameters: dict[str, Any]


def _run_update(
    op: StackOperation,
    template: str,
    role_arn: str | None,
    parameters: dict[str, Any],
    tags: dict[str, str] | None,
) -> None:
    stack = op.stack
    rmap = stack.resource_map
    snapshot = _Snapshot(
        template=stack.template,
        template_dict=copy.deepcopy(stack.template_dict),
        input_parameters=dict(rmap.input_parameters or {}),
        parameters=dict(stack.parameters or {}),
    )
    try:
        stack.template = template
        stack._parse_template()
        rmap.update(stack.template_dict, parameters)
        stack.output_map = stack._create_output_map()
        _finish_outputs(op)
    except Exception as exc:
        _fail_update(op, exc, snapshot)
        return
    stack.role_arn = role_arn
    if parameters:
        stack.parameters = parameters
    if tags is not None:
        stack.tags = tags
    _status(op, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    _delete_resources(op, rmap, op.removals)
    for replaced in op.replacements:
        _delete_custom(op, replaced.resource, replaced.old_physical_id, replaced.old_properties)
    _status(op, "UPDATE_COMPLETE")


def _fail_update(op: StackOperation, exc: BaseException, snapshot: _Snapshot) -> None:
    stack = op.stack
    rmap = stack.resource_map
    new_resources = rmap._resource_json_map
    if op.delete_requested:
        # Let the DeleteStack see every resource that exists, old and new.
        rmap._resource_json_map = {**snapshot.template_dict.get("Resources", {}), **new_resources}
        return
    if context().shutdown.is_set():
        return
    added = [name for name in op.created if name not in snapshot.template_dict.get("Resources", {})]
    summary = _failure_summary(op, exc, "create" if set(op.failed) <= set(added) else "update")
    LOG.warning("stack %s: update failed: %s", stack.name, _reason(exc))
    if op.disable_rollback:
        _status(op, "UPDATE_FAILED", summary.strip())
        return
    _status(op, "UPDATE_ROLLBACK_IN_PROGRESS", summary.strip())
    op.rolling_back = True
    try:
        rmap._template = snapshot.template_dict
        rmap.input_parameters = snapshot.input_parameters
        rmap.load_mapping()
        rmap.load_parameters()
        rmap.load_conditions()
        rmap._resource_json_map = snapshot.template_dict["Resources"]
        to_restore = set(op.modified) | (set(op.failed) - set(added))
        for name in dependency_order(rmap._resource_json_map):
            if name not in rmap._parsed_resources:
                continue
            if name in to_restore or _inputs_changed(rmap, name):
                _update_one(op, rmap, name, rmap._resource_json_map[name])
        stack.template = snapshot.template
        stack._parse_template()
        stack.parameters = snapshot.parameters
        stack.output_map = stack._create_output_map()
        _finish_outputs(op)
    except Exception as rollback_exc:
        LOG.warning("stack %s: update rollback failed: %s", stack.name, _reason(rollback_exc))
        _status(op, "UPDATE_ROLLBACK_FAILED", _reason(rollback_exc))
        return
    _status(op, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    items = [
        (name, rmap._parsed_resources.get(name), new_resources[name])
        for name in reversed(dependency_order(new_resources))
        if name in added
    ]
    _delete_resources(op, rmap, items, retain=("Retain",))
    for replaced in op.replacements:
        current = rmap._parsed_resources.get(replaced.resource.logical_id)
        if getattr(current, "physical_resource_id", None) != replaced.new_physical_id:
            _delete_custom(
                op, replaced.resource, replaced.new_physical_id, replaced.resource.properties
            )
    _status(op, "UPDATE_ROLLBACK_COMPLETE")


def _run_delete(op: StackOperation) -> None:
    stack, backend = op.stack, op.backend
    previous = op.previous
    if previous is not None and previous.thread is not None:
        previous.thread.join()
    rmap = stack.resource_map
    failed = _delete_resources(op, rmap, _current_items(rmap))
    if failed:
        _status(
            op,
            "DELETE_FAILED",
            f"The following resource(s) failed to delete: [{', '.join(failed)}]. ",
        )
        return
    _status(op, "DELETE_COMPLETE")
    backend.stacks.pop(stack.stack_id, None)
    backend.deleted_stacks[stack.stack_id] = stack
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            backend.exports.pop(name, None)


# --- backend and response patches ----------------------------------------------------------------

_flags = threading.local()


def _disable_rollback_requested() -> bool:
    return bool(getattr(_flags, "disable_rollback", False))


def _with_rollback_flag(original: Any) -> Any:
    def action(self: Any) -> Any:
        on_failure = self._get_param("OnFailure")
        _flags.disable_rollback = bool(
            self._get_bool_param("DisableRollback", False) or on_failure == "DO_NOTHING"
        )
        try:
            return original(self)
        finally:
            _flags.disable_rollback = False

    return action


def _create_stack(
    self: Any,
    name: str,
    template: str,
    parameters: dict[str, Any],
    notification_arns: list[str] | None = None,
    tags: dict[str, str] | None = None,
    role_arn: str | None = None,
    enable_termination_protection: bool | None = False,
    timeout_in_mins: int | None = None,
    stack_policy_body: str | None = None,
) -> Any:
    """``CloudFormationBackend.create_stack`` that validates now and creates in the background."""
    from moto.cloudformation.exceptions import AlreadyExistsException
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import generate_stack_id

    if name in [stack.name for stack in self.stacks.values()]:
        raise AlreadyExistsException(f"Stack [{name}] already exists")
    stack_id = generate_stack_id(name, self.region_name, self.account_id)
    stack_class: Any = Stack  # moto's Stack is abstract for mypy only
    stack = stack_class(
        stack_id=stack_id,
        name=name,
        template=template,
        parameters=parameters,
        account_id=self.account_id,
        region_name=self.region_name,
        notification_arns=notification_arns,
        tags=tags,
        role_arn=role_arn,
        cross_stack_resources=self.exports,
        enable_termination_protection=enable_termination_protection,
        timeout_in_mins=timeout_in_mins,
        stack_policy_body=stack_policy_body,
    )
    self.stacks[stack_id] = stack
    op = StackOperation(stack, self, "CREATE", disable_rollback=_disable_rollback_requested())
    stack.disable_rollback = op.disable_rollback
    _status(op, "CREATE_IN_PROGRESS", "User Initiated")
    _start(op, _run_create)
    return stack


def _update_stack(
    self: Any,
    name: str,
    template: str,
    role_arn: str | None,
    parameters: list[dict[str, Any]],
    tags: dict[str, str] | None,
) -> Any:
    """``CloudFormationBackend.update_stack`` that updates in the background."""
    from moto.cloudformation.exceptions import ValidationError

    stack = self.get_stack(name)
    if stack.status.endswith("_IN_PROGRESS"):
        raise ValidationError(
            stack.stack_id,
            message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.",
        )
    resolved = self._resolve_update_parameters(instance=stack, incoming_params=parameters)
    op = StackOperation(stack, self, "UPDATE", disable_rollback=_disable_rollback_requested())
    _status(op, "UPDATE_IN_PROGRESS", "User Initiated")
    _start(op, lambda running: _run_update(running, template, role_arn, resolved, tags))
    return stack


def _delete_stack(self: Any, name_or_stack_id: str) -> None:
    """``CloudFormationBackend.delete_stack`` that cancels a running operation and deletes in the
    background; the stack is DELETE_IN_PROGRESS until then."""
    stack = self.stacks.get(name_or_stack_id)
    if stack is None:
        stack = next((s for s in self.stacks.values() if s.name == name_or_stack_id), None)
    if stack is None or stack.status == "DELETE_IN_PROGRESS":
        return
    with _operations_lock:
        previous = _operations.get(stack.stack_id)
    if previous is not None:
        previous.delete_requested = True
        previous.cancelled.set()
    op = StackOperation(stack, self, "DELETE", previous=previous)
    _status(op, "DELETE_IN_PROGRESS", "User Initiated")
    _start(op, _run_delete)


def _outputs(self: Any) -> Any:
    op = current_operation()
    if (op is not None and op.stack is self) or self.status in _OUTPUT_STATUSES:
        return _ORIGINAL_OUTPUTS.fget(self)
    return None


def _stack_resources(self: Any) -> list[Any]:
    rmap = self.resource_map
    return [
        resource
        for name, resource in list(rmap._parsed_resources.items())
        if name in rmap._resource_json_map and resource is not None
    ]


def _name_unnamed_ssm_parameters() -> None:
    """moto creates an ``AWS::SSM::Parameter`` without ``Name`` as a parameter named None (and
    fails); CloudFormation generates a name, and keeps it when the parameter is updated."""
    from moto.ssm.models import Parameter

    original_create = Parameter.create_from_cloudformation_json
    original_update = Parameter.update_from_cloudformation_json

    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        cloudformation_json.setdefault("Properties", {}).setdefault("Name", resource_name)
        return original_create(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )

    def update(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json.setdefault("Properties", {})
        properties.setdefault("Name", original_resource.name)
        return original_update(
            original_resource, properties["Name"], cloudformation_json, account_id, region_name
        )

    Parameter.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        cast(Any, create)
    )
    Parameter.update_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        cast(Any, update)
    )


_ORIGINAL_OUTPUTS: Any = None
_installed = False


def install() -> None:
    """Patch moto's CloudFormation (once per process)."""
    global _ORIGINAL_OUTPUTS, _installed
    if _installed:
        return
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend, Stack
    from moto.cloudformation.responses import CloudFormationResponse

    models: list[Any] = [LocalCustomResource, LocalWaitConditionHandle, LocalWaitCondition]
    for model in models:
        if model.cloudformation_type() in parsing.NULL_MODELS:
            parsing.NULL_MODELS.remove(model.cloudformation_type())
    # resource_class_from_type() answers this module global for every Custom:: type.
    setattr(parsing, "CustomModel", LocalCustomResource)  # noqa: B010
    original_map = parsing.get_model_map

    def get_model_map() -> dict[str, Any]:
        mapping = dict(original_map())
        mapping.update({model.cloudformation_type(): model for model in models})
        return mapping

    parsing.get_model_map = get_model_map  # type: ignore[assignment]
    parsing.parse_and_create_resource = _make_create_with_events(parsing.parse_and_create_resource)
    parsing.ResourceMap.create = _map_create  # type: ignore[method-assign]
    parsing.ResourceMap.update = _map_update  # type: ignore[method-assign]
    parsing.ResourceMap.delete = _map_delete  # type: ignore[method-assign]
    _ORIGINAL_OUTPUTS = Stack.outputs
    Stack.outputs = property(_outputs)  # type: ignore[assignment,method-assign]
    Stack.stack_resources = property(_stack_resources)  # type: ignore[assignment,method-assign]
    Stack.status_reason = None  # type: ignore[attr-defined]
    CloudFormationBackend.create_stack = _create_stack  # type: ignore[method-assign]
    CloudFormationBackend.update_stack = _update_stack  # type: ignore[method-assign]
    CloudFormationBackend.delete_stack = _delete_stack  # type: ignore[method-assign]
    CloudFormationResponse.create_stack = _with_rollback_flag(  # type: ignore[method-assign]
        CloudFormationResponse.create_stack
    )
    CloudFormationResponse.update_stack = _with_rollback_flag(  # type: ignore[method-assign]
        CloudFormationResponse.update_stack
    )
    _name_unnamed_ssm_parameters()
    _installed = True
