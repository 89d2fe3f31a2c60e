"""The store layer against real files: canonical tars, the OCI layout, verification, export, caches."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from exportctl.canonical import canonical_json, digest_bytes, digest_file
from exportctl.errors import ConfigError, NotFound, StoreError, VerifyFailed
from exportctl.store import mediatypes as mt
from exportctl.store.descriptor import Descriptor
from exportctl.store.layout import Store, default_store_root
from exportctl.store.tarball import canonical_tar, safe_extract


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def _manifest(config: Descriptor, layers: list[Descriptor]) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.MODEL_ARTIFACT_TYPE,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }


def _bundle(store: Store, salt: str = "") -> tuple[Descriptor, list[Descriptor]]:
    """A small ModelPack-shaped bundle: config plus three titled layers."""
    config = store.put_bytes(canonical_json({"name": "tiny", "salt": salt}), mt.MODEL_CONFIG)
    layers = [
        store.put_bytes(f"weights{salt}".encode(), mt.WEIGHT_RAW,
                        {mt.ANNOTATION_TITLE: "onnx-fp32/model.onnx", mt.ANNOTATION_ROLE: mt.Role.ARTIFACT}),
        store.put_bytes(f"meta{salt}".encode(), mt.WEIGHT_CONFIG_RAW, {mt.ANNOTATION_TITLE: "metadata.json"}),
        store.put_bytes(f"report{salt}".encode(), mt.VALIDATION),
    ]
    desc = store.add_manifest(_manifest(config, layers), {mt.ANNOTATION_CELL: "onnx/fp32"})
    return desc, [config, *layers]


def _make_tree(root: Path, names: list[str], mtime: int, file_mode: int) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}")
        os.chmod(path, 0o700 if name.endswith(".sh") else file_mode)
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime))


# -- tarball ---------------------------------------------------------------------------------------------

def test_canonical_tar_ignores_mtimes_modes_and_creation_order(tmp_path: Path) -> None:
    names = ["b/z.bin", "a.txt", "b/a/deep.txt", "run.sh", "b.txt"]
    _make_tree(tmp_path / "one", names, mtime=1_000_000, file_mode=0o600)
    _make_tree(tmp_path / "two", list(reversed(names)), mtime=2_000_000, file_mode=0o664)

    data = canonical_tar(tmp_path / "one")
    assert data == canonical_tar(tmp_path / "two")
    # Plain string order of the POSIX path, so "b.txt" ('.' is 0x2e) sorts before "b/a" ('/' is 0x2f).
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.txt", "b", "b.txt", "b/a", "b/a/deep.txt", "b/z.bin", "run.sh"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.name: m.mode for m in members}["run.sh"] == 0o755
    assert {m.name: m.mode for m in members}["a.txt"] == 0o644
    assert all(m.mode == 0o755 for m in members if m.isdir())


def test_canonical_tar_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "link").symlink_to("/etc/passwd")
    with pytest.raises(StoreError, match="sub/link"):
        canonical_tar(tmp_path / "src")


def test_safe_extract_round_trips_a_canonical_tar(tmp_path: Path) -> None:
    _make_tree(tmp_path / "src", ["x/y.txt", "tool.sh"], mtime=5, file_mode=0o644)
    safe_extract(canonical_tar(tmp_path / "src"), tmp_path / "out")
    assert (tmp_path / "out" / "x" / "y.txt").read_text() == "content of x/y.txt"
    assert os.stat(tmp_path / "out" / "tool.sh").st_mode & 0o111


def _hostile_tar(info: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("info", [
    _entry("../x"),
    _entry("a/../../x"),
    _entry("/etc/evil"),
    _entry("link", tarfile.SYMTYPE, "/etc/passwd"),
    _entry("hard", tarfile.LNKTYPE, "fine.txt"),
    _entry("dev", tarfile.CHRTYPE),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "chardev"])
def test_safe_extract_refuses_hostile_entries(tmp_path: Path, info: tarfile.TarInfo) -> None:
    path = tmp_path / "hostile.tar"
    path.write_bytes(_hostile_tar(info))
    with pytest.raises(VerifyFailed, match=f"'{info.name}'"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written


# -- blobs -----------------------------------------------------------------------------------------------

def test_open_creates_layout_and_refuses_foreign_dirs(tmp_path: Path, store: Store) -> None:
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads((store.root / "index.json").read_text())["manifests"] == []
    assert Store.open(store.root).manifests() == []
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an OCI image layout"):
        Store.open(tmp_path / "foreign")
    with pytest.raises(NotFound):
        Store.open(tmp_path / "absent", create=False)


def test_put_bytes_is_idempotent_and_put_file_agrees(tmp_path: Path, store: Store) -> None:
    first = store.put_bytes(b"hello", mt.WEIGHT_RAW)
    assert store.put_bytes(b"hello", mt.WEIGHT_RAW) == first
    assert first.digest == digest_bytes(b"hello") and first.size == 5
    (tmp_path / "big.bin").write_bytes(os.urandom(3 << 20))
    from_file = store.put_file(tmp_path / "big.bin", mt.WEIGHT_RAW, {mt.ANNOTATION_TITLE: "big.bin"})
    assert from_file.digest == digest_file(tmp_path / "big.bin")
    assert store.read_blob(from_file.digest) == (tmp_path / "big.bin").read_bytes()
    blob_dir = store.root / "blobs" / "sha256"
    assert sorted(p.name for p in blob_dir.iterdir()) == sorted(d.digest[7:] for d in (first, from_file))


def test_read_blob_missing_names_digest(store: Store) -> None:
    digest = digest_bytes(b"never stored")
    with pytest.raises(NotFound, match=digest) as err:
        store.read_blob(digest)
    assert "exportctl ls" in str(err.value)


def test_interrupted_write_is_never_a_blob(tmp_path: Path, store: Store) -> None:
    desc, _ = _bundle(store)
    litter = store.root / "blobs" / "sha256" / ".tmp-0123abcd"
    litter.write_bytes(b"half a blob")
    assert not store.has_blob(digest_bytes(b"half a blob"))
    store.verify(desc.digest)
    store.export(desc.digest, tmp_path / "out")
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "out").rglob("*"))


# -- manifests -------------------------------------------------------------------------------------------

def test_add_manifest_dedups_by_digest(store: Store) -> None:
    desc, blobs = _bundle(store)
    again = store.add_manifest(_manifest(blobs[0], blobs[1:]), {mt.ANNOTATION_CELL: "other"})
    assert again == desc and again.artifactType == mt.MODEL_ARTIFACT_TYPE
    assert store.manifests() == [desc]


def test_add_manifest_requires_its_blobs(store: Store) -> None:
    config = store.put_bytes(b"{}", mt.MODEL_CONFIG)
    ghost = Descriptor(mt.WEIGHT_RAW, digest_bytes(b"ghost"), 5)
    with pytest.raises(StoreError, match=ghost.digest):
        store.add_manifest(_manifest(config, [ghost]), {})


def test_resolve_by_prefix_and_ambiguity(store: Store) -> None:
    config = store.put_bytes(b"{}", mt.MODEL_CONFIG)
    # Birthday search for two manifests whose digests share 6 hex characters (~5k candidates).
    seen: dict[str, dict] = {}
    for i in range(200_000):
        manifest = {**_manifest(config, []), "annotations": {"n": str(i)}}
        prefix = digest_bytes(canonical_json(manifest))[7:13]
        if prefix in seen:
            break
        seen[prefix] = manifest
    a = store.add_manifest(seen[prefix], {})
    b = store.add_manifest(manifest, {})
    assert store.resolve(a.digest) == a
    assert store.resolve(b.digest[7:20].upper()) == b
    assert store.resolve("sha256:" + a.digest[7:20]) == a
    with pytest.raises(NotFound, match="ambiguous"):
        store.resolve(prefix)
    with pytest.raises(ConfigError):
        store.resolve("abc")
    with pytest.raises(NotFound):
        store.resolve("f" * 64 if not a.digest.endswith("f" * 64) else "e" * 64)


# -- verify and export -----------------------------------------------------------------------------------

def test_verify_detects_a_flipped_byte(store: Store) -> None:
    desc, blobs = _bundle(store)
    assert store.verify(desc.digest) == [desc.digest, *(b.digest for b in blobs)]
    path = store.blob_path(blobs[1].digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(VerifyFailed) as err:
        store.verify(desc.digest)
    assert blobs[1].digest in str(err.value) and "'onnx-fp32/model.onnx'" in str(err.value)
    assert err.value.exit_code == 7


@pytest.mark.parametrize("which, role", [(0, "config"), (2, "layer 1 'metadata.json'"), (3, "layer 2")])
def test_verify_names_a_deleted_blob(store: Store, which: int, role: str) -> None:
    desc, blobs = _bundle(store)
    store.blob_path(blobs[which].digest).unlink()
    with pytest.raises(VerifyFailed, match=f"{role} \\({blobs[which].digest}\\) is missing"):
        store.verify(desc.digest)


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not on PATH; cannot check OCI interop")
def test_export_is_a_layout_skopeo_reads(tmp_path: Path, store: Store) -> None:
    desc, blobs = _bundle(store)
    _bundle(store, salt="unrelated")  # must not leak into the export
    dest = tmp_path / "exported"
    store.export(desc.digest, dest)
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{dest}"], check=True, capture_output=True).stdout
    assert digest_bytes(raw) == desc.digest
    exported = {p.name for p in (dest / "blobs" / "sha256").iterdir()}
    assert exported == {d.digest[7:] for d in (desc, *blobs)}
    index = json.loads((dest / "index.json").read_text())
    entry = desc.to_json()
    name = f"{(entry.get('annotations') or {}).get('dev.exportctl.recipe', 'bundle')}-{desc.digest[7:19]}"
    assert index["manifests"] == [{**entry, "annotations": {**(entry.get("annotations") or {}),
                                                            "org.opencontainers.image.ref.name": name}}]
    assert Store.open(dest).verify(desc.digest)


def test_export_refuses_non_empty_dest_but_accepts_empty(tmp_path: Path, store: Store) -> None:
    desc, _ = _bundle(store)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        store.export(desc.digest, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    store.export(desc.digest, tmp_path / "empty")
    assert (tmp_path / "empty" / "oci-layout").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


# -- action cache, run records, concurrency ----------------------------------------------------------------

def test_action_cache_misses_when_a_listed_blob_is_gone(store: Store) -> None:
    key = digest_bytes(b"cell key")
    blob = store.put_bytes(b"artifact", mt.WEIGHT_RAW)
    assert store.cache_get(key) is None
    store.cache_put(key, {"blobs": [blob.digest], "status": "passed"})
    assert store.cache_get(key) == {"blobs": [blob.digest], "status": "passed"}
    store.blob_path(blob.digest).unlink()
    assert store.cache_get(key) is None
    with pytest.raises(StoreError, match=blob.digest):
        store.cache_put(key, {"blobs": [blob.digest]})


def test_run_records_are_numbered_in_order(store: Store) -> None:
    desc, _ = _bundle(store)
    first = store.add_run_record(desc.digest, {"run": "a"})
    second = store.add_run_record(desc.digest, {"run": "b"})
    assert (first.name, second.name) == ("1.json", "2.json")
    assert store.run_records(desc.digest) == [{"run": "a"}, {"run": "b"}]


def _concurrent_builder(root: Path, worker: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()  # start together so index rewrites (and even store creation) really overlap
    store = Store.open(root)
    for i in range(5):
        _bundle(store, salt=f"{worker}-{i}")


def test_concurrent_add_manifest_keeps_every_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_concurrent_builder, args=(tmp_path / "s", w, barrier)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    manifests = Store.open(tmp_path / "s").manifests()
    assert len(manifests) == 20
    assert [m.digest for m in manifests] == sorted(m.digest for m in manifests)


def test_default_store_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EXPORTCTL_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_root() == tmp_path / "xdg" / "exportctl" / "store"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_store_root() == Path.home() / ".local" / "share" / "exportctl" / "store"
    monkeypatch.setenv("EXPORTCTL_STORE", str(tmp_path / "explicit"))
    assert default_store_root() == tmp_path / "explicit"
