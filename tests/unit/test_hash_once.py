"""Signing and verifying read every byte of a bundle once: model-signing's manifest takes the digests the blob
checks just computed (canonical.HashLedger), and a file the ledger did not hash as it is now is hashed again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exportctl.canonical import digest_file, hash_ledger
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from exportctl.trust.keys import keygen
from exportctl.trust.signing import sign_bundle
from exportctl.trust.verify import verify_layout, verify_stored
from tests.unit.test_signing import fake_bundle

SIZE = 32 << 20


def _bytes_read() -> int:
    """Bytes this process read through read(2) and friends, page cache hits included."""
    line = next(ln for ln in Path("/proc/self/io").read_text().splitlines() if ln.startswith("rchar:"))
    return int(line.split()[1])


def _read_while(action) -> int:  # type: ignore[no-untyped-def]
    before = _bytes_read()
    action()
    return _bytes_read() - before


@pytest.fixture
def big(tmp_path: Path) -> dict:
    keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store, artifact=(os.urandom(SIZE), mt.WEIGHT_RAW))
    return {"store": store, "digest": digest, "key": tmp_path / "k.pem", "pub": tmp_path / "k.pub.pem",
            "layout": tmp_path / "layout"}


def test_sign_and_verify_read_the_bundle_once(big: dict) -> None:
    store, digest = big["store"], big["digest"]
    signed = _read_while(lambda: sign_bundle(store, digest, key=big["key"], sigstore=False))
    ref.export(store, digest, big["layout"])
    stored = _read_while(lambda: verify_stored(store, digest))  # checks the signature by the recorded key
    exported = _read_while(lambda: verify_layout(big["layout"], big["pub"]))
    for read in (signed, stored, exported):
        assert SIZE <= read < 1.5 * SIZE  # twice, before: the blob check, then model-signing's own pass


def test_a_blob_changed_after_its_check_is_hashed_again_and_fails_the_signature(big: dict) -> None:
    """What the ledger hashed and what model-signing sees must be the same file version, or it reads again."""
    store, digest = big["store"], big["digest"]
    sign_bundle(store, digest, key=big["key"], sigstore=False)
    ref.export(store, digest, big["layout"])
    index = big["layout"] / "index.json"
    with hash_ledger() as ledger:
        known = digest_file(index)
        assert ledger.known(index) == known
        os.utime(index, ns=(0, 0))  # same bytes, another version: no longer known
        assert ledger.known(index) is None
        copy = index.with_name("copy")
        copy.write_bytes(index.read_bytes())
        assert ledger.known(copy) is None  # same bytes, another file: never hashed here
        copy.unlink()
        os.link(index, copy)
        assert ledger.known(copy) is None  # a hard link to a file whose version changed since
        copy.unlink()


def test_the_manifest_from_the_ledger_is_model_signing_s_own(big: dict) -> None:
    """Same files, digests and serialization parameters as model-signing hashing the layout itself."""
    from exportctl.trust.layout_hashing import layout_hashing

    store, digest = big["store"], big["digest"]
    sign_bundle(store, digest, key=big["key"], sigstore=False)
    ref.export(store, digest, big["layout"])
    with hash_ledger() as ledger:
        store.verify(digest)  # the blob check fills the ledger (the store's blobs: hard links below)
        layout = big["layout"].with_name("linked")
        ref.write_layout(store, digest, layout, ref.pick(ref.load(store, digest)))
        read = _read_while(lambda: layout_hashing(ledger).hash(layout))
        from_ledger = layout_hashing(ledger).hash(layout)
    own = layout_hashing().hash(layout)
    assert read < SIZE // 4  # only index.json, oci-layout and the small blobs the ledger did not see
    assert from_ledger == own and from_ledger.serialization_type == own.serialization_type
    assert list(from_ledger.resource_descriptors()) == list(own.resource_descriptors())
