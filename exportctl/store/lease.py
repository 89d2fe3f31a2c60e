"""Leases on a store: writers share it, `gc` takes it alone, so a blob a running build just wrote (and has
not yet named in a manifest or a cache entry) is never collected under it.

The lease is an flock(2) on <store>/exportctl/gc.lock: the kernel drops it when its holder dies, even by
SIGKILL, so nobody ever waits on a dead process. Each holder also leaves a note (host and PID) in
<store>/exportctl/leases/, so a waiting process can say whom it waits for; a note whose process is gone
on this host is stale: it is removed, and said.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(f"exportctl: {message}", file=sys.stderr)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _notes(root: Path) -> Path:
    return root / "exportctl" / "leases"


def holders(root: Path, say: Say = _say) -> list[str]:
    """Live holders' notes (`host:pid:kind`); stale notes of dead processes on this host are removed."""
    live = []
    host = socket.gethostname()
    with contextlib.suppress(FileNotFoundError):
        for note in sorted(_notes(root).iterdir()):
            parts = note.name.split(":")
            if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not alive(int(parts[1])):
                note.unlink(missing_ok=True)
                say(f"removed a stale lease of process {parts[1]} on {host} ({parts[2]}): it is gone")
                continue
            live.append(note.name)
    return live


@contextlib.contextmanager
def lease(root: Path, kind: str, *, exclusive: bool = False, say: Say = _say) -> Iterator[None]:
    """Hold the store's lease while the block runs: shared for writers (`kind`: build, pull, sign, merge),
    exclusive for gc. Waits for the other side, naming who holds it."""
    lock = root / "exportctl" / "gc.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    note = _notes(root) / f"{socket.gethostname()}:{os.getpid()}:{kind}"
    with open(lock, "a") as handle:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            others = [h for h in holders(root, say) if h != note.name]
            say(f"waiting for the store lease at {root} (held by {', '.join(others) or 'a process elsewhere'})")
            fcntl.flock(handle, mode)
        note.parent.mkdir(parents=True, exist_ok=True)
        note.touch()
        try:
            yield
        finally:
            note.unlink(missing_ok=True)
