"""How a resource fails, and the words CloudFormation uses for it.

Two kinds: :class:`ResourceFailedError` is raised by a resource handler (a custom resource's
FAILED answer, a wait condition's timeout, an endpoint that is not InService) with the message the
resource event shows; :class:`ResourceFailed` is the operation's own signal that a resource failed
and its event is already written, so that callers up the stack do not report it twice.
"""

from __future__ import annotations

from ..runtime import EmulatorStopping

__all__ = ["ResourceFailed", "ResourceFailedError", "reason_of"]


class ResourceFailed(Exception):
    """A resource of the current operation failed; its event already carries ``reason``."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason


class ResourceFailedError(Exception):
    """A resource handler's failure, with CloudFormation's wording as the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def reason_of(exc: BaseException) -> str:
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
