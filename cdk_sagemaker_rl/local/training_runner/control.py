"""How a training job ends other than by completing: a failure, a stop request, the deadline.

Every step of the runner raises :class:`JobFailed` (with DescribeTrainingJob's FailureReason) or
:class:`JobStopped` (with its SecondaryStatus) and the runner turns them into the job's result, so
the steps need not know about each other's outcomes.
"""

from __future__ import annotations

import threading
import time

__all__ = ["FAILURE_REASON_MAX_CHARS", "Guard", "JobFailed", "JobStopped", "truncate_reason"]

#: DescribeTrainingJob's FailureReason holds at most 1024 characters.
FAILURE_REASON_MAX_CHARS = 1024


class JobFailed(Exception):
    """The job fails with ``reason`` as its FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobStopped(Exception):
    """The job was stopped; ``secondary_status`` is ``Stopped`` or ``MaxRuntimeExceeded``."""

    def __init__(self, secondary_status: str) -> None:
        super().__init__(secondary_status)
        self.secondary_status = secondary_status


class Guard:
    """The job's deadline (MaxRuntimeInSeconds, counted from the start), stop request and
    stop grace period."""

    def __init__(
        self, max_runtime: float, stop_event: threading.Event | None, grace_seconds: float
    ) -> None:
        self.deadline = time.monotonic() + max_runtime
        self.stop_event = stop_event
        #: Seconds between SIGTERM and SIGKILL when the job is stopped or runs out of time.
        self.grace_seconds = grace_seconds

    def reason_to_stop(self) -> str | None:
        if self.stop_event is not None and self.stop_event.is_set():
            return "Stopped"
        if time.monotonic() >= self.deadline:
            return "MaxRuntimeExceeded"
        return None

    def check(self) -> None:
        reason = self.reason_to_stop()
        if reason is not None:
            raise JobStopped(reason)


def truncate_reason(reason: str) -> str:
    """``reason`` cut to what DescribeTrainingJob's FailureReason holds."""
    if len(reason) <= FAILURE_REASON_MAX_CHARS:
        return reason
    return reason[: FAILURE_REASON_MAX_CHARS - 3] + "..."
