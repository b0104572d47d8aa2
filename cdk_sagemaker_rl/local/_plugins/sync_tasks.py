"""What every ``.sync`` task service of the emulator does when its execution stops mid-wait.

Step Functions' ``.sync`` integrations stop what they wait for (a training job, a nested
execution) when the execution is stopped or the task times out. The task services of
:mod:`.stepfunctions` and :mod:`.stepfunctions_nested` share that rule through this mixin; each
says what it waits for (``_awaited``) and how to stop it (``_stop_awaited``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["StopsWhatItAwaits"]


class StopsWhatItAwaits:
    """Mixed in before moto's task service class, whose ``_eval_sync`` it wraps."""

    def _awaited(self) -> bool:  # pragma: no cover - each task service defines it
        raise NotImplementedError

    def _stop_awaited(self) -> None:  # pragma: no cover - each task service defines it
        raise NotImplementedError

    def _eval_sync(
        self,
        env: Any,
        sync_resolver: Callable[[], Any] | None,
        timeout_seconds: int | None,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        try:
            return super()._eval_sync(  # type: ignore[misc]
                env=env,
                sync_resolver=sync_resolver,
                timeout_seconds=timeout_seconds,
                callback_endpoint=callback_endpoint,
                heartbeat_endpoint=heartbeat_endpoint,
            )
        finally:
            if self._awaited() and not env.is_running():
                self._stop_awaited()
