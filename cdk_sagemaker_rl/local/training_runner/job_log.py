"""The job's log: every line kept for the result and streamed to the caller as it arrives."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["JobLog"]


class JobLog:
    """Collects the job's log lines and forwards each one to the caller as it arrives.

    Lines come from two reader threads (stdout, stderr) and the runner itself, hence the lock. A
    callback that raises is ignored: a broken log consumer must not stall the pipe and hang the job.
    """

    def __init__(self, on_log: Callable[[str], None] | None) -> None:
        self._on_log = on_log
        self._lock = threading.Lock()
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        with self._lock:
            self.lines.append(text)
            if self._on_log is not None:
                with contextlib.suppress(Exception):  # see the class docstring
                    self._on_log(text)

    def info(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
        self.line(f"{stamp} local-training-runner INFO     {message}")
