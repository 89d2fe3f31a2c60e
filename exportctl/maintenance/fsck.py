"""`exportctl fsck [--repair]`: check the whole store, and with --repair bring it back to consistent.

Checked: every blob hashes to its name; every index.json row names a manifest that is there, parses, and
has all its blobs at their sizes; every referrer's subject is a bundle in the store; every action-cache
entry parses and has its blobs; run records belong to bundles; temp files belong to live processes; the
SQLite index matches index.json. --repair drops what dangles (index rows, cache entries, orphan run
records, stale temps), moves corrupt blobs to <store>/exportctl/quarantine/ (bytes that lie about their
name, kept for inspection) and re-indexes. It never deletes a valid blob.
"""

from __future__ import annotations

import json
import os
from typing import Any

from exportctl import catalog
from exportctl.canonical import digest_file, is_digest
from exportctl.errors import ExportctlError, StoreError
from exportctl.maintenance.reachable import cache_blobs, roots
from exportctl.store.descriptor import blob_references
from exportctl.store.housekeeping import (
    action_entries,
    blob_files,
    drop_index_entries,
    remove_tree,
    run_dirs,
    stale_temps,
)
from exportctl.store.layout import Store
from exportctl.store.lease import Say, lease


def _manifest_problem(store: Store, digest: str, size: Any, corrupt: set[str]) -> str | None:
    if not is_digest(digest):
        return f"index.json names '{digest}', which is not a sha256 digest"
    if not store.has_blob(digest) or digest in corrupt:
        return f"manifest {digest} is {'corrupt' if digest in corrupt else 'missing'}"
    try:
        refs = blob_references(json.loads(store.read_blob(digest)))
    except (ValueError, ExportctlError) as e:
        return f"manifest {digest} is not an OCI manifest ({e})"
    if isinstance(size, int) and store.blob_path(digest).stat().st_size != size:
        return f"index.json says manifest {digest} is {size} bytes; it is {store.blob_path(digest).stat().st_size}"
    for role, desc in refs:
        if not store.has_blob(desc.digest) or desc.digest in corrupt:
            return f"manifest {digest}: {role} ({desc.digest}) is {'corrupt' if desc.digest in corrupt else 'missing'}"
        if store.blob_path(desc.digest).stat().st_size != desc.size:
            return f"manifest {digest}: {role} ({desc.digest}) is not {desc.size} bytes"
    return None


def check(store: Store, *, repair: bool, say: Say) -> dict[str, Any]:
    with lease(store.root, "fsck", exclusive=repair, say=say):
        return _check(store, repair)


def _check(store: Store, repair: bool) -> dict[str, Any]:
    problems: list[str] = []
    corrupt = set()
    checked = 0
    for digest, path in blob_files(store):
        checked += 1
        if not is_digest(digest) or not path.is_file():
            problems.append(f"blobs/sha256/{path.name} is not a blob (not a file named by a sha256 digest)")
        elif digest_file(path) != digest:
            corrupt.add(digest)
            problems.append(f"blob {digest} is corrupt: its content hashes to {digest_file(path)}")
    found = roots(store)
    dangling = set()
    sizes = {m.get("digest"): m.get("size") for m in _entries(store) if isinstance(m, dict)}
    for digest in found.bundles:
        if (problem := _manifest_problem(store, digest, sizes.get(digest), corrupt)) is not None:
            dangling.add(digest)
            problems.append(problem)
    bundles = set(found.bundles) - dangling
    for digest, entry in found.referrers.items():
        problem = _manifest_problem(store, digest, None, corrupt)
        if problem is None and entry.subject not in bundles:
            problem = f"referrer {digest} points at {entry.subject}, which is not a bundle in the store"
        if problem is not None:
            dangling.add(digest)
            problems.append(problem)
    bad_cache = []
    for path, value in action_entries(store):
        if value is None or not all(store.has_blob(d) and d not in corrupt for d in cache_blobs(value)):
            bad_cache.append(path)
            problems.append(f"action cache entry {path.name} is unreadable or names a missing blob")
    orphans = [path for digest, path in run_dirs(store) if digest not in bundles]
    problems += [f"run records {p.name} belong to no bundle in the store" for p in orphans]
    temps = list(stale_temps(store))  # litter a killed writer left: never read as content, so not a problem
    litter = [f"stale temp {p.relative_to(store.root)} (its process is gone)" for p in temps]
    repaired: list[str] = []
    if repair and (problems or litter):
        quarantine = store.root / "exportctl" / "quarantine"
        for digest in sorted(corrupt):
            quarantine.mkdir(parents=True, exist_ok=True)
            os.replace(store.blob_path(digest), quarantine / digest.split(":", 1)[1])
            repaired.append(f"moved corrupt blob {digest} to {quarantine}")
        if drop_index_entries(store, dangling):
            repaired.append(f"dropped {len(dangling)} dangling index.json entries")
        for path in bad_cache:
            path.unlink(missing_ok=True)
        for path in [*orphans, *temps]:
            remove_tree(path)
        repaired.append(f"dropped {len(bad_cache)} cache entries, {len(orphans)} orphan run records, "
                        f"{len(temps)} stale temps")
        catalog.rebuild(store)
        repaired.append("re-indexed")
    return {"store": str(store.root), "blobs_checked": checked, "bundles": len(bundles),
            "referrers": len(found.referrers) - len(dangling & set(found.referrers)), "problems": problems,
            "litter": litter, "repaired": repaired, "ok": not problems or bool(repaired)}


def _entries(store: Store) -> list[dict[str, Any]]:
    try:
        entries: list[dict[str, Any]] = json.loads((store.root / "index.json").read_bytes()).get("manifests", [])
    except (OSError, ValueError, AttributeError) as e:
        raise StoreError(f"cannot read {store.root / 'index.json'}: {e}",
                         hint="restore index.json from a backup; its blobs are intact") from e
    return entries
