"""Issue 4's acceptance on real quickstart builds: signing, model-signing interop, rebuild, diff."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.errors import ExportctlError
from tests.conftest import QUICKSTART, ROOT
from tests.unit.test_signing import exportctl, model_signing_cli, snapshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def signed(quickstart_builds: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("signed")
    store = base / "store"
    shutil.copytree(quickstart_builds["store"], store)
    exportctl("keygen", base / "release.pem")
    digest = quickstart_builds["a"]["bundle"]
    exportctl("sign", digest, "--key", base / "release.pem", store=store)
    exportctl("export", digest, base / "exported", store=store)
    layout = base / "layout"  # a copy: the export hard-links the store's blobs, and tests change bytes here
    shutil.copytree(base / "exported", layout)
    for path in layout.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    (signature,) = (layout / "signatures").iterdir()
    return {"store": store, "digest": digest, "layout": layout, "signature": signature,
            "public": base / "release.pub.pem", "private": base / "release.pem"}


def test_model_signing_cli_and_skopeo_accept_the_signed_export(signed: dict) -> None:
    done = model_signing_cli(signed["layout"], signed["signature"], signed["public"])
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done.stderr
    report = json.loads(exportctl("verify", signed["layout"], "--key", signed["public"], "--json",
                                  store=signed["store"]).stdout)
    assert report["bundle"] == signed["digest"] and report["provenance"]["status"] == "valid"
    assert report["provenance"]["subjects"] == 3  # the bundle and its two artifacts
    if shutil.which("skopeo"):
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{signed['layout']}"], capture_output=True,
                             check=True).stdout
        assert raw == (signed["store"] / "blobs" / "sha256" / signed["digest"][7:]).read_bytes()


def test_flipping_any_byte_fails_both_verifiers(signed: dict) -> None:
    """Every file of the export: first, middle and last byte; the small JSON files at 16 spread positions."""
    import model_signing

    from exportctl.trust.layout_hashing import layout_hashing
    from exportctl.trust.verify import verify_layout

    layout, public, signature = signed["layout"], signed["public"], signed["signature"]

    def model_signing_accepts() -> bool:
        try:
            model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public) \
                .set_hashing_config(layout_hashing()).verify(layout, signature)
            return True
        except Exception:
            return False

    def exportctl_accepts() -> bool:
        try:
            verify_layout(layout, public)
            return True
        except ExportctlError:
            return False

    assert model_signing_accepts() and exportctl_accepts()
    flips = 0
    for path in sorted(p for p in layout.rglob("*") if p.is_file()):
        data = path.read_bytes()
        spots = {0, len(data) // 2, len(data) - 1}
        if len(data) < 16_384:
            spots |= {i * (len(data) - 1) // 15 for i in range(16)}
        for at in sorted(spots):
            changed = bytearray(data)
            changed[at] ^= 0xFF
            path.write_bytes(bytes(changed))
            try:
                assert not exportctl_accepts(), f"exportctl verify accepted {path.name} flipped at {at}"
                assert not model_signing_accepts(), f"model-signing accepted {path.name} flipped at {at}"
            finally:
                path.write_bytes(data)
            flips += 1
    assert flips > 60 and model_signing_accepts() and exportctl_accepts()
    # And through both command lines, once each, on the largest artifact.
    largest = max((p for p in (layout / "blobs" / "sha256").iterdir()), key=lambda p: p.stat().st_size)
    data = largest.read_bytes()
    largest.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    try:
        assert model_signing_cli(layout, signature, public).returncode != 0
        done = exportctl("verify", layout, "--key", public, store=signed["store"], check=False)
        assert done.returncode == errors.VERIFY_FAILED and f"sha256:{largest.name}" in done.stderr
    finally:
        largest.write_bytes(data)


def test_build_with_sign_key_signs_and_audit_shows_it(quickstart_builds: dict, signed: dict, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(quickstart_builds["store"], store)
    done = exportctl("build", QUICKSTART, "--sign-key", signed["private"], "--json", store=store)
    digest = json.loads(done.stdout)["bundle"]
    bundles = json.loads(exportctl("ls", "--json", store=store).stdout)
    assert digest in [b["bundle"] for b in bundles]  # listed once, as a bundle; its signature is no bundle
    assert exportctl("verify", digest, "--key", signed["public"], store=store).returncode == 0
    page = exportctl("audit", digest, "--json", store=store).stdout
    data = json.loads(page)
    assert data["integrity"]["ok"] and data["signatures"] and data["provenance"]["builder"]["id"].endswith("local")
    assert {c["cell"] for c in data["cells"]} == {"onnx/fp32", "torchscript/fp32"}
    listed = json.loads(exportctl("ls", "--json", "--format", "onnx", "--since", "2026-01-01", "--checkpoint",
                                  data["checkpoint"]["digest"], "--signed-by", data["signatures"][0]["keyid"],
                                  store=store).stdout)
    assert [r["bundle"] for r in listed] == [digest]


def test_rebuild_check_reports_every_cpu_cell_identical(quickstart_builds: dict) -> None:
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    before = snapshot(store)
    done = exportctl("rebuild", digest, "--check", "--jobs", "2", "--json", store=store)  # cells at once, as build
    data = json.loads(done.stdout)
    assert data["identical"] and data["same_digest"], data
    assert {c["cell"] for c in data["cells"] if c["identical"]} == {"onnx/fp32", "torchscript/fp32"}
    assert snapshot(store) == before  # the rebuild ran in a scratch store


def test_diff_names_the_one_pin_and_the_artifacts_that_moved(quickstart_builds: dict, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(quickstart_builds["store"], store)
    variant = (ROOT / "tests" / "data" / "onnx-lock-variant.txt").read_text()
    pin = re.search(r"^([a-z0-9_.-]+)==(\S+) \\\n(?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+", variant, re.M)
    assert pin is not None
    locks = tmp_path / "lockfiles"
    shutil.copytree(ROOT / "lockfiles", locks)
    lock = locks / "onnx-linux-x86_64.txt"
    original = lock.read_text()
    old = re.search(rf"^{re.escape(pin.group(1))}==(\S+) \\\n(?:    --hash=sha256:[0-9a-f]{{64}}(?: \\)?\n)+",
                    original, re.M)
    assert old is not None
    lock.write_text(original.replace(old.group(0), pin.group(0)))
    started = time.monotonic()
    done = exportctl("build", QUICKSTART, "--json", store=store, env={"EXPORTCTL_LOCKFILES_DIR": str(locks)})
    print(f"variant build: {time.monotonic() - started:.1f}s")
    variant_digest = json.loads(done.stdout)["bundle"]
    data = json.loads(exportctl("diff", quickstart_builds["a"]["bundle"], variant_digest, "--json",
                                store=store).stdout)
    assert data["recipe"] == [] and not data["identical"]
    (changed_lock,) = data["locks"]
    assert changed_lock["lockfile"] == "lockfiles/onnx-linux-x86_64.txt"
    assert changed_lock["packages"] == [{"package": pin.group(1), "change": "version", "a": old.group(1),
                                         "b": pin.group(2)}]
    moved = {(layer["cell"], layer["role"]) for layer in data["layers"]}
    assert ("onnx/fp32", "artifact") in moved and not any(cell == "torchscript/fp32" for cell, _ in moved)
    text = exportctl("diff", quickstart_builds["a"]["bundle"], variant_digest, store=store).stdout
    assert f"{pin.group(1)} {old.group(1)} → {pin.group(2)}" in text and "onnx-fp32/model.onnx" in text
    # The variant cannot be rebuilt with this checkout's lockfiles, and we say which one differs.
    refused = exportctl("rebuild", variant_digest, "--check", store=store, check=False)
    assert refused.returncode == errors.CONFIG_ERROR and "onnx (bundle" in refused.stderr


def test_private_key_stays_out_of_build_output(signed: dict, quickstart_builds: dict, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(quickstart_builds["store"], store)
    done = subprocess.run([sys.executable, "-m", "exportctl", "build", str(QUICKSTART), "--sign-key",
                           str(signed["private"])], env={**os.environ, "EXPORTCTL_STORE": str(store)},
                          capture_output=True, text=True)
    body = "".join(signed["private"].read_text().splitlines()[1:-1])
    assert done.returncode == 0 and body[:40] not in done.stdout + done.stderr
    for path in store.rglob("*"):
        assert not path.is_file() or body[:40].encode() not in path.read_bytes()
