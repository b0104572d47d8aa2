"""How the CLI talks: ``[local]`` progress lines, and errors explained in one message.

A :class:`LocalModeError` is printed without a traceback by ``main``; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

__all__ = ["LocalModeError", "say"]


class LocalModeError(RuntimeError):
    """A failure local mode explains in one message (printed without a traceback)."""


def say(message: str) -> None:
    """One progress line, flushed at once (a deploy runs for minutes)."""
    print(f"[local] {message}", flush=True)
