"""Deterministic ``sourcedir.tar.gz`` packaging with the SageMaker SDK v2 layout.

The training containers download ``sagemaker_submit_directory``, extract it to ``/opt/ml/code`` and
run ``sagemaker_program`` from there, so the archive layout is a contract with the image:

* with ``source_dir``: every top-level entry of ``source_dir`` sits at the archive root and
  ``entry_point`` is a path relative to ``source_dir`` (it may name a file in a subdirectory, as in
  the SDK, and is then passed on as that relative path);
* without ``source_dir``: only the entry point file, at the root, under its base name;
* each ``dependencies`` path (file or directory) is added at the root under its base name.

Unlike the SDK, the archive is byte-for-byte reproducible. A CDK asset (and the training
fingerprint built on it) changes only when the code does, so a redeploy from another checkout,
machine or CI run does not upload new code or start a new training. What makes it so:

* entries in a fixed order (depth first, names sorted by code point), directories included;
* every entry owned by uid/gid 0 with empty owner names and mtime :data:`FIXED_MTIME`;
* modes normalised to ``0o755`` for directories and for files whose owner-execute bit is set, else
  ``0o644`` (the owner bit survives any umask, the group/other bits do not);
* the POSIX.1-2001 (pax) tar format, gzip level 9, a gzip header with mtime 0 and no file name;
* machine-local junk is left out (:data:`EXCLUDED_NAMES`, :data:`EXCLUDED_SUFFIXES`): byte-code
  caches, tool caches, OS metadata files and version-control directories. ``.git`` in particular
  holds a stat cache that changes on every ``git status``; shipping it would retrain for nothing.
  Paths named explicitly (the entry point without ``source_dir``, a ``dependencies`` entry) are
  always packed.

Symbolic links are followed and stored as the content they point to, wherever the target lives:
this is what the SDK does (``tarfile.add(..., dereference=True)``), so code trees that link shared
libraries in keep working after a migration, and the bytes still depend only on content. A broken
link, a link cycle (a directory link to one of its own ancestors) and special files (sockets,
FIFOs, devices) are errors, because they cannot be reproduced inside the container.

The deflate stream depends on the zlib build (zlib-ng, for one, compresses differently), so two
digests are kept: :attr:`SourceBundle.sha256` of the ``.tar.gz`` bytes, which names the cache entry,
and :attr:`SourceBundle.tar_sha256` of the uncompressed tar stream, which is the CDK asset hash and
the right input for a training fingerprint, because it is the same on every machine.

Archives live in a content-addressed cache (``<tempdir>/cdk-sagemaker-rl/<sha256>/sourcedir.tar.gz``
by default) so that each synth points the asset at a file whose path and bytes are stable.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Protocol

from ..errors import invalid
from .extra_files import ExtraFile, add_extra_files

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "ARCHIVE_NAME",
    "EXCLUDED_NAMES",
    "EXCLUDED_SUFFIXES",
    "FIXED_MTIME",
    "SourceBundle",
    "build_source_bundle",
    "default_cache_dir",
]

ARCHIVE_NAME = "sourcedir.tar.gz"

# 1980-01-01T00:00:00Z rather than the Unix epoch: the container pip-installs a source tree that has
# a setup.py, and building a wheel (a zip) from files dated before 1980 fails.
FIXED_MTIME = 315532800

EXCLUDED_NAMES: frozenset[str] = frozenset(
    {
        "__pycache__",
        ".ipynb_checkpoints",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        ".git",
        ".hg",
        ".svn",
    }
)
EXCLUDED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo")

_GZIP_LEVEL = 9
_DIR_MODE = 0o755
_EXEC_MODE = 0o755
_FILE_MODE = 0o644
_CACHE_SUBDIR = "cdk-sagemaker-rl"
_COPY_CHUNK = 1 << 20

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class SourceBundle:
    """A packed ``sourcedir.tar.gz`` and what a training job needs to know about it.

    Attributes:
        path: absolute path of the archive in the cache.
        sha256: hex digest of the archive bytes (what S3 stores).
        tar_sha256: hex digest of the uncompressed tar stream; independent of the zlib build,
            so use it wherever the hash must agree across machines (asset hash, fingerprints).
        entry_point: the ``sagemaker_program`` value, a POSIX path relative to the archive root.
        members: archive member names in archive order (directories without a trailing slash).
    """

    path: str
    sha256: str
    tar_sha256: str
    entry_point: str
    members: tuple[str, ...]


def default_cache_dir() -> str:
    """Where archives go when no cache directory is given: shared by every synth on the machine."""
    return os.path.join(tempfile.gettempdir(), _CACHE_SUBDIR)


def build_source_bundle(
    entry_point: StrPath,
    source_dir: StrPath | None = None,
    dependencies: Sequence[StrPath] = (),
    *,
    base_dir: StrPath | None = None,
    cache_dir: StrPath | None = None,
    extra_files: Sequence[ExtraFile] = (),
) -> SourceBundle:
    """Pack the training code into a reproducible archive, validating paths at synth time.

    Relative ``source_dir``, ``dependencies`` and (without ``source_dir``) ``entry_point`` paths
    are resolved against ``base_dir``, the current directory by default, like CDK asset paths.
    Raises :class:`~cdk_sagemaker_rl.errors.ValidationError` for anything that would make the
    training job fail to find its code, so the mistake surfaces before a deploy. ``extra_files``
    are added at the root by the library (see :mod:`.extra_files`).
    """
    base = os.path.abspath(os.fspath(base_dir) if base_dir is not None else os.getcwd())
    entry_text = os.fspath(entry_point)
    _reject_s3("entry_point", entry_text)
    if isinstance(dependencies, str | bytes | os.PathLike):
        raise invalid(
            "dependencies",
            dependencies,
            "a list of paths, e.g. ['lib/common'] (a single string is not a list of paths)",
        )

    roots: list[tuple[str, str, str]] = []  # (archive name, filesystem path, argument name)
    if source_dir is None:
        entry_path = os.path.join(base, entry_text)
        _require_entry_file(entry_text, entry_path, f"base_dir {base!r}")
        program = os.path.basename(entry_path)
        roots.append((program, entry_path, "entry_point"))
    else:
        source_text = os.fspath(source_dir)
        _reject_s3("source_dir", source_text)
        source_path = os.path.join(base, source_text)
        if not os.path.isdir(source_path):
            what = "is not a directory" if os.path.exists(source_path) else "does not exist"
            raise invalid(
                "source_dir",
                source_text,
                f"an existing local directory; {os.path.abspath(source_path)!r} {what}",
            )
        source_path = os.path.abspath(source_path)
        program = _entry_relative_to_source(entry_text, source_path)
        for name in sorted(os.listdir(source_path)):
            if not _is_excluded(name):
                roots.append((name, os.path.join(source_path, name), "source_dir"))

    for dependency in dependencies:
        dep_text = os.fspath(dependency)
        _reject_s3("dependencies", dep_text)
        dep_path = os.path.abspath(os.path.join(base, dep_text))
        if not os.path.exists(dep_path):
            raise invalid(
                "dependencies",
                dep_text,
                f"paths to existing files or directories; nothing exists at {dep_path!r} "
                f"(relative paths are resolved against base_dir {base!r})",
            )
        name = os.path.basename(dep_path)
        if not name:
            raise invalid(
                "dependencies",
                dep_text,
                "paths with a base name to place at the archive root (not the filesystem root)",
            )
        roots.append((name, dep_path, "dependencies"))

    _reject_duplicates(roots)
    if extra_files:
        roots = add_extra_files(roots, extra_files, _cache_root(cache_dir))
    roots.sort(key=lambda root: root[0])
    return _write_archive(roots, program, cache_dir)


def _reject_s3(argument: str, value: str) -> None:
    if value.lower().startswith("s3://"):
        raise invalid(
            argument,
            value,
            "a local path: this library packs and uploads the code itself as a CDK asset, so "
            "code that already sits in S3 has to be downloaded and extracted locally first "
            "(e.g. `aws s3 cp <uri> . && tar -xzf sourcedir.tar.gz -C src`) and passed as a "
            "directory",
        )


def _require_entry_file(entry_text: str, entry_path: str, resolved_against: str) -> None:
    if os.path.isdir(entry_path):
        raise invalid(
            "entry_point",
            entry_text,
            f"a file, not a directory ({os.path.abspath(entry_path)!r} is a directory); "
            "pass the directory as source_dir and the script inside it as entry_point",
        )
    if not os.path.isfile(entry_path):
        raise invalid(
            "entry_point",
            entry_text,
            f"a path to an existing file; nothing exists at {os.path.abspath(entry_path)!r} "
            f"(resolved against {resolved_against})",
        )


def _entry_relative_to_source(entry_text: str, source_path: str) -> str:
    """Return ``sagemaker_program``: the entry point as the container sees it under /opt/ml/code."""
    joined = os.path.normpath(os.path.join(source_path, entry_text))
    relative = os.path.relpath(joined, source_path)
    if relative == os.curdir or relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise invalid(
            "entry_point",
            entry_text,
            f"a file inside source_dir {source_path!r}, given relative to it (e.g. 'train.py' "
            "or 'agents/train.py'); the container only sees what source_dir holds",
        )
    _require_entry_file(entry_text, joined, f"source_dir {source_path!r}")
    parts = PurePath(relative).parts
    excluded = [part for part in parts if _is_excluded(part)]
    if excluded:
        raise invalid(
            "entry_point",
            entry_text,
            f"a file that gets packed; {excluded[0]!r} is left out of the archive as "
            f"machine-local (excluded names: {', '.join(sorted(EXCLUDED_NAMES))}; "
            f"excluded suffixes: {', '.join(EXCLUDED_SUFFIXES)})",
        )
    return PurePath(relative).as_posix()


def _is_excluded(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def _reject_duplicates(roots: Sequence[tuple[str, str, str]]) -> None:
    claims: dict[str, list[tuple[str, str]]] = {}
    for name, path, argument in roots:
        claims.setdefault(name, []).append((argument, path))
    for name in sorted(claims):
        owners = claims[name]
        if len(owners) > 1:
            sources = "; ".join(f"{argument} {path!r}" for argument, path in owners)
            # Blame the dependency when there is one: it is the entry that chose its root name.
            argument, path = next(
                ((a, p) for a, p in reversed(owners) if a == "dependencies"), owners[-1]
            )
            raise invalid(
                argument,
                path,
                f"entries with distinct names at the archive root; {name!r} is claimed by "
                f"{sources}. Rename one, or nest it in a differently named directory",
            )


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


class _HashingWriter(io.RawIOBase):
    """Write-only stream that digests everything passing through; tarfile also wants tell()."""

    def __init__(self, sink: _Sink) -> None:
        super().__init__()
        self._sink = sink
        self._digest = hashlib.sha256()
        self._offset = 0

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        chunk = bytes(data)
        self._digest.update(chunk)
        self._offset += len(chunk)
        self._sink.write(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        self._sink.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _write_archive(
    roots: Sequence[tuple[str, str, str]], program: str, cache_dir: StrPath | None
) -> SourceBundle:
    cache_root = _cache_root(cache_dir)
    members: list[str] = []
    handle, temp_path = tempfile.mkstemp(prefix=".partial-", suffix=".tar.gz", dir=cache_root)
    try:
        with os.fdopen(handle, "wb") as raw:
            compressed = _HashingWriter(raw)
            # filename="" keeps the temp file's name out of the gzip header (FNAME unset).
            with gzip.GzipFile(
                filename="",
                mode="wb",
                compresslevel=_GZIP_LEVEL,
                fileobj=compressed,
                mtime=0,
            ) as gz:
                uncompressed = _HashingWriter(gz)
                with tarfile.open(
                    fileobj=uncompressed,
                    mode="w",
                    format=tarfile.PAX_FORMAT,
                    encoding="utf-8",
                ) as tar:
                    for name, path, argument in roots:
                        _add_entry(tar, name, path, argument, frozenset(), members)
        sha256 = compressed.hexdigest()
        tar_sha256 = uncompressed.hexdigest()
        final_path = _publish(temp_path, cache_root, sha256)
    finally:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
    return SourceBundle(
        path=final_path,
        sha256=sha256,
        tar_sha256=tar_sha256,
        entry_point=program,
        members=tuple(members),
    )


def _cache_root(cache_dir: StrPath | None) -> str:
    root = os.path.abspath(os.fspath(cache_dir) if cache_dir is not None else default_cache_dir())
    os.makedirs(root, exist_ok=True)
    return root


def _publish(temp_path: str, cache_root: str, sha256: str) -> str:
    """Move the archive to its content address, keeping an existing copy only if it is intact."""
    final_dir = os.path.join(cache_root, sha256)
    final_path = os.path.join(final_dir, ARCHIVE_NAME)
    if os.path.isfile(final_path) and _file_sha256(final_path) == sha256:
        return final_path
    os.makedirs(final_dir, exist_ok=True)
    os.chmod(temp_path, 0o644)
    os.replace(temp_path, final_path)
    return final_path


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_COPY_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tar_info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = FIXED_MTIME
    info.uid = 0
    info.gid = 0
    info.uname = ""
    info.gname = ""
    return info


def _add_entry(
    tar: tarfile.TarFile,
    name: str,
    path: str,
    argument: str,
    ancestors: frozenset[tuple[int, int]],
    members: list[str],
) -> None:
    try:
        status = os.stat(path)  # follows symlinks: the target's content is what gets packed
    except FileNotFoundError:
        raise invalid(
            argument,
            path,
            "files and symbolic links that resolve; this is a broken link (its target "
            f"{os.readlink(path)!r} does not exist)"
            if os.path.islink(path)
            else "files that exist while packing; this one disappeared",
        ) from None
    except OSError as error:
        raise invalid(argument, path, f"readable files ({error.strerror})") from None

    if stat.S_ISDIR(status.st_mode):
        identity = (status.st_dev, status.st_ino)
        if identity in ancestors:
            raise invalid(
                argument,
                path,
                "a directory tree without link cycles; this symbolic link points back at one "
                f"of its own parent directories ({os.path.realpath(path)!r})",
            )
        tar.addfile(_tar_info(name, tarfile.DIRTYPE, _DIR_MODE))
        members.append(name)
        try:
            children = sorted(os.listdir(path))
        except OSError as error:
            raise invalid(argument, path, f"readable directories ({error.strerror})") from None
        for child in children:
            if not _is_excluded(child):
                _add_entry(
                    tar,
                    f"{name}/{child}",
                    os.path.join(path, child),
                    argument,
                    ancestors | {identity},
                    members,
                )
    elif stat.S_ISREG(status.st_mode):
        mode = _EXEC_MODE if status.st_mode & stat.S_IXUSR else _FILE_MODE
        try:
            with open(path, "rb") as stream:
                tar.addfile(_tar_info(name, tarfile.REGTYPE, mode, status.st_size), stream)
        except OSError as error:
            raise invalid(argument, path, f"readable files ({error.strerror})") from None
        members.append(name)
    else:
        raise invalid(
            argument,
            path,
            "regular files, directories and links to them; sockets, FIFOs and device files "
            "cannot be packed",
        )
