"""The store index behind `exportctl ls` filters, Sigstore plumbing up to its first network call, and the
pieces of audit/diff that need no build."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jwt
import pytest

from exportctl import catalog as index
from exportctl import errors
from exportctl.bundle.diff import parse_pins
from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from exportctl.trust.keys import keygen
from exportctl.trust.signing import sign_bundle
from tests.unit.test_signing import exportctl, fake_bundle, snapshot


@pytest.fixture
def populated(tmp_path: Path) -> dict:
    store = Store.open(tmp_path / "store")
    keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    ck = "sha256:" + "ab" * 32
    bundles = {
        "old_onnx": fake_bundle(store, "1", checkpoint=ck, started="2025-12-31T23:00:00+00:00"),
        "new_onnx": fake_bundle(store, "2", checkpoint=ck, started="2026-02-01T10:00:00+00:00"),
        "new_ts": fake_bundle(store, "3", formats=("torchscript",), checkpoint=ck,
                              started="2026-02-02T10:00:00+00:00"),
        "other_ck": fake_bundle(store, "4", started="2026-02-03T10:00:00+00:00"),
    }
    keyid = sign_bundle(store, bundles["new_onnx"], key=tmp_path / "k.pem", sigstore=False)["keyid"]
    return {"store": store, "bundles": bundles, "checkpoint": ck, "keyid": keyid}


def _ls(store: Store, *args: str) -> list[str]:
    return [row["bundle"] for row in json.loads(exportctl("ls", "--json", *args, store=store.root).stdout)]


def test_ls_filters_combine(populated: dict) -> None:
    store, b, ck, keyid = populated["store"], populated["bundles"], populated["checkpoint"], populated["keyid"]
    assert _ls(store) == [b["old_onnx"], b["new_onnx"], b["new_ts"], b["other_ck"]]
    assert _ls(store, "--checkpoint", ck) == [b["old_onnx"], b["new_onnx"], b["new_ts"]]
    assert _ls(store, "--checkpoint", ck[7:19], "--format", "onnx") == [b["old_onnx"], b["new_onnx"]]
    assert _ls(store, "--since", "2026-01-01", "--format", "onnx") == [b["new_onnx"], b["other_ck"]]
    assert _ls(store, "--checkpoint", ck, "--format", "onnx", "--since", "2026-01-01",
               "--signed-by", keyid[:16]) == [b["new_onnx"]]
    assert _ls(store, "--signed-by", "0" * 16 if not keyid.startswith("0" * 16) else "1" * 16) == []
    row = json.loads(exportctl("ls", "--json", "--signed-by", keyid[:8], store=store.root).stdout)[0]
    assert row["signed_by"] == [keyid[:16]] and row["cells"] == ["onnx/fp32"] and row["status"] == ["passed"]
    bad = exportctl("ls", "--since", "last tuesday", store=store.root, check=False)
    assert bad.returncode == errors.CONFIG_ERROR


def test_queries_read_no_blob(populated: dict) -> None:
    """Answering from the index means a store with its blobs gone still lists: nothing reads them."""
    store = populated["store"]
    index.query(store)  # bring the index up to date first, as any earlier command would have
    for blob in (store.root / "blobs" / "sha256").iterdir():
        blob.unlink()
    assert index.query(store, fmt="onnx", signed_by=populated["keyid"][:16])[0]["bundle"] == \
        populated["bundles"]["new_onnx"]


def test_index_follows_the_store_and_rebuilds_from_it(populated: dict, tmp_path: Path) -> None:
    store = populated["store"]
    expected = _ls(store)
    # A bundle added behind the index's back (no record() call) still shows: queries sync from index.json.
    con = sqlite3.connect(index.index_path(store))
    con.execute("DELETE FROM bundles")
    con.execute("DELETE FROM meta WHERE key = 'synced'")
    con.commit()
    con.close()
    assert _ls(store) == expected
    added = fake_bundle(store, "late", started="2026-05-01T00:00:00+00:00")
    assert _ls(store, "--since", "2026-04-01") == [added]
    index.index_path(store).write_bytes(b"not a database")
    assert exportctl("index", "--rebuild", "--json", store=store.root).returncode == 0
    counts = json.loads(exportctl("index", "--json", store=store.root).stdout)
    assert counts["bundles"] == 5
    assert sorted(_ls(store)) == sorted([*expected, added])


def test_index_query_time_is_flat(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    for i in range(200):
        fake_bundle(store, str(i), formats=("onnx",) if i % 2 else ("torchscript",),
                    started=f"2026-01-{1 + i % 28:02d}T00:00:00+00:00")
    index.query(store)  # first sync
    start = time.perf_counter()
    for _ in range(20):
        rows = index.query(store, fmt="onnx", since="2026-01-15")
    per_query = (time.perf_counter() - start) / 20
    assert rows and all(r["created"] >= "2026-01-15" for r in rows)
    assert per_query < 0.05, f"{per_query * 1000:.1f} ms per query over 200 bundles"


def test_parse_pins_reads_uv_locks() -> None:
    text = ("# header\nnumpy==2.1.0 \\\n    --hash=sha256:" + "1" * 64 + " \\\n    --hash=sha256:" + "2" * 64 +
            "\nonnx-slim==0.1.98 ; python_version >= '3.9' \\\n    --hash=sha256:" + "3" * 64 + "\n")
    pins = parse_pins(text)
    assert pins["numpy"] == {"version": "2.1.0", "hashes": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]}
    assert pins["onnx-slim"]["version"] == "0.1.98"


def test_audit_page_of_a_signed_bundle(populated: dict) -> None:
    store, digest = populated["store"], populated["bundles"]["new_onnx"]
    data = json.loads(exportctl("audit", digest, "--json", store=store.root).stdout)
    assert data["integrity"]["ok"] and data["provenance"]["builder"]["id"] == "urn:exportctl:builder:local"
    assert data["signatures"][0]["keyid"] == populated["keyid"][:16]
    assert data["cells"][0]["validation"]["output0.max_abs"] == 0.01
    page = exportctl("audit", digest, store=store.root).stdout
    assert populated["keyid"][:16] in page and "SLSA v1" in page and "onnx/fp32" in page


# -- Sigstore: everything up to the first network call --------------------------------------------------

class _GitHubOidc(BaseHTTPRequestHandler):
    """Stands in for GitHub Actions' ID-token endpoint, the only service the keyless flow asks first."""

    requests: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        _GitHubOidc.requests.append((self.path, self.headers.get("Authorization", "")))
        now = int(time.time())
        token = jwt.encode({"iss": "https://token.actions.githubusercontent.com", "aud": "sigstore",
                            "sub": "repo:example/models:ref:refs/heads/main", "iat": now, "nbf": now,
                            "exp": now + 300}, "test-only-secret-with-enough-bytes-for-hs256", algorithm="HS256")
        body = json.dumps({"value": token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_sigstore_without_a_ci_identity_refuses(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    before = snapshot(store.root)
    done = exportctl("sign", digest, "--sigstore", store=store.root, check=False,
                     env={"GITHUB_ACTIONS": "", "HOME": str(tmp_path)})
    assert done.returncode == errors.SIGNING_FAILED and "needs an ambient OIDC identity" in done.stderr
    assert snapshot(store.root) == before


def test_sigstore_gets_the_ci_token_then_stops_at_the_network(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _GitHubOidc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    before = snapshot(store.root)
    try:
        done = exportctl("sign", digest, "--sigstore", store=store.root, check=False, env={
            "GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-secret",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://127.0.0.1:{server.server_port}/token?api-version=2.0",
            "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")})
    finally:
        server.shutdown()
    assert _GitHubOidc.requests, "the CI token endpoint was never asked"
    path, auth = _GitHubOidc.requests[-1]
    assert "audience=sigstore" in path and auth == "bearer runner-secret"
    assert done.returncode == errors.SIGNING_FAILED, done.stderr
    assert "cannot reach Sigstore to fetch its trust root" in done.stderr
    assert "runner-secret" not in done.stderr and "eyJ" not in done.stderr  # neither secret nor token is shown
    assert snapshot(store.root) == before
    assert ref.load(store, digest) == []
