"""Signing, provenance and verification on small bundles: real keys, real model-signing, real files.

The bundles here are tiny but shaped like real ones (recipe, lockfile, artifact and validation layers, a
run record), so everything that reads a bundle sees what a build writes. Every attack ends in a precise
message and a non-zero exit, and leaves both the store and the layout it checked exactly as they were.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.bundle.read import read_bundle
from exportctl.canonical import canonical_json, digest_bytes
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from exportctl.trust.keys import keygen
from exportctl.trust.provenance import statement
from exportctl.trust.signers import KeySigner
from exportctl.trust.signing import sign_bundle
from tests.conftest import exportctl as _exportctl


def exportctl(*args, **kwargs) -> subprocess.CompletedProcess[str]:
    """The CLI with a wide terminal, so messages are asserted on unwrapped."""
    return _exportctl(*args, env={"COLUMNS": "1000", **kwargs.pop("env", {})}, **kwargs)

RECIPE = {"name": "tiny", "checkpoint": {"demo": {"arch": "yolo11n.yaml", "seed": 0}, "path": None, "sha256": None},
          "formats": {"onnx": {"options": {}, "precisions": ["fp32"]}}, "input": {"batch": 1, "imgsz": 320},
          "source_date_epoch": 315532800,
          "validation": {"conf": 0.25, "images": [], "iou": 0.45, "match_iou": 0.5, "tolerances": {}}}


def _layer(store: Store, data: bytes, media_type: str, title: str, role: str, cell: str | None = None) -> dict:
    annotations = {mt.ANNOTATION_TITLE: title, mt.ANNOTATION_FILEPATH: title, mt.ANNOTATION_ROLE: role}
    if cell:
        annotations[mt.ANNOTATION_CELL] = cell
    return store.put_bytes(data, media_type, annotations).to_json()


def fake_bundle(store: Store, salt: str = "", *, formats: tuple[str, ...] = ("onnx",), checkpoint: str | None = None,
                started: str = "2026-03-01T10:00:00+00:00", artifact: tuple[bytes, str] | None = None,
                title: str | None = None) -> str:
    """A bundle shaped like bundle.assemble's, with one run record; returns its digest."""
    checkpoint = checkpoint or digest_bytes(b"checkpoint" + salt.encode())
    layers = [_layer(store, canonical_json({**RECIPE, "formats": {f: RECIPE["formats"]["onnx"] for f in formats}}),
                     mt.RECIPE, "recipe.json", "recipe"),
              _layer(store, b"onnx==1.0 \\\n    --hash=sha256:" + b"0" * 64 + b"\n", mt.LOCKFILE,
                     "lockfiles/onnx-linux-x86_64.txt", "lockfile")]
    cells = []
    for fmt in formats:
        data, media_type = artifact or (f"weights {fmt} {salt}".encode(), mt.WEIGHT_RAW)
        layers.append(_layer(store, data, media_type, title or f"{fmt}-fp32/model.{fmt}", "artifact", f"{fmt}/fp32"))
        layers.append(_layer(store, canonical_json({"status": "passed", "violations": [], "tensor": {
            "output0": {"max_abs": 0.01, "cosine": 0.9999}}}), mt.VALIDATION, f"{fmt}-fp32/validation.json",
            "validation", f"{fmt}/fp32"))
        cells.append({"cell": f"{fmt}/fp32", "status": "passed", "artifact": layers[-2]["digest"],
                      "size": layers[-2]["size"], "key": digest_bytes(fmt.encode())})
    config = {"descriptor": {"name": "tiny", "family": "yolo"}, "exportctl": {
        "checkpoint": checkpoint, "cells": cells, "exporter_version": "1", "cell_code": digest_bytes(b"code"),
        "toolchains": {"onnx": {"lock": layers[1]["digest"]}}}}
    config_desc = store.put_bytes(canonical_json(config), mt.MODEL_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": mt.MODEL_ARTIFACT_TYPE,
                "config": config_desc.to_json(), "layers": layers}
    digest = store.add_manifest(manifest, {"dev.exportctl.recipe": "tiny"}).digest
    store.add_run_record(digest, {"bundle": digest, "exportctl_version": "0.1.0", "started": started,
                                  "finished": started.replace("10:00:00", "10:00:30"),
                                  "isolation": {"backend": "local", "sandbox": "bwrap"},
                                  "host": {"platform": "Linux-test", "machine": "x86_64"}, "cells": []})
    return digest


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("a", "b"):
        keygen(tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem")
        out[name], out[f"{name}.pub"] = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    return out


@pytest.fixture
def signed(tmp_path: Path, keys: dict[str, Path]) -> dict:
    """A store holding one bundle signed by key a, and that bundle exported (a copy: exports hard-link)."""
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    sign_bundle(store, digest, key=keys["a"], sigstore=False)
    ref.export(store, digest, tmp_path / "exported")
    shutil.copytree(tmp_path / "exported", tmp_path / "layout")
    for path in (tmp_path / "layout").rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return {"store": store, "digest": digest, "layout": tmp_path / "layout"}


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.relative_to(root).as_posix(): (p.lstat().st_mode, p.lstat().st_size,
                                             b"" if p.is_dir() or p.is_symlink() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def model_signing_cli(layout: Path, signature: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "model_signing", "verify", "key", str(layout), "--signature",
                           str(signature), "--public_key", str(public_key)], capture_output=True, text=True)


def verify_cli(target: Path | str, store: Path, *key: Path) -> subprocess.CompletedProcess[str]:
    extra = ("--key", key[0]) if key else ()
    return exportctl("verify", target, *extra, store=store, check=False)


# -- keys ------------------------------------------------------------------------------------------------

def test_keygen_writes_a_p256_pair_with_a_private_mode_0600(tmp_path: Path) -> None:
    done = exportctl("keygen", tmp_path / "release.pem", "--json")
    data = json.loads(done.stdout)
    assert (os.stat(tmp_path / "release.pem").st_mode & 0o777) == 0o600
    public = (tmp_path / "release.pub.pem").read_bytes()
    assert data["keyid"] == digest_bytes(public)[7:] and b"PUBLIC KEY" in public
    assert b"PRIVATE KEY" in (tmp_path / "release.pem").read_bytes()
    again = exportctl("keygen", tmp_path / "release.pem", check=False)
    assert again.returncode == errors.CONFIG_ERROR and "refusing to overwrite" in again.stderr


def test_unusable_keys_fail_without_quoting_them(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    secret = "MHcCAQEEIBxDoNotLeakThisKeyMaterialAtAllPleaseXXXXXXXXXXXXoAoGCCqGSM49"
    (tmp_path / "bad.pem").write_text(f"-----BEGIN EC PRIVATE KEY-----\n{secret}\n-----END EC PRIVATE KEY-----\n")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "rsa.pem").write_bytes(rsa_pem)
    before = snapshot(store.root)
    for key, expected in (("bad.pem", "is not a PEM private key"), ("rsa.pem", "not an elliptic-curve"),
                          ("absent.pem", "cannot read signing key")):
        done = exportctl("sign", digest, "--key", tmp_path / key, store=store.root, check=False)
        assert done.returncode == errors.SIGNING_FAILED and expected in done.stderr, done.stderr
        assert secret not in done.stderr + done.stdout and "BEGIN" not in done.stderr
        assert rsa_pem.decode().splitlines()[1] not in done.stderr
    assert snapshot(store.root) == before


def test_private_key_never_enters_the_store_or_the_export(signed: dict, keys: dict[str, Path]) -> None:
    pem = keys["a"].read_bytes()
    body = b"".join(pem.splitlines()[1:-1])
    from cryptography.hazmat.primitives import serialization

    scalar = serialization.load_pem_private_key(pem, None).private_numbers().private_value.to_bytes(32, "big")
    for root in (signed["store"].root, signed["layout"]):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert body not in data and scalar not in data and base64.b64encode(scalar) not in data, path


# -- signing and the model-signing CLI -------------------------------------------------------------------

def test_signature_is_a_referrer_and_never_changes_the_bundle(signed: dict) -> None:
    store, digest = signed["store"], signed["digest"]
    assert [m.digest for m in store.manifests()] == [digest]
    assert store.resolve(digest[7:20]).digest == digest
    kinds = sorted(r.artifact_type for r in ref.load(store, digest))
    assert kinds == sorted([ref.DSSE_TYPE, ref.SIGNATURE_TYPE])
    index = json.loads((signed["layout"] / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest]
    assert digest_bytes((signed["layout"] / "blobs" / "sha256" / digest[7:]).read_bytes()) == digest


def test_model_signing_cli_accepts_the_exported_layout(signed: dict, keys: dict[str, Path]) -> None:
    layout = signed["layout"]
    (sig,) = (layout / "signatures").iterdir()
    done = model_signing_cli(layout, sig, keys["a.pub"])
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done.stderr
    assert model_signing_cli(layout, sig, keys["b.pub"]).returncode != 0
    if shutil.which("skopeo"):
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}"], capture_output=True, check=True).stdout
        assert digest_bytes(raw) == signed["digest"]


def test_second_signer_reuses_the_provenance_and_both_verify(signed: dict, keys: dict[str, Path],
                                                             tmp_path: Path) -> None:
    store, digest = signed["store"], signed["digest"]
    second = sign_bundle(store, digest, key=keys["b"], sigstore=False)
    assert not second["provenance_created"]
    ref.export(store, digest, tmp_path / "two")
    assert len(list((tmp_path / "two" / "signatures").iterdir())) == 2
    for key in ("a.pub", "b.pub"):
        assert verify_cli(tmp_path / "two", store.root, keys[key]).returncode == 0
    for path in (tmp_path / "two" / "signatures").iterdir():
        matches = [k for k in ("a.pub", "b.pub") if model_signing_cli(tmp_path / "two", path, keys[k]).returncode == 0]
        assert len(matches) == 1


def test_verify_reports_provenance_and_signatures(signed: dict, keys: dict[str, Path]) -> None:
    done = exportctl("verify", signed["digest"], "--key", keys["a.pub"], "--json", store=signed["store"].root)
    report = json.loads(done.stdout)
    assert report["provenance"]["status"] == "valid" and report["provenance"]["subjects"] == 2
    assert report["signatures"][0]["status"] == "valid (key given)"
    unkeyed = json.loads(exportctl("verify", signed["layout"], "--json", store=signed["store"].root).stdout)
    assert unkeyed["signatures"][0]["status"] == "not checked (pass --key)"


def test_provenance_names_the_bundle_its_artifacts_and_its_inputs(signed: dict) -> None:
    store, digest = signed["store"], signed["digest"]
    (prov,) = [r for r in ref.load(store, digest) if r.artifact_type == ref.DSSE_TYPE]
    envelope = json.loads(prov.layer(ref.DSSE_TYPE))
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://slsa.dev/provenance/v1"
    info = read_bundle(store, digest)
    assert {f"sha256:{s['digest']['sha256']}" for s in stmt["subject"]} == {digest, info.cells[0].artifact}
    build = stmt["predicate"]["buildDefinition"]
    assert build["externalParameters"]["recipe"]["name"] == "tiny"
    names = [d["name"] for d in build["resolvedDependencies"]]
    assert names[0] == "checkpoint" and "lockfiles/onnx-linux-x86_64.txt" in names and "exportctl" in names
    run = stmt["predicate"]["runDetails"]
    assert run["builder"]["id"] == "urn:exportctl:builder:local"
    assert run["metadata"]["startedOn"] == "2026-03-01T10:00:00+00:00"
    assert envelope["signatures"][0]["keyid"] == prov.annotations[ref.ANNOTATION_KEYID]


# -- attacks: each one a precise failure, nothing written ------------------------------------------------

def _flip(path: Path, at: int = 0) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest[7:]


def _attack(signed: dict, keys: dict[str, Path], code: int, needle: str, model_signing_fails: bool = True) -> None:
    layout, store = signed["layout"], signed["store"].root
    before_layout, before_store = snapshot(layout), snapshot(store)
    done = verify_cli(layout, store, keys["a.pub"])
    assert done.returncode == code, done.stderr
    assert needle in done.stderr, done.stderr
    sigs = list((layout / "signatures").glob("*.sig")) if (layout / "signatures").is_dir() else []
    if model_signing_fails and sigs:
        assert model_signing_cli(layout, sigs[0], keys["a.pub"]).returncode != 0
    assert snapshot(layout) == before_layout and snapshot(store) == before_store


def test_tampered_artifact_blob(signed: dict, keys: dict[str, Path]) -> None:
    artifact = read_bundle(signed["store"], signed["digest"]).cells[0].artifact
    _flip(_blob(signed["layout"], artifact), 3)
    _attack(signed, keys, errors.VERIFY_FAILED, f"({artifact}) is corrupt")


def test_tampered_manifest(signed: dict, keys: dict[str, Path]) -> None:
    _flip(_blob(signed["layout"], signed["digest"]), 10)
    _attack(signed, keys, errors.VERIFY_FAILED, f"manifest ({signed['digest']})")


def test_tampered_signature(signed: dict, keys: dict[str, Path]) -> None:
    (sig,) = (signed["layout"] / "signatures").iterdir()
    data = json.loads(sig.read_text())
    raw = bytearray(base64.b64decode(data["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 0x01
    data["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(data))
    _attack(signed, keys, errors.SIGNATURE_INVALID, "is not a valid signature by key")


def test_tampered_attestation(signed: dict, keys: dict[str, Path]) -> None:
    (prov,) = [r for r in ref.load(signed["store"], signed["digest"]) if r.artifact_type == ref.DSSE_TYPE]
    envelope_digest = prov.manifest["layers"][0]["digest"]
    _flip(_blob(signed["layout"], envelope_digest), 40)
    _attack(signed, keys, errors.VERIFY_FAILED, f"provenance blob ({envelope_digest}) is corrupt")


def test_attestation_rewritten_with_fixed_up_digests_fails_its_signature(signed: dict, keys: dict[str, Path]) -> None:
    """An attacker who edits the provenance and re-hashes everything still cannot re-sign it."""
    layout = signed["layout"]
    index = json.loads((layout / "index.json").read_text())
    old = index["manifests"][0]["annotations"][ref.ANNOTATION_PROVENANCE]
    manifest = json.loads(_blob(layout, old).read_text())
    env = json.loads(_blob(layout, manifest["layers"][0]["digest"]).read_text())
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["predicate"]["runDetails"]["builder"]["id"] = "urn:exportctl:builder:trusted-ci"
    env["payload"] = base64.b64encode(canonical_json(stmt)).decode()
    new_env = canonical_json(env)
    for d in (old, manifest["layers"][0]["digest"]):
        _blob(layout, d).unlink()
    _blob(layout, digest_bytes(new_env)).write_bytes(new_env)
    manifest["layers"][0].update(digest=digest_bytes(new_env), size=len(new_env))
    _blob(layout, digest_bytes(canonical_json(manifest))).write_bytes(canonical_json(manifest))
    index["manifests"][0]["annotations"][ref.ANNOTATION_PROVENANCE] = digest_bytes(canonical_json(manifest))
    (layout / "index.json").write_text(json.dumps(index))
    _attack(signed, keys, errors.PROVENANCE_INVALID, "does not verify")


def test_signature_by_another_key(signed: dict, keys: dict[str, Path], tmp_path: Path) -> None:
    store = Store.open(tmp_path / "other")
    digest = fake_bundle(store)
    sign_bundle(store, digest, key=keys["b"], sigstore=False)
    ref.export(store, digest, tmp_path / "by-b")
    done = verify_cli(tmp_path / "by-b", store.root, keys["a.pub"])
    assert done.returncode == errors.SIGNATURE_INVALID and "there is no signature by key" in done.stderr
    # Renamed to look like a's signature: model-signing's key hint still names b.
    (sig,) = (tmp_path / "by-b" / "signatures").iterdir()
    a_id = json.loads(exportctl("verify", signed["layout"], "--key", keys["a.pub"], "--json",
                                store=signed["store"].root).stdout)["signatures"][0]["keyid"]
    sig.rename(sig.with_name(f"{a_id}.sig"))
    done = verify_cli(tmp_path / "by-b", store.root, keys["a.pub"])
    assert done.returncode == errors.SIGNATURE_INVALID and "was made by key" in done.stderr


def test_provenance_whose_subject_does_not_match(tmp_path: Path, keys: dict[str, Path]) -> None:
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    other = fake_bundle(store, salt="other")
    info, other_info = read_bundle(store, digest), read_bundle(store, other)
    stmt = statement(store, info, None, "0.1.0")
    stmt["subject"][1] = {"name": "onnx-fp32/model.onnx",
                          "digest": {"sha256": other_info.cells[0].artifact[7:]}}  # a different artifact
    signer = KeySigner(keys["a"])
    entry = store.resolve(digest)
    prov = ref.make(entry, ref.DSSE_TYPE, [(signer.sign_envelope(stmt), ref.DSSE_TYPE)],
                    {ref.ANNOTATION_KEYID: signer.keyid or ""})
    ref.attach(store, prov)
    sign_bundle(store, digest, key=keys["a"], sigstore=False)  # signs over the lying provenance
    before = snapshot(store.root)
    done = verify_cli(digest, store.root, keys["a.pub"])
    assert done.returncode == errors.PROVENANCE_INVALID, done.stderr
    assert "subject does not match" in done.stderr and other_info.cells[0].artifact in done.stderr
    assert snapshot(store.root) == before


@pytest.mark.parametrize("what", ["blob", "index.json", "oci-layout"])
def test_truncated_layout(signed: dict, keys: dict[str, Path], what: str) -> None:
    layout = signed["layout"]
    if what == "blob":
        _blob(layout, read_bundle(signed["store"], signed["digest"]).layers[0].digest).unlink()
    else:
        (layout / what).unlink()
    _attack(signed, keys, errors.VERIFY_FAILED, "missing" if what != "oci-layout" else "oci-layout")


@pytest.mark.parametrize("kind", ["file", "blob", "symlink", "git"])
def test_extra_file_or_symlink(signed: dict, keys: dict[str, Path], kind: str) -> None:
    layout = signed["layout"]
    if kind == "file":
        (layout / "README.txt").write_text("trust me")
        needle = "unexpected file 'README.txt'"
    elif kind == "blob":
        (layout / "blobs" / "sha256" / digest_bytes(b"x")[7:]).write_bytes(b"x")
        needle = "unexpected blob"
    elif kind == "git":
        (layout / ".git").mkdir()
        needle = "unexpected directory '.git'"
    else:
        (layout / "signatures" / "evil.pub").symlink_to("/etc/passwd")
        needle = "'signatures/evil.pub' is a symlink"
    _attack(signed, keys, errors.VERIFY_FAILED, needle, model_signing_fails=kind not in ("git", "symlink"))


def test_path_traversal_in_index_annotation(signed: dict, keys: dict[str, Path]) -> None:
    index = json.loads((signed["layout"] / "index.json").read_text())
    index["manifests"][0]["annotations"][ref.ANNOTATION_PROVENANCE] = "../../../../etc/passwd"
    (signed["layout"] / "index.json").write_text(json.dumps(index))
    _attack(signed, keys, errors.VERIFY_FAILED, "is not a sha256 digest")


def test_path_traversal_in_a_layer_title_and_a_tar_layer(tmp_path: Path, keys: dict[str, Path]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    cases = [(dict(artifact=(buf.getvalue(), mt.WEIGHT_TAR)), "'../../escape.txt' contains '..'"),
             (dict(title="../../../home/user/.bashrc"), "is not a relative path inside the bundle")]
    for i, (kwargs, needle) in enumerate(cases):
        store = Store.open(tmp_path / f"s{i}")
        digest = fake_bundle(store, **kwargs)  # type: ignore[arg-type]
        before = snapshot(store.root)
        done = verify_cli(digest, store.root)
        assert done.returncode == errors.VERIFY_FAILED and needle in done.stderr, done.stderr
        assert snapshot(store.root) == before


def test_tampered_store_referrer_is_named(signed: dict, keys: dict[str, Path]) -> None:
    store = signed["store"]
    (sig,) = [r for r in ref.load(store, signed["digest"]) if r.artifact_type == ref.SIGNATURE_TYPE]
    path = store.blob_path(sig.manifest["layers"][0]["digest"])
    _flip(path, 5)
    before = snapshot(store.root)
    done = verify_cli(signed["digest"], store.root, keys["a.pub"])
    assert done.returncode == errors.VERIFY_FAILED and sig.manifest["layers"][0]["digest"] in done.stderr
    assert snapshot(store.root) == before


def test_unsigned_bundle_with_a_key_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    assert verify_cli(digest, store.root).returncode == 0
    done = verify_cli(digest, store.root, keys["a.pub"])
    assert done.returncode == errors.SIGNATURE_INVALID and "the bundle is not signed" in done.stderr


def sigstore_trusted_root() -> Path:
    """Sigstore's public-good trusted root as sigstore-python ships it: a real trust root, read offline."""
    import sigstore

    return Path(sigstore.__file__).parent / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"


def test_sigstore_shaped_provenance_is_subject_checked_offline(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Keyless provenance sits inside a Sigstore bundle; its subject is still checked without the network."""
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    info = read_bundle(store, digest)
    for subject_ok in (True, False):
        stmt = statement(store, info, None, "0.1.0")
        if not subject_ok:
            stmt["subject"] = stmt["subject"][:1]
        bundle = {"mediaType": ref.SIGNATURE_TYPE, "verificationMaterial": {"certificate": {"rawBytes": "AA=="}},
                  "dsseEnvelope": {"payload": base64.b64encode(canonical_json(stmt)).decode(),
                                   "payloadType": "application/vnd.in-toto+json", "signatures": [{"sig": "AAAA"}]}}
        scratch = Store.open(tmp_path / f"s{subject_ok}")
        shutil.rmtree(scratch.root)
        shutil.copytree(store.root, scratch.root)
        entry = scratch.resolve(digest)
        ref.attach(scratch, ref.make(entry, ref.DSSE_TYPE, [(canonical_json(bundle), ref.SIGNATURE_TYPE)],
                                     {ref.ANNOTATION_SIGNER: "sigstore"}))
        done = exportctl("verify", digest, "--json", store=scratch.root, check=False)
        if subject_ok:  # asked for no trust: said plainly, exit 0
            assert done.returncode == 0, done.stderr
            status = json.loads(done.stdout)["provenance"]["status"]
            assert status.startswith("unverified:") and "keyless (Sigstore) signature not checked" in status
            # Asked for trust, the bogus signature exits 11: with a key, without a trust root, against one.
            keyless = ("--certificate-identity", "ci@example.com", "--certificate-oidc-issuer",
                       "https://token.actions.githubusercontent.com")
            for extra, needle in [(("--key", keys["a.pub"]), "--key cannot verify it"),
                                  (keyless, "cannot be verified without a trust root"),
                                  ((*keyless, "--trust-root", sigstore_trusted_root()), "does not verify against")]:
                done = exportctl("verify", digest, *extra, "--json", store=scratch.root, check=False)
                assert done.returncode == errors.PROVENANCE_INVALID and needle in done.stderr, done.stderr
                assert json.loads(done.stdout)["exit_code"] == errors.PROVENANCE_INVALID
        else:
            assert done.returncode == errors.PROVENANCE_INVALID and "missing onnx-fp32/model.onnx" in done.stderr
