"""Lambda-backed custom resources that CloudFormation waits for: Create, Update and Delete.

moto invokes a custom resource's Lambda on Create only, in a thread, without waiting for the
answer and ignoring FAILED; this model sends every request type with CloudFormation's event
(string-valued properties, ``OldResourceProperties``, a ResponseURL on the emulator) and blocks
until the handler PUTs its answer there (up to ``ServiceTimeout``), so that ``GetAtt`` on it works
for its dependents and a FAILED answer fails the resource with CloudFormation's message.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..runtime import LOG, context
from .errors import ResourceFailedError, reason_of
from .local_model import LocalModel
from .operation import Replacement, StackOperation, current_operation, resource_event

__all__ = [
    "CUSTOM_RESOURCE_RESPONSE_PATH",
    "DEFAULT_CUSTOM_RESOURCE_TIMEOUT",
    "LocalCustomResource",
    "forget_pending",
    "handle_custom_resource_response",
]

#: A handler's ResponseURL is ``<emulator URL><this path><token>``; the emulator routes its PUT
#: to :func:`handle_custom_resource_response`.
CUSTOM_RESOURCE_RESPONSE_PATH = "/_local/cfn-response/"

#: CloudFormation waits an hour for a custom resource's answer unless ServiceTimeout says less.
DEFAULT_CUSTOM_RESOURCE_TIMEOUT = 3600.0

#: When the handler itself failed (FunctionError) and sent nothing, CloudFormation would still wait
#: for the full timeout; locally that is an hour lost, so give a late answer this long and fail.
FAILED_HANDLER_GRACE_SECONDS = 2.0

#: CloudFormation rejects custom resource responses larger than this.
MAX_RESPONSE_BYTES = 4096


@dataclass
class _Pending:
    """A request waiting for its handler's answer at the response URL."""

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
        raise ResourceFailedError(f"ServiceToken {service_token}: {reason_of(exc)}") from exc


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


class LocalCustomResource(LocalModel):
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

    CFN_TYPE = "AWS::CloudFormation::CustomResource"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
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
                Replacement(
                    resource=updated,
                    old_physical_id=original.physical_resource_id,
                    old_properties=original.properties,
                    new_physical_id=updated.physical_resource_id,
                )
            )
        return updated

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

    def delete_physical_id(
        self, op: StackOperation, physical_id: str, properties: dict[str, Any]
    ) -> None:
        """Send a Delete for one physical id of this resource (replaced ids, failed creates)."""
        resource_event(
            op,
            self.logical_id,
            self.resource_type,
            "DELETE_IN_PROGRESS",
            physical_id=physical_id,
        )
        try:
            self._request("Delete", properties=properties, physical_resource_id=physical_id)
        except Exception as exc:
            reason = reason_of(exc)
            resource_event(
                op, self.logical_id, self.resource_type, "DELETE_FAILED", reason, physical_id
            )
            return
        resource_event(
            op, self.logical_id, self.resource_type, "DELETE_COMPLETE", physical_id=physical_id
        )

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
            from ..lambda_exec import invoke_function

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


def forget_pending() -> None:
    """Drop the requests waiting for an answer (emulator stop)."""
    with _pending_lock:
        _pending.clear()
