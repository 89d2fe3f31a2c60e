"""Where a bundle is known to live on registries: what lets a push mount blobs instead of uploading them.

`<store>/exportctl/remotes/<hex>.json` lists `host/repository` for every push and pull of bundle `<hex>`.
A push to another repository of the same registry asks it to mount each missing blob from those
(cross-repository blob mount), which costs no upload. The list is a hint: a wrong entry costs one refused mount.
"""

from __future__ import annotations

import json
from pathlib import Path

from exportctl.canonical import pretty_json
from exportctl.registry.reference import Reference
from exportctl.store.atomic import atomic_write
from exportctl.store.layout import Store


def _path(store: Store, digest: str) -> Path:
    return store.root / "exportctl" / "remotes" / f"{digest.split(':', 1)[1]}.json"


def known(store: Store, digest: str) -> list[str]:
    try:
        value = json.loads(_path(store, digest).read_bytes())
    except (OSError, ValueError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def mount_sources(store: Store, digest: str, ref: Reference) -> list[str]:
    """Repositories on `ref`'s registry that held this bundle (other than `ref`'s own)."""
    prefix = f"{ref.host}/"
    return [r[len(prefix):] for r in known(store, digest) if r.startswith(prefix) and r != f"{prefix}{ref.repository}"]


def remember(store: Store, digest: str, ref: Reference) -> None:
    path = _path(store, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.locked():  # read-modify-write: two concurrent pulls must not drop each other's entry
        atomic_write(path, pretty_json(sorted({*known(store, digest), f"{ref.host}/{ref.repository}"})))
