"""What leaves the store cannot reach back into it: `export` writes independent files, never hard links."""

from __future__ import annotations

from pathlib import Path

from exportctl.bundle.read import read_bundle
from exportctl.store.layout import Store
from tests.unit.test_signing import exportctl, fake_bundle


def test_editing_an_exported_file_leaves_the_store_intact(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    artifact = read_bundle(store, digest).cells[0].artifact
    exportctl("export", digest, tmp_path / "out", store=store.root)
    exported = tmp_path / "out" / "blobs" / "sha256" / artifact[7:]
    blob = store.blob_path(artifact)
    assert exported.stat().st_ino != blob.stat().st_ino and blob.stat().st_nlink == 1
    original = blob.read_bytes()
    with open(exported, "r+b") as f:  # in place, as an editor or a careless script would
        f.write(b"EDITED")
    assert blob.read_bytes() == original
    assert exportctl("verify", digest, store=store.root).returncode == 0
    assert exportctl("verify", tmp_path / "out", store=store.root, check=False).returncode == 7
