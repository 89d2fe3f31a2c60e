"""`exportctl push DIGEST REF`: a stored bundle and its referrers onto a registry, bytes unchanged.

Order matters for readers: blobs before the manifest that lists them, the bundle before its referrers, the
referrers before the fallback index that points at them. The bundle is verified first, so a damaged store
never publishes a damaged bundle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from exportctl.registry import referrers as remote_referrers
from exportctl.registry import remotes
from exportctl.registry.client import Registry, Traffic
from exportctl.registry.reference import Reference
from exportctl.registry.transport import TransportOptions
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as stored_referrers
from exportctl.store.descriptor import blob_references
from exportctl.store.layout import Store

Report = Callable[[str], None]


@dataclass(frozen=True)
class Pushed:
    reference: str  # HOST/REPO@sha256:…
    digest: str
    referrers: list[str]
    traffic: Traffic


def _push_manifest_blobs(registry: Registry, store: Store, raw: bytes, mount_from: list[str],
                         report: Report) -> None:
    for role, desc in blob_references(json.loads(raw)):
        before = registry.traffic.uploaded
        registry.put_blob(desc.digest, desc.size, store.blob_path(desc.digest), mount_from)
        if registry.traffic.uploaded > before:
            report(f"uploaded {role} ({desc.size} bytes)")


def push(store: Store, digest: str, ref: Reference, options: TransportOptions | None = None,
         report: Report = lambda msg: None) -> Pushed:
    store.verify(digest)  # re-hash before publishing
    registry = Registry(ref, options)
    mount_from = remotes.mount_sources(store, digest, ref)
    raw = store.read_blob(digest)
    _push_manifest_blobs(registry, store, raw, mount_from, report)
    registry.put_manifest(raw, mt.OCI_MANIFEST, ref.tag or digest)
    report(f"manifest {digest}")
    pushed, entries, api = [], [], False
    for referrer in stored_referrers.load(store, digest):  # re-hashes the referrers' blobs
        referrer_raw = store.read_blob(referrer.digest)  # the stored bytes, not a re-serialization
        _push_manifest_blobs(registry, store, referrer_raw, mount_from, report)
        headers = registry.put_manifest(referrer_raw, mt.OCI_MANIFEST, referrer.digest)
        api = api or any(k.lower() == "oci-subject" for k in headers)
        entries.append(remote_referrers.descriptor(referrer_raw, referrer.manifest, referrer.digest))
        pushed.append(referrer.digest)
        report(f"referrer {referrer.artifact_type} {referrer.digest}")
    remote_referrers.publish(registry, digest, entries, api)
    remotes.remember(store, digest, ref)
    return Pushed(ref.with_digest(digest).pinned, digest, pushed, registry.traffic)
