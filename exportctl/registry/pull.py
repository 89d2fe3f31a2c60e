"""`exportctl pull REF`: a bundle and its referrers from a registry into the store, all checked first.

Everything lands in a staging layout beside the store (same filesystem) and is checked there: the manifest
against its digest and a size limit, every blob against its descriptor's digest and size while it streams,
layer names and tar entries against escaping paths, the referrers' subjects. Only a bundle that passed all of
it is copied into the store (blobs first, manifests last), so a refused pull (exit 7) stores nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from exportctl.bundle.read import read_bundle
from exportctl.canonical import digest_bytes, is_digest
from exportctl.errors import VerifyFailed
from exportctl.registry import referrers as remote_referrers
from exportctl.registry import remotes
from exportctl.registry.client import Registry, Traffic
from exportctl.registry.reference import Reference
from exportctl.registry.transport import TransportOptions
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as stored_referrers
from exportctl.store.atomic import scratch_dir
from exportctl.store.descriptor import blob_references
from exportctl.store.layout import Store
from exportctl.store.tarball import safe_extract

Report = Callable[[str], None]
MAX_BLOB = 64 << 30  # a descriptor claiming more than 64 GiB is refused before a byte is fetched
_HINT = "nothing was stored; the registry serves content exportctl did not write"


@dataclass(frozen=True)
class Pulled:
    digest: str
    name: str
    referrers: list[str]
    traffic: Traffic


def _manifest(raw: bytes, what: str) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise VerifyFailed(f"{what} is not JSON", hint=_HINT) from None
    if not isinstance(manifest, dict) or manifest.get("mediaType", mt.OCI_MANIFEST) != mt.OCI_MANIFEST:
        raise VerifyFailed(f"{what} is not an OCI image manifest", hint=_HINT)
    for role, desc in blob_references(manifest):
        if not is_digest(desc.digest) or not 0 <= desc.size <= MAX_BLOB:
            raise VerifyFailed(f"{what}: {role} has digest {desc.digest!r} and size {desc.size}", hint=_HINT)
    return manifest


def _check_names(manifest: dict[str, Any], what: str) -> None:
    """Layer titles become file names on pull (oras, exportctl export): none may leave its directory."""
    for i, layer in enumerate(manifest.get("layers", [])):
        for key in (mt.ANNOTATION_TITLE, mt.ANNOTATION_FILEPATH):
            text = str((layer.get("annotations") or {}).get(key, "x"))
            path = PurePosixPath(text)
            if not text or "\\" in text or "\0" in text or path.is_absolute() or ".." in path.parts:
                raise VerifyFailed(f"{what}: layer {i} annotation {key} '{text}' escapes the bundle's directory",
                                   hint=_HINT)


def _fetch(registry: Registry, staging: Store, manifest: dict[str, Any], what: str) -> list[str]:
    fetched = []
    for role, desc in blob_references(manifest):
        if not staging.has_blob(desc.digest):
            staging.put_stream(registry.blob_chunks(desc.digest, desc.size, f"{what} {role}"), desc.mediaType,
                                desc.size)
        fetched.append(desc.digest)
    for layer in manifest.get("layers", []):
        if layer.get("mediaType") == mt.WEIGHT_TAR:
            with tempfile.TemporaryDirectory(prefix="exportctl-tarcheck-") as tmp:
                safe_extract(staging.blob_path(layer["digest"]), Path(tmp) / "x")  # refuses escaping entries
    return fetched


def _stage(registry: Registry, staging: Store, ref: Reference, report: Report) -> tuple[str, list[str], list[str]]:
    found = registry.get_manifest(ref.target)
    assert found is not None
    raw = found[0]
    digest = digest_bytes(raw)
    manifest = _manifest(raw, f"manifest {digest}")
    _check_names(manifest, f"manifest {digest}")
    blobs = _fetch(registry, staging, manifest, "bundle")
    staging.add_manifest_bytes(raw, {})
    info = read_bundle(staging, digest)  # exit 7 unless it is a bundle exportctl wrote
    report(f"bundle {info.name} {digest}: {len(blobs)} blobs")
    pulled = []
    for entry in remote_referrers.find(registry, digest):
        if entry.get("mediaType") != mt.OCI_MANIFEST or not is_digest(str(entry.get("digest"))):
            continue  # another tool's referrer kind (an index): not ours to interpret
        got = registry.get_manifest(str(entry["digest"]))
        assert got is not None
        referrer = _manifest(got[0], f"referrer {entry['digest']}")
        if (referrer.get("subject") or {}).get("digest") != digest:
            raise VerifyFailed(f"referrer {entry['digest']} is listed for {digest} but names "
                               f"{(referrer.get('subject') or {}).get('digest')}", hint=_HINT)
        blobs += _fetch(registry, staging, referrer, f"referrer {entry['digest']}")
        staging.add_manifest_bytes(got[0], {mt.ANNOTATION_SUBJECT: digest, **(referrer.get("annotations") or {})})
        pulled.append(str(entry["digest"]))
        report(f"referrer {referrer.get('artifactType')} {entry['digest']}")
    stored_referrers.load(staging, digest)  # re-hashes every referrer blob, checks each subject
    return digest, blobs, pulled


def pull(store: Store, ref: Reference, options: TransportOptions | None = None,
         report: Report = lambda msg: None) -> Pulled:
    registry = Registry(ref, options)
    with scratch_dir(store.root / "exportctl") as tmp:
        staging = Store.open(tmp / "staging")
        digest, blobs, pulled = _stage(registry, staging, ref, report)
        name = read_bundle(staging, digest).name
        for blob in dict.fromkeys(blobs):
            store.put_file(staging.blob_path(blob), "application/octet-stream")
        store.add_manifest_bytes(staging.read_blob(digest), {"dev.exportctl.recipe": name})
        for referrer in pulled:
            raw = staging.read_blob(referrer)
            annotations = json.loads(raw).get("annotations") or {}
            store.add_manifest_bytes(raw, {mt.ANNOTATION_SUBJECT: digest, **annotations})
    remotes.remember(store, digest, ref)
    return Pulled(digest, name, pulled, registry.traffic)
