"""Which host files and directories a build read, each as it was then: what lets a rebuild prove nothing changed.

Planning reads the recipe, the checkpoint, validation and calibration images, data yamls and label files, lists
image directories, and hashes exportctl's own in-cell code and locks. Each of those reads notes its path here
(`note`, and `digest_file` for every file it hashes) while a `reading()` block is open. A later build whose every
noted path still has the same stamp read the same bytes (build/noop.py). A path noted as absent must still be
absent: a label file that appears changes the labelled set. Listing a directory notes the directory itself,
whose modification time changes when an entry is added, removed or renamed.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

Stamp = tuple[int, int, int, int, int, int] | None  # device, inode, mode, size, mtime_ns, ctime_ns; None: absent


def stamp(path: str | os.PathLike[str]) -> Stamp:
    """The path's identity and version now. ctime too: a rewrite that restores size and mtime still moves it."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class ReadLog:
    def __init__(self) -> None:
        self.paths: dict[str, Stamp] = {}
        self.started_ns = time.time_ns()  # a path changed near this moment may change again unseen (noop.RACY_NS)

    def add(self, path: str | os.PathLike[str], found: Stamp) -> None:
        # The first read is the one the build used: a later change must not overwrite it (that would hide it).
        self.paths.setdefault(os.path.abspath(path), found)


_LOG: contextvars.ContextVar[ReadLog | None] = contextvars.ContextVar("exportctl_read_log", default=None)


T = TypeVar("T")


@contextlib.contextmanager
def scoped(var: contextvars.ContextVar[T | None], make: Callable[[], T]) -> Iterator[T]:
    """The value an outer block opened in `var`, or a new one (`make()`) for this block: one per outermost check."""
    if (current := var.get()) is not None:
        yield current
        return
    value = make()
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


def reading() -> contextlib.AbstractContextManager[ReadLog]:
    """Note every read in this block (the outer block's log if one is open)."""
    return scoped(_LOG, ReadLog)


def note(path: str | os.PathLike[str], found: Stamp | bool = True) -> None:
    """Note that the build read `path` (or looked for it): `found` is its stamp when the caller already has it."""
    if (log := _LOG.get()) is not None:
        log.add(path, stamp(path) if found is True else found if found is not False else None)


def noting_stat(path: str | os.PathLike[str], st: os.stat_result) -> None:
    """`note` for a file already open and fstat'ed (digest_file): no second stat."""
    if (log := _LOG.get()) is not None:
        log.add(path, (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns))


def is_file(path: Path) -> bool:
    """`path.is_file()`, noted either way: a file that appears later changes what the build would read."""
    found = stamp(path)
    note(path, found)
    return found is not None and stat.S_ISREG(found[2])


def walk_files(root: Path) -> list[Path]:
    """Every file under `root` (following no links to directories), noting each directory listed."""
    files: list[Path] = []
    for directory, dirnames, filenames in os.walk(root):
        note(directory)
        dirnames.sort()
        files += (Path(directory, name) for name in filenames)
    return files
