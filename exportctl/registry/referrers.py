"""Finding and publishing a bundle's referrers (signatures, provenance) on a registry.

OCI 1.1 registries index a manifest that has a `subject` themselves: the PUT answers with an `OCI-Subject`
header and `GET /v2/<repo>/referrers/<digest>` lists them. Registries without that API (CNCF distribution 2.8,
Debian's docker-registry) get the spec's fallback: an image index tagged `sha256-<hex of the subject>` whose
`manifests` are the referrers' descriptors, read-modified-written by the pusher. Pull asks the API first and
reads the fallback tag when the API is absent, as oras and cosign do.
"""

from __future__ import annotations

import json
from typing import Any

from exportctl.canonical import canonical_json
from exportctl.registry.client import Registry, index_manifests
from exportctl.store import mediatypes as mt


def fallback_tag(subject: str) -> str:
    return subject.replace(":", "-", 1)


def descriptor(raw: bytes, manifest: dict[str, Any], digest: str) -> dict[str, Any]:
    """The referrers-list entry for one referrer manifest: what the spec says the index carries."""
    entry: dict[str, Any] = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(raw)}
    if manifest.get("artifactType"):
        entry["artifactType"] = manifest["artifactType"]
    if manifest.get("annotations"):
        entry["annotations"] = manifest["annotations"]
    return entry


def publish(registry: Registry, subject: str, entries: list[dict[str, Any]], api: bool) -> None:
    """Make `entries` findable by `subject`: nothing more where the registry indexed them (`api`), else the
    fallback index gains them (kept sorted by digest so the same set always gives the same index bytes)."""
    if api or not entries:
        return
    tag = fallback_tag(subject)
    found = registry.get_manifest(tag, missing_ok=True)
    current = index_manifests(found[0], f"the referrers index {tag}") if found else []
    merged = {e["digest"]: e for e in [*current, *entries]}
    if set(merged) == {e.get("digest") for e in current}:
        return  # unchanged: a second push writes nothing
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
             "manifests": [merged[d] for d in sorted(merged)]}
    registry.put_manifest(canonical_json(index), mt.OCI_INDEX, tag)


def find(registry: Registry, subject: str) -> list[dict[str, Any]]:
    """Descriptors of `subject`'s referrers: the referrers API where there is one, else the fallback tag."""
    listed = registry.referrers_api(subject)
    if listed is not None:
        return listed
    found = registry.get_manifest(fallback_tag(subject), missing_ok=True)
    if found is None:
        return []
    return index_manifests(found[0], f"the referrers index {fallback_tag(subject)}")


def parse(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}
