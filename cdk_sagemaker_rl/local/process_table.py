"""This machine's processes as ``/proc`` lists them: who is in which process group and session.

Local mode stops what a job started by its session, and tests look for what outlived a job by
its parent; both read the same fields of ``/proc/<pid>/stat``, whose command field may itself hold
spaces and parentheses (so the fields after it are found from its last ``)``). Linux only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessEntry", "process_table"]


@dataclass(frozen=True)
class ProcessEntry:
    pid: int
    command: str
    #: ``R``, ``S``, ... ``Z`` for a zombie (exited, not yet reaped).
    state: str
    ppid: int
    pgrp: int
    session: int


def _entry(pid: int, stat: str) -> ProcessEntry | None:
    head, _, tail = stat.rpartition(")")
    fields = tail.split()
    if len(fields) < 4:
        return None
    return ProcessEntry(
        pid=pid,
        command=head[head.find("(") + 1 :],
        state=fields[0],
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        session=int(fields[3]),
    )


def process_table() -> Iterator[ProcessEntry]:
    """Every process that still exists while it is read (one that ends meanwhile is skipped)."""
    for directory in Path("/proc").iterdir():
        if not directory.name.isdigit():
            continue
        try:
            stat = (directory / "stat").read_text()
        except OSError:
            continue
        entry = _entry(int(directory.name), stat)
        if entry is not None:
            yield entry
