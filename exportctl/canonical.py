"""Canonical forms: the one way exportctl turns values into bytes and bytes into names.

Everything that is hashed goes through here, so that "same inputs give the same digest" has one definition.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

DIGEST_ALGORITHM = "sha256"
_CHUNK = 1 << 20


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
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"{DIGEST_ALGORITHM}:{h.hexdigest()}"


def digest_value(value: Any) -> str:
    return digest_bytes(canonical_json(value))


def is_digest(text: str) -> bool:
    algo, _, hexpart = text.partition(":")
    return algo == DIGEST_ALGORITHM and len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart)


def short(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n]


def tree_files(root: Path) -> list[Path]:
    """Regular files under `root` in path order, without Python's bytecode caches."""
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def digest_files(files: dict[str, Path]) -> str:
    """The one digest of a set of named files (a source tree, a build context): names and contents."""
    return digest_value({name: digest_file(path) for name, path in sorted(files.items())})


def digest_tree(root: Path) -> str:
    return digest_files({p.relative_to(root).as_posix(): p for p in tree_files(root)})
