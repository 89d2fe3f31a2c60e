"""`--shared-dir DIR`: the inputs artifact on a filesystem every node mounts (NFS, Lustre), instead of a registry.

The directory holds blobs the way an OCI layout does (`blobs/sha256/<hex>`, the manifest among them), so one
directory serves any number of builds and an unchanged file is written once. Writers put each blob through a
temp file and a rename (a node never sees half a blob); readers check every blob against its digest and size
as it streams, as a registry pull does, because a shared filesystem can serve stale or damaged bytes too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from exportctl.canonical import digest_bytes, is_digest
from exportctl.errors import ConfigError, StoreError, VerifyFailed
from exportctl.registry.client import MAX_MANIFEST, checked
from exportctl.store import mediatypes as mt
from exportctl.store.atomic import commit, write_temp

_CHUNK = 1 << 20


class SharedDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise ConfigError(f"'{digest}' is not a sha256 digest")
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def put_blob(self, digest: str, size: int, source: Path | bytes, mount_from: list[str]) -> None:
        """Make `digest` present (skipped when it is already there)."""
        target = self._path(digest)
        if target.is_file() and target.stat().st_size == size:
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, bytes):
                tmp, written, _ = write_temp(target.parent, [source])
            else:
                with open(source, "rb") as handle:
                    tmp, written, _ = write_temp(target.parent, iter(lambda: handle.read(_CHUNK), b""))
        except OSError as exc:
            raise StoreError(f"cannot write the shared directory {self.root}: {exc.strerror}",
                             hint="--shared-dir must be writable here and readable on every node") from None
        if written != digest:  # a file edited while the build was being submitted
            tmp.unlink()
            raise VerifyFailed(f"{source!r} changed while it was copied to {self.root} (it hashes to {written}, "
                               f"not {digest})")
        os.chmod(tmp, 0o444)
        commit(tmp, target)

    def put_manifest(self, raw: bytes, media_type: str, target: str) -> None:
        self.put_blob(digest_bytes(raw), len(raw), raw, [])

    def get_manifest(self, target: str, *, missing_ok: bool = False) -> tuple[bytes, str] | None:
        path = self._path(target)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            if missing_ok:
                return None
            raise ConfigError(f"the shared directory {self.root} has no inputs {target}",
                              hint="is --shared-dir the same directory on this node as on the submit host?"
                              ) from None
        if size > MAX_MANIFEST:
            raise VerifyFailed(f"{path} is {size} bytes, more than a manifest may have")
        raw = b"".join(self.blob_chunks(target, size, f"the inputs manifest {target}"))
        return raw, mt.OCI_MANIFEST

    def blob_chunks(self, digest: str, size: int, what: str) -> Iterator[bytes]:
        path = self._path(digest)
        if not path.is_file():
            raise VerifyFailed(f"{what} ({digest}) is missing from the shared directory {self.root}")
        with open(path, "rb") as handle:
            yield from checked(iter(lambda: handle.read(_CHUNK), b""), digest, size, what)
