"""Tar archives in and out of S3: extracted without escaping their directory, packed flat.

Training fetches ``sourcedir.tar.gz`` and writes ``model.tar.gz``; the model server extracts
``model.tar.gz`` and a source archive. Every archive that arrives from S3 is input, not trusted
layout, so extraction is checked in one place that both use.

Standard library only: the model server subprocess imports it before anything heavy.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

__all__ = ["add_tree", "extract_tar_safely", "safe_destination"]


def safe_destination(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that would escape ``root``."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{relative!r} would be written outside {root}")
    return root.joinpath(*pure.parts)


def extract_tar_safely(archive: Path, destination: Path) -> None:
    """Extract a (gzipped) tar into ``destination``, refusing anything that would land outside it.

    Rejects absolute names, ``..`` components, links that point outside, and device files, before
    extracting anything: an archive from S3 is input, not trusted code layout.
    """
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            safe_destination(destination, member.name)
            if member.issym() or member.islnk():
                target = PurePosixPath(member.linkname)
                if member.issym():
                    target = PurePosixPath(member.name).parent / target
                if target.is_absolute() or ".." in PurePosixPath(os.path.normpath(target)).parts:
                    raise ValueError(
                        f"link {member.name!r} -> {member.linkname!r} leaves the archive"
                    )
            elif not (member.isfile() or member.isdir()):
                raise ValueError(f"{member.name!r} is not a regular file or directory")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4; members were checked above
            tar.extractall(destination, members=members)


def add_tree(tar: tarfile.TarFile, root: Path) -> None:
    """Add everything under ``root`` to ``tar`` with names relative to it (no leading ``./``), in
    a stable order, as SageMaker packs ``model.tar.gz``."""
    for path in sorted(root.rglob("*")):
        tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
