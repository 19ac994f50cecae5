"""`patronpay bursar import --inbox`: every complete file in the drop folder, taken once.

A file is complete when it has not changed for `settle_seconds` and does not change while we
read it; names that uploaders use for files in transit (`.name`, `*.part`, `*.tmp`,
`*.filepart`) are left alone, as are symbolic links and folders. Each file handled moves to
`done/` (its good rows were imported; its report and any rejects beside it) or `rejected/`
(refused whole; its report beside it). A file whose import was interrupted (Alma unreachable)
stays for the next run. One run at a time: a lock file in the folder keeps a second run (a
timer firing while the path unit's run is busy) out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from proxy.bursar.export import write_atomically
from proxy.bursar.import_file import MAX_FILE_BYTES

DONE, REJECTED, LEFT, BUSY = "done", "rejected", "left", "busy"
LOCK_NAME = ".patronpay-import.lock"
IN_TRANSIT = (".part", ".tmp", ".filepart", ".partial", ".lock", ".swp")


@dataclass(frozen=True)
class Handled:
    """What importing one file gave: `kind` is done, rejected or left (try again later)."""

    kind: str
    report: str
    rejects_csv: str = ""


@dataclass(frozen=True)
class InboxOutcome:
    name: str
    kind: str
    moved_to: Path | None
    report: str


def waiting_files(folder: Path, settle_seconds: float, now: float) -> list[Path]:
    """The complete files in the folder, oldest first."""
    found = []
    for entry in os.scandir(folder):
        if entry.name.startswith((".", "~")) or entry.name.endswith(IN_TRANSIT):
            continue
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < settle_seconds:
            continue
        found.append((info.st_mtime, entry.name))
    return [folder / name for _, name in sorted(found)]


@contextlib.contextmanager
def inbox_lock(folder: Path) -> Iterator[bool]:
    """True when this run holds the folder; False when another run does."""
    handle = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()


def read_settled(path: Path) -> bytes | None:
    """The file's bytes, or None when it changed while read (still being written). A file too
    big to import is read only up to the limit (the import refuses it)."""
    before = path.stat()
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    after = path.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return None
    return data


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `name-2`, `name-3`... when a file of that name was handled before."""
    candidate = folder / name
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / (f"{stem}-{number}.{suffix}" if dot else f"{stem}-{number}")
    return candidate


async def run_inbox(folder: Path, settle_seconds: float,
                    handle: Callable[[Path, bytes], Awaitable[Handled]],
                    clock: Callable[[], float] = time.time) -> list[InboxOutcome]:
    if not folder.is_dir():
        raise FileNotFoundError(f"no inbox folder {folder}")
    outcomes = []
    with inbox_lock(folder) as held:
        if not held:
            return [InboxOutcome("", BUSY, None, "another import of this inbox is running")]
        for path in waiting_files(folder, settle_seconds, clock()):
            data = read_settled(path)
            if data is None:
                continue
            handled = await handle(path, data)
            if handled.kind == LEFT:
                outcomes.append(InboxOutcome(path.name, LEFT, None, handled.report))
                continue
            target = free_name(folder / handled.kind, path.name)
            target.parent.mkdir(exist_ok=True)
            write_atomically(target.with_name(target.name + ".report.txt"),
                             handled.report.encode("utf-8"))
            if handled.rejects_csv:
                write_atomically(target.with_name(target.name + ".rejects.csv"),
                                 handled.rejects_csv.encode("utf-8"))
            os.replace(path, target)
            outcomes.append(InboxOutcome(path.name, handled.kind, target, handled.report))
    return outcomes
