"""Files the library adds at the root of a user's ``sourcedir.tar.gz`` (the Ray launcher, a
``requirements.txt`` that installs what the image needs).

They are written to the content-addressed cache and packed like any other root entry, so the
archive stays byte-for-byte reproducible and the user's files on disk are never touched. A user's
root entry of the same name is an error unless the added file is meant to stand in for it (then it
is computed from the user's content: the requirements keep every line the user wrote).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import invalid

#: The ``argument`` of a root entry the library added (no user argument owns it).
GENERATED = "generated"


@dataclass(frozen=True)
class ExtraFile:
    """One file at the archive root: ``content``, or a function of the user's file of that name
    (its bytes, None when there is none) when ``replaces`` is True."""

    name: str
    content: bytes | Callable[[bytes | None], bytes]
    #: True: stands in for the user's root file of this name; False: that name is refused.
    replaces: bool = False
    #: What the file is, for the error that a user's file of the same name gets.
    purpose: str = "a file the library adds"
    see: str = "README.md#argument-reference"


def add_extra_files(
    roots: Sequence[tuple[str, str, str]], files: Sequence[ExtraFile], cache_root: str
) -> list[tuple[str, str, str]]:
    """``roots`` (archive name, path, argument) with ``files`` added or standing in."""
    result = list(roots)
    for extra in files:
        existing = next((root for root in result if root[0] == extra.name), None)
        previous: bytes | None = None
        if existing is not None:
            name, path, argument = existing
            if not extra.replaces or not os.path.isfile(path):
                raise invalid(
                    argument,
                    path,
                    f"no entry named {name!r} at the archive root: {extra.purpose} is added "
                    "under that name. Rename yours",
                    see=extra.see,
                )
            with open(path, "rb") as stream:
                previous = stream.read()
            result.remove(existing)
        content = extra.content(previous) if callable(extra.content) else extra.content
        result.append((extra.name, _materialise(extra.name, content, cache_root), GENERATED))
    return result


def _materialise(name: str, content: bytes, cache_root: str) -> str:
    """The file in the cache, at a path named by its content (rewritten only when missing)."""
    digest = hashlib.sha256(content).hexdigest()
    directory = os.path.join(cache_root, "generated", digest)
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        os.makedirs(directory, exist_ok=True)
        partial = f"{path}.{os.getpid()}.partial"
        with open(partial, "wb") as stream:
            stream.write(content)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    return path
