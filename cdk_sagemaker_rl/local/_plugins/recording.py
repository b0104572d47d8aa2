"""moto's request recorder, safe for concurrent writers: one whole line per request.

With ``MOTO_ENABLE_RECORDING`` set, moto's server appends every request it serves to the file
``MOTO_RECORDER_FILEPATH`` names, one JSON object per line (the IAM audit of the end-to-end test
reads it back). moto writes a line through a buffered text file opened in append mode: the entry,
then ``"\\n"``. An entry longer than the text buffer (8 KiB: an S3 upload, a Lambda zip, a
template) reaches the file in two ``write(2)`` calls, the entry and then the newline, and the
emulator serves requests on many threads: another request's whole line can land between the two,
which leaves one line holding two JSON objects (``json.JSONDecodeError: Extra data``) and an empty
one. The busier the machine, the likelier the interleaving. Two emulators recording into one file
would interleave the same way, across processes.

:func:`install` gives moto's recorder module its own ``open`` (module globals come before
builtins): append mode collects what the recorder writes and, when the recorder closes the file,
writes the whole line with a single ``write(2)`` on an ``O_APPEND`` descriptor, holding an exclusive
``flock`` on the file; lines therefore never interleave, whichever threads or processes write them.
A read (``/moto-api/recorder/download-recording``) holds a shared lock, so it never sees part of a
line; a truncation or an upload holds the exclusive one. Nothing else in moto is affected.
"""

from __future__ import annotations

import builtins
import fcntl
import os
from types import TracebackType
from typing import Any

__all__ = ["append_line", "install", "open_recording"]


def append_line(path: str | os.PathLike[str], data: bytes) -> None:
    """Append ``data`` to ``path`` in one ``write(2)`` under an exclusive ``flock``.

    ``O_APPEND`` puts every write at the end of the file; the lock keeps the write whole even in
    the rare case where the kernel writes less than asked (the rest follows before it is released).
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)  # releases the lock


class _LineAppender:
    """What the recorder gets for ``open(path, "a+")``: collects, then appends on close."""

    def __init__(self, path: str | os.PathLike[str], encoding: str | None) -> None:
        self._path = path
        self._encoding = encoding or "utf-8"
        self._parts: list[str] = []
        self._closed = False

    def write(self, text: str) -> int:
        if self._closed:
            raise ValueError("I/O operation on closed file.")
        self._parts.append(text)
        return len(text)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        data = "".join(self._parts).encode(self._encoding)
        if data:
            append_line(self._path, data)

    def __enter__(self) -> _LineAppender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # an entry that failed half-way is dropped, never written in part
            self._closed = True


def open_recording(file: str | os.PathLike[str], mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    """``open`` as moto's recorder module sees it once :func:`install` ran."""
    if "a" in mode and "b" not in mode:
        encoding = kwargs.get("encoding") or (args[1] if len(args) > 1 else None)
        return _LineAppender(file, encoding)
    handle = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 (the recorder closes it)
    try:
        reads_only = not any(flag in mode for flag in "wax+")
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH if reads_only else fcntl.LOCK_EX)
    except BaseException:
        handle.close()
        raise
    return handle  # closing it releases the lock


def install() -> None:
    """Route moto's recorder file access through :func:`open_recording` (idempotent)."""
    from moto.moto_api._internal.recorder import models

    models.open = open_recording  # type: ignore[attr-defined]
