"""CloudTrail's LookupEvents: a clear, final "unsupported" instead of moto's 500.

When a deployment fails, the CDK CLI looks for control-plane errors in CloudTrail's event history
(``LookupEvents``) to explain the failure. moto does not implement LookupEvents: its server
answers 500, which the AWS SDK treats as transient and retries with backoff, so a failed local
deploy spent about half a minute in retries before it reported the failure. The emulator keeps
no event history; it answers CloudTrail's ``UnsupportedOperationException`` (400), which the SDK
does not retry and the CLI skips (it logs the lookup failure at debug level and reports the
failure from the stack events, as it would have anyway).
"""

from __future__ import annotations

from typing import Any

__all__ = ["install"]

_MESSAGE = "the local emulator keeps no CloudTrail event history (LookupEvents is not supported)"


def _lookup_events(self: Any) -> str:
    from moto.core.exceptions import JsonRESTError

    raise JsonRESTError("UnsupportedOperationException", _MESSAGE)


def install() -> None:
    """Answer LookupEvents with UnsupportedOperationException (idempotent)."""
    from moto.cloudtrail.responses import CloudTrailResponse

    CloudTrailResponse.lookup_events = _lookup_events  # type: ignore[attr-defined]
