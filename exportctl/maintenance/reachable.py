"""What a store holds on to: its bundles with their referrers, run records and cached actions, and the blobs
each one needs. `gc` keeps exactly this; `fsck` checks that all of it is there."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from exportctl.canonical import is_digest
from exportctl.errors import ExportctlError
from exportctl.store import mediatypes as mt
from exportctl.store.descriptor import blob_references
from exportctl.store.housekeeping import action_entries, index_entries, run_dirs
from exportctl.store.layout import Store


@dataclass
class Entry:
    """One index.json row: a bundle, or a referrer (signature, provenance) of one."""

    digest: str
    annotations: dict[str, str]
    subject: str | None  # the bundle a referrer points at; None for a bundle
    artifact_type: str | None


@dataclass
class Roots:
    bundles: dict[str, Entry] = field(default_factory=dict)
    referrers: dict[str, Entry] = field(default_factory=dict)

    def referrers_of(self, bundle: str) -> list[Entry]:
        return [r for r in self.referrers.values() if r.subject == bundle]


def roots(store: Store) -> Roots:
    found = Roots()
    for raw in index_entries(store):
        annotations = dict(raw.get("annotations") or {})
        digest = str(raw.get("digest", ""))
        subject = annotations.get(mt.ANNOTATION_SUBJECT)
        entry = Entry(digest, annotations, subject, raw.get("artifactType"))
        (found.referrers if subject else found.bundles)[digest] = entry
    return found


def manifest_blobs(store: Store, digest: str) -> set[str]:
    """The manifest and every blob it references (the manifest alone when it cannot be read)."""
    needed = {digest}
    with contextlib.suppress(ExportctlError, ValueError):  # missing or unreadable: fsck reports it
        needed |= {d.digest for _, d in blob_references(json.loads(store.read_blob(digest)))}
    return needed


def run_blobs(record: dict[str, Any]) -> set[str]:
    """Logs a run record names (`exportctl cat` shows them)."""
    logs = [(record.get("reference") or {}).get("log"), *((c or {}).get("log") for c in record.get("cells", []))]
    return {d for d in logs if isinstance(d, str) and is_digest(d)}


def cache_blobs(value: Any) -> set[str]:
    if not isinstance(value, dict):
        return set()
    return {d for d in value.get("blobs", []) if isinstance(d, str) and is_digest(d)}


def live_blobs(store: Store, bundles: set[str], referrers: set[str], *, with_cache: bool) -> set[str]:
    """Every blob the kept bundles, referrers, their run records and (with_cache) the action cache need."""
    needed: set[str] = set()
    for digest in bundles | referrers:
        needed |= manifest_blobs(store, digest)
    for digest, path in run_dirs(store):
        if digest in bundles:
            for record in path.glob("*.json"):
                try:
                    needed |= run_blobs(json.loads(record.read_bytes()))
                except (OSError, ValueError, AttributeError):
                    continue
    if with_cache:
        for _, value in action_entries(store):
            needed |= cache_blobs(value)
    return needed
