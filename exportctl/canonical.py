"""Canonical forms: the one way exportctl turns values into bytes and bytes into names.

Everything that is hashed goes through here, so that "same inputs give the same digest" has one definition.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from exportctl import readlog

DIGEST_ALGORITHM = "sha256"
_CHUNK = 2 << 20  # hashes as fast as 256 KiB-1 MiB here (8 MiB is ~7% slower: out of cache)


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys, no insignificant whitespace, UTF-8, and a trailing newline-free body."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def pretty_json(value: Any) -> bytes:
    """Human-readable but still deterministic JSON (sorted keys, fixed indent, final newline)."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def digest_bytes(data: bytes) -> str:
    """`sha256:<hex>` of `data`: the OCI digest string form used for every name in the store."""
    return f"{DIGEST_ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def digest_file(path: Path) -> str:
    with open(path, "rb", buffering=0) as f:
        before = os.fstat(f.fileno())
        # One buffer, reused: no allocation per chunk (verify hashes gigabytes through here).
        expected = before.st_size if stat.S_ISREG(before.st_mode) else _CHUNK  # a pipe says 0
        buffer = bytearray(min(max(expected, 1 << 12), _CHUNK))
        view, hasher = memoryview(buffer), hashlib.sha256()
        while size := f.readinto(buffer):
            hasher.update(view[:size])
        digest = f"{DIGEST_ALGORITHM}:{hasher.hexdigest()}"
        after = os.fstat(f.fileno())
    readlog.noting_stat(path, before)  # a rebuild checks the file is still as hashed (build/noop.py)
    if (ledger := _LEDGER.get()) is not None and _version(before) == _version(after):
        ledger.seen[(before.st_dev, before.st_ino)] = (_version(before), digest)
    return digest


def _version(st: os.stat_result) -> tuple[int, int]:
    # Not ctime: making a hard link changes it, and verify hashes store blobs, then links them into a layout.
    return st.st_size, st.st_mtime_ns


class HashLedger:
    """The digests of the files `digest_file` hashed while this ledger was open (see `hash_ledger`).

    One check that needs the same bytes hashed twice (verify re-hashes a bundle's blobs, then model-signing
    hashes the layout they are hard-linked into to check its signature) asks `known(path)` and reads them once.
    Files are known by identity (device, inode) and version (size, mtime), so a file written since, or one this
    ledger never saw, is unknown and gets hashed.
    """

    def __init__(self) -> None:
        self.seen: dict[tuple[int, int], tuple[tuple[int, int], str]] = {}

    def known(self, path: Path) -> str | None:
        """`sha256:<hex>` of `path` if this ledger hashed that very file as it is now, else None."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        entry = self.seen.get((st.st_dev, st.st_ino))
        return entry[1] if entry is not None and entry[0] == _version(st) else None


def hash_ledger() -> contextlib.AbstractContextManager[HashLedger]:
    """The ledger open in this context (an outer check's), or a new one for the block."""
    return readlog.scoped(_LEDGER, HashLedger)


_LEDGER: contextvars.ContextVar[HashLedger | None] = contextvars.ContextVar("exportctl_hash_ledger", default=None)


def digest_value(value: Any) -> str:
    return digest_bytes(canonical_json(value))


def is_digest(text: str) -> bool:
    algo, _, hexpart = text.partition(":")
    return algo == DIGEST_ALGORITHM and len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart)


def short(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n]


def tree_files(root: Path) -> list[Path]:
    """Regular files under `root` in path order, without Python's bytecode caches."""
    return sorted(p for p in readlog.walk_files(root)
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def digest_files(files: dict[str, Path]) -> str:
    """The one digest of a set of named files (a source tree, a build context): names and contents."""
    return digest_value({name: digest_file(path) for name, path in sorted(files.items())})


def digest_tree(root: Path) -> str:
    return digest_files({p.relative_to(root).as_posix(): p for p in tree_files(root)})
