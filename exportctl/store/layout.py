"""The content-addressed store: an OCI image layout plus exportctl's own records beside it.

The store is a plain OCI layout (oci-layout, index.json, blobs/sha256/) so that skopeo, oras or a registry
can read it without exportctl. Two invariants every writer here keeps:
  * a file under blobs/sha256/ is only ever named by the digest of its full contents (writes go to a
    `.tmp-*` file first and are renamed into place), so a crash can leave litter but never a lying blob;
  * shared files (index.json, run numbering) are rewritten atomically under an flock, so concurrent
    builds never lose each other's entries.
exportctl's extra state (action cache, run records) lives under <root>/exportctl/, which OCI tools ignore.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from exportctl.canonical import DIGEST_ALGORITHM, canonical_json, digest_file, is_digest, pretty_json, short
from exportctl.errors import ConfigError, NotFound, StoreError, VerifyFailed
from exportctl.store.atomic import (
    TEMP_PREFIX,
    atomic_write,
    clone_or_copy,
    commit,
    ensure_space,
    link_or_copy,
    new_directory,
    write_temp,
)
from exportctl.store.descriptor import Descriptor, blob_references
from exportctl.store.mediatypes import (
    ANNOTATION_RECIPE,
    ANNOTATION_REF_NAME,
    ANNOTATION_SUBJECT,
    OCI_INDEX,
    OCI_MANIFEST,
)

_LAYOUT = {"imageLayoutVersion": "1.0.0"}
_EMPTY_INDEX: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
_CHUNK = 1 << 20
_LS_HINT = "run `exportctl ls` to see the bundles in the store"
_HEX = frozenset("0123456789abcdef")
_LAYOUT_NAMES = frozenset({".lock", "blobs", "exportctl", "index.json", "oci-layout"})


def default_store_root() -> Path:
    """$EXPORTCTL_STORE, else the XDG data dir (what platformdirs would pick, without depending on it)."""
    if env := os.environ.get("EXPORTCTL_STORE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "exportctl" / "store"


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


class Store:
    """An OCI image layout at `root`. Construct with `Store.open`, which checks or creates the layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs" / DIGEST_ALGORITHM
        self._index = self.root / "index.json"
        self._actions = self.root / "exportctl" / "actions"
        self._runs = self.root / "exportctl" / "runs"

    @classmethod
    def open(cls, root: Path, create: bool = True) -> Store:
        store = cls(root)
        if not (store.root / "oci-layout").is_file():
            # Unlocked, another process may be mid-way through creating this store, so tolerate its files;
            # under the lock creation is either finished or never started, so only the lock file is ours.
            store._refuse_if_foreign(creation_in_progress_ok=True)
            if not create:
                raise NotFound(f"no store at {store.root}", hint="build something first, or set EXPORTCTL_STORE")
            store.root.mkdir(parents=True, exist_ok=True)
            with store.locked():
                if not (store.root / "oci-layout").is_file():
                    store._refuse_if_foreign(creation_in_progress_ok=False)
                    store._blobs.mkdir(parents=True, exist_ok=True)
                    # The lease's lock file and notes (store/lease.py) exist from the start, so that taking
                    # the lease never changes a store (a failed write leaves it exactly as it was).
                    (store.root / "exportctl" / "leases").mkdir(parents=True, exist_ok=True)
                    (store.root / "exportctl" / "gc.lock").touch()
                    atomic_write(store._index, pretty_json(_EMPTY_INDEX))
                    # Written last: its presence is what marks the layout as complete.
                    atomic_write(store.root / "oci-layout", pretty_json(_LAYOUT))
        return store

    def _refuse_if_foreign(self, creation_in_progress_ok: bool) -> None:
        """Never adopt a directory holding something else: writing a layout into it could clobber user files."""
        def ours(name: str) -> bool:
            in_progress = name in _LAYOUT_NAMES or name.startswith(TEMP_PREFIX)
            return name == ".lock" or (creation_in_progress_ok and in_progress)

        if self.root.exists() and (not self.root.is_dir() or not all(ours(p.name) for p in self.root.iterdir())):
            raise StoreError(f"{self.root} exists, is not empty and is not an OCI image layout",
                             hint="point EXPORTCTL_STORE at an empty or new directory")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise read-modify-write of shared files; the kernel drops the lock if we die holding it."""
        with open(self.root / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def blob_path(self, digest: str) -> Path:
        if not is_digest(digest):  # also keeps user-supplied text from escaping blobs/sha256/
            raise NotFound(f"'{digest}' is not a sha256 digest", hint=_LS_HINT)
        return self._blobs / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return is_digest(digest) and self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store at {self.root}", hint=_LS_HINT) from None

    def put_bytes(self, data: bytes, media_type: str, annotations: dict[str, str] | None = None) -> Descriptor:
        return self._put([data], len(data), media_type, annotations)

    def put_file(self, path: Path, media_type: str, annotations: dict[str, str] | None = None) -> Descriptor:
        with open(path, "rb") as f:
            return self._put(iter(lambda: f.read(_CHUNK), b""), os.fstat(f.fileno()).st_size, media_type,
                             annotations)

    def put_stream(self, chunks: Iterable[bytes], media_type: str, size: int = 0) -> Descriptor:
        """Store a blob as it arrives (a download of `size` bytes, when known); an exception from `chunks`
        leaves nothing behind."""
        return self._put(chunks, size, media_type, None)

    def _put(self, chunks: Iterable[bytes], size: int, media_type: str,
             annotations: dict[str, str] | None) -> Descriptor:
        # Temp files live outside blobs/ (every name there is a digest), on the same filesystem: rename is atomic.
        tmp_dir = self.root / "exportctl" / "tmp"
        ensure_space(self.root, tmp_dir, size)
        tmp, digest, size = write_temp(tmp_dir, chunks, store=self.root)
        final = self.blob_path(digest)
        if final.exists():
            tmp.unlink()  # same name means same bytes; leave the existing inode alone for its readers
        else:
            # Read-only because scratch layouts (verify, sign) hard-link blobs: a write through a link would
            # corrupt the store. `exportctl export` copies.
            os.chmod(tmp, 0o444)
            commit(tmp, final)
        return Descriptor(media_type, digest, size, annotations or None)

    def _read_index(self) -> dict[str, Any]:
        try:
            index: dict[str, Any] = json.loads(self._index.read_bytes())
            return index
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read {self._index}: {e}") from e

    def manifests(self, referrers: bool = False) -> list[Descriptor]:
        """Bundles; with `referrers`, the signatures and attestations listed beside them (store/referrers.py)."""
        entries = [Descriptor.from_json(m) for m in self._read_index().get("manifests", [])]
        return [m for m in entries if (ANNOTATION_SUBJECT in (m.annotations or {})) == referrers]

    def _entry(self, digest: str) -> Descriptor:
        """The index entry for a full digest (callers resolve short refs first with `resolve`)."""
        entry = next((m for m in self.manifests() if m.digest == digest), None)
        if entry is None:
            raise NotFound(f"no bundle {digest} in the store at {self.root}", hint=_LS_HINT)
        return entry

    def add_manifest(self, manifest: dict[str, Any], annotations: dict[str, str]) -> Descriptor:
        """Store `manifest` and list it in index.json; its blobs must already be stored."""
        return self.add_manifest_bytes(canonical_json(manifest), annotations)

    def add_manifest_bytes(self, raw: bytes, annotations: dict[str, str]) -> Descriptor:
        """Store a manifest as exactly these bytes (a pulled one keeps its digest) and list it in index.json."""
        try:
            manifest = json.loads(raw)
        except ValueError as e:
            raise StoreError(f"a manifest to store is not JSON: {e}") from e
        missing = [f"{role} ({d.digest})" for role, d in blob_references(manifest) if not self.has_blob(d.digest)]
        if missing:
            raise StoreError(f"manifest references blobs not in the store: {', '.join(missing)}",
                             hint="put every blob before the manifest that lists it")
        blob = self.put_bytes(raw, OCI_MANIFEST)
        entry = Descriptor(OCI_MANIFEST, blob.digest, blob.size, annotations or None, manifest.get("artifactType"))
        with self.locked():
            index = self._read_index()
            for existing in index["manifests"]:
                if existing.get("digest") == entry.digest:
                    return Descriptor.from_json(existing)
            index["manifests"] = sorted([*index["manifests"], entry.to_json()], key=lambda m: m["digest"])
            atomic_write(self._index, pretty_json(index))
        return entry

    def resolve(self, ref: str) -> Descriptor:
        """The bundle whose digest is `ref` or starts with it (>= 6 hex chars, `sha256:` optional)."""
        prefix = ref.strip().lower().removeprefix(f"{DIGEST_ALGORITHM}:")
        if not (6 <= len(prefix) <= 64 and set(prefix) <= _HEX):
            raise ConfigError(f"'{ref}' is not a bundle digest or a prefix of one (at least 6 hex characters)",
                              hint=_LS_HINT)
        matches = [m for m in self.manifests() if _hex(m.digest).startswith(prefix)]
        if not matches:
            raise NotFound(f"no bundle matching '{ref}' in the store at {self.root}", hint=_LS_HINT)
        if len(matches) > 1:
            listed = ", ".join(short(m.digest) for m in matches)
            raise NotFound(f"'{ref}' is ambiguous: it matches {len(matches)} bundles ({listed})",
                           hint="give more characters of the digest")
        return matches[0]

    def _check_blob(self, digest: str, size: int, role: str) -> None:
        what = f"{role} ({digest})"
        if not is_digest(digest):
            raise VerifyFailed(f"{what} is not a sha256 digest")
        path = self.blob_path(digest)
        # The action cache skips work whose blobs are missing, so rebuilding re-creates a deleted blob.
        rebuild = f"delete {path} if present, then re-run the build that produced this bundle"
        if not path.is_file():
            raise VerifyFailed(f"{what} is missing from the store", hint=rebuild)
        if path.stat().st_size != size:
            raise VerifyFailed(f"{what} is {path.stat().st_size} bytes, the manifest says {size}", hint=rebuild)
        if (actual := digest_file(path)) != digest:
            raise VerifyFailed(f"{what} is corrupt: its content hashes to {actual}", hint=rebuild)

    def verify(self, manifest_digest: str) -> list[str]:
        """Re-hash a bundle's manifest, config and layers; return the digests checked, manifest first."""
        self._check_blob(manifest_digest, self._entry(manifest_digest).size, "manifest")
        try:
            refs = blob_references(json.loads(self.read_blob(manifest_digest)))
        except (ValueError, StoreError) as e:
            raise VerifyFailed(f"manifest ({manifest_digest}) is not a valid OCI manifest: {e}") from e
        for role, desc in refs:
            self._check_blob(desc.digest, desc.size, role)
        return [manifest_digest, *(desc.digest for _, desc in refs)]

    def export(self, manifest_digest: str, dest: Path, tags: tuple[str, ...] = (), *,
               independent: bool = True) -> None:
        """Write a standalone OCI layout holding exactly one bundle; `dest` must be new or empty.

        index.json lists the bundle once per name (`org.opencontainers.image.ref.name`): `<recipe>-<short
        digest>`, then each of `tags`, so `umoci ls --layout DIR` lists it and `oci:DIR:NAME` addresses it.
        `independent`: copies (or reflinks) that users may edit freely; hard links only for exportctl's own
        read-only scratch layouts (verify, sign), which never leave it.
        """
        with new_directory(Path(dest)) as tmp:
            digests = self.verify(manifest_digest)  # never hand out a damaged bundle
            entry = self._entry(manifest_digest).to_json()
            (tmp / "blobs" / DIGEST_ALGORITHM).mkdir(parents=True)
            for digest in dict.fromkeys(digests):
                place = clone_or_copy if independent else link_or_copy
                place(self.blob_path(digest), tmp / "blobs" / DIGEST_ALGORITHM / _hex(digest))
            recipe = (entry.get("annotations") or {}).get(ANNOTATION_RECIPE, "bundle")
            names = dict.fromkeys([f"{recipe}-{_hex(manifest_digest)[:12]}", *tags])
            entries = [{**entry, "annotations": {**(entry.get("annotations") or {}), ANNOTATION_REF_NAME: name}}
                       for name in names]
            atomic_write(tmp / "index.json", pretty_json({**_EMPTY_INDEX, "manifests": entries}))
            atomic_write(tmp / "oci-layout", pretty_json(_LAYOUT))

    def _action_path(self, key: str) -> Path:
        if not is_digest(key):
            raise StoreError(f"action cache key '{key}' is not a sha256 digest")
        return self._actions / f"{_hex(key)}.json"

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """The cached result for `key`, or None if absent or if any blob it names is gone."""
        try:
            value = json.loads(self._action_path(key).read_bytes())
        except (FileNotFoundError, ValueError):
            return None  # an unreadable entry is a miss: the build redoes the work and rewrites it
        if not isinstance(value, dict) or not all(self.has_blob(d) for d in value.get("blobs", [])):
            return None  # a damaged store must cost a rebuild, never serve a result it cannot back
        return value

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        missing = [d for d in value.get("blobs", []) if not self.has_blob(d)]
        if missing:
            raise StoreError(f"action cache entry names blobs not in the store: {', '.join(missing)}",
                             hint="put the blobs before caching the result that refers to them")
        atomic_write(self._action_path(key), pretty_json(value))

    def _run_dir(self, manifest_digest: str) -> Path:
        if not is_digest(manifest_digest):
            raise StoreError(f"'{manifest_digest}' is not a sha256 digest")
        return self._runs / _hex(manifest_digest)

    @staticmethod
    def _run_numbers(run_dir: Path) -> list[int]:
        return sorted(int(p.stem) for p in run_dir.glob("*.json") if p.stem.isdigit())

    def add_run_record(self, manifest_digest: str, record: dict[str, Any]) -> Path:
        """Append a record of one build/validation run of a bundle; returns the file written."""
        run_dir = self._run_dir(manifest_digest)
        with self.locked():  # two runs finishing together must not both take number n
            path = run_dir / f"{max(self._run_numbers(run_dir), default=0) + 1}.json"
            atomic_write(path, pretty_json(record))
        return path

    def run_records(self, manifest_digest: str) -> list[dict[str, Any]]:
        run_dir = self._run_dir(manifest_digest)
        return [json.loads((run_dir / f"{n}.json").read_bytes()) for n in self._run_numbers(run_dir)]
