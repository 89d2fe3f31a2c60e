"""What `gc` and `fsck` need from the plain OCI store: list and remove blobs, index entries, action-cache
entries, run records and temp files. Deciding *what* to remove (bundles, signatures, recipes) is above the
store, in exportctl/maintenance/; everything here is about files, and keeps the store's invariants: index.json
is rewritten atomically under the store lock, and a blob is removed only by name.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exportctl.canonical import is_digest, pretty_json
from exportctl.store.atomic import TEMP_PREFIX, atomic_write, temp_owner
from exportctl.store.layout import Store
from exportctl.store.lease import alive


def blob_dir(store: Store) -> Path:
    return store.root / "blobs" / "sha256"


def blob_files(store: Store) -> Iterator[tuple[str, Path]]:
    """(digest, path) of every content file under blobs/sha256/ (temp files are not content)."""
    with os.scandir(blob_dir(store)) as entries:
        for entry in entries:
            if not entry.name.startswith(TEMP_PREFIX):
                yield f"sha256:{entry.name}", Path(entry.path)


def remove_blob(store: Store, digest: str) -> int:
    """Remove one blob; returns the bytes freed (0 if it was already gone)."""
    path = store.blob_path(digest)
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def index_entries(store: Store) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((store.root / "index.json").read_bytes()).get("manifests", [])
    return entries


def drop_index_entries(store: Store, digests: set[str]) -> int:
    """Remove these manifests from index.json (under the store lock); returns how many were listed."""
    if not digests:
        return 0
    with store.locked():  # the same lock add_manifest takes: no concurrent entry is lost
        path = store.root / "index.json"
        index = json.loads(path.read_bytes())
        kept = [m for m in index.get("manifests", []) if m.get("digest") not in digests]
        dropped = len(index.get("manifests", [])) - len(kept)
        index["manifests"] = kept
        atomic_write(path, pretty_json(index))
    return dropped


def action_entries(store: Store) -> Iterator[tuple[Path, Any]]:
    """(file, parsed JSON or None when unreadable) of every action-cache entry."""
    actions = store.root / "exportctl" / "actions"
    if not actions.is_dir():
        return
    for path in sorted(actions.glob("*.json")):
        try:
            yield path, json.loads(path.read_bytes())
        except (OSError, ValueError):
            yield path, None


def journal_entries(store: Store) -> Iterator[tuple[Path, str | None]]:
    """(file, the bundle it answers with, or None when unreadable) of every no-op journal entry (build/noop.py)."""
    journal = store.root / "exportctl" / "noop"
    if not journal.is_dir():
        return
    for path in sorted(journal.glob("*.json")):
        try:
            bundle = json.loads(path.read_bytes()).get("bundle")
        except (OSError, ValueError, AttributeError):
            bundle = None
        yield path, bundle if isinstance(bundle, str) else None


def run_dirs(store: Store) -> Iterator[tuple[str, Path]]:
    runs = store.root / "exportctl" / "runs"
    if runs.is_dir():
        for path in sorted(runs.iterdir()):
            if is_digest(f"sha256:{path.name}"):
                yield f"sha256:{path.name}", path


def remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def temp_root(store: Store) -> Path:
    """Where cells write their outputs and scratch (so a killed build's leftovers can be found)."""
    return store.root / "exportctl" / "tmp"


def stale_temps(store: Store) -> Iterator[Path]:
    """Temp files and directories anywhere in the store whose owner process is gone (this host's PIDs);
    a temp name without an owner (an older exportctl's) is stale once no writer holds the store's lease."""
    places = [store.root, blob_dir(store), store.root / "exportctl", temp_root(store),
              store.root / "exportctl" / "actions", store.root / "exportctl" / "noop", *(p for _, p in run_dirs(store))]
    for place in places:
        if not place.is_dir():
            continue
        for entry in place.iterdir():
            if not entry.name.startswith(TEMP_PREFIX):
                continue
            owner = temp_owner(entry.name)
            if owner != os.getpid() and (owner is None or not alive(owner)):
                yield entry


def remove_dead_temps(store: Store) -> int:
    """Remove temp files and folders of processes that are gone (killed builds): the next run cleans up."""
    dead = [p for p in stale_temps(store) if temp_owner(p.name) is not None]
    for path in dead:
        remove_tree(path)
    return len(dead)
