"""Failures say so: `audit` exits with the code of its first failed check, `verify` says "unverified" plainly."""

from __future__ import annotations

import json
from pathlib import Path

from exportctl import errors
from exportctl.bundle.read import read_bundle
from exportctl.store.layout import Store
from exportctl.trust.signing import sign_bundle
from tests.unit.test_signing import _flip, exportctl, fake_bundle, keys  # noqa: F401  (keys is a fixture)


def test_audit_exits_with_the_first_failed_check(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    assert exportctl("audit", digest, store=store.root).returncode == 0
    _flip(store.blob_path(read_bundle(store, digest).cells[0].artifact), 2)
    done = exportctl("audit", digest, "--json", store=store.root, check=False)
    assert done.returncode == errors.VERIFY_FAILED, done.stderr
    page = json.loads(done.stdout)  # the page is still printed, once, and says what failed
    assert page["integrity"]["ok"] is False and page["integrity"]["exit_code"] == errors.VERIFY_FAILED
    assert "is corrupt" in done.stderr
    text = exportctl("audit", digest, store=store.root, check=False)
    assert text.returncode == errors.VERIFY_FAILED and "FAILED" in text.stdout


def test_verify_without_a_key_says_unverified(tmp_path: Path, keys: dict[str, Path]) -> None:  # noqa: F811
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    sign_bundle(store, digest, key=keys["a"], sigstore=False)
    done = exportctl("verify", digest, "--json", store=store.root)
    status = json.loads(done.stdout)["provenance"]["status"]
    assert status.startswith("unverified:") and "pass --key" in status
    text = exportctl("verify", digest, store=store.root).stdout
    assert "provenance: unverified" in text
    keyed = json.loads(exportctl("verify", digest, "--key", keys["a.pub"], "--json", store=store.root).stdout)
    assert keyed["provenance"]["status"] == "valid"
