"""The ML-BOM: a CycloneDX 1.6 document the library's own strict validator accepts, naming every artifact by its
digest, attached as a referrer, exported, verified and covered by signatures made after it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from exportctl import errors
from exportctl.bundle import bom
from exportctl.bundle.read import read_bundle
from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from tests.unit.evidence_bundle import LOCKS, SOURCE_DATE_EPOCH, VALIDATIONS, evidence_bundle
from tests.unit.test_signing import exportctl


@pytest.fixture
def evidence(tmp_path: Path) -> tuple[Store, str]:
    store = Store.open(tmp_path / "store")
    return store, evidence_bundle(store)


def _bom(store: Store, digest: str, tmp_path: Path) -> dict:
    exportctl("bom", digest[7:19], "-o", tmp_path / "bom.json", store=store.root)
    return json.loads((tmp_path / "bom.json").read_text())


def test_the_bom_validates_against_cyclonedx_1_6_and_names_every_artifact(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    doc = _bom(store, digest, tmp_path)
    errors_found = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert errors_found is None, errors_found
    assert doc["specVersion"] == "1.6" and doc["serialNumber"] == f"urn:uuid:{uuid.uuid5(bom._NAMESPACE, digest)}"
    assert doc["metadata"]["timestamp"].startswith("1980-01-01T00:00:00")  # source_date_epoch, not the clock
    assert doc["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": digest[7:]}]
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    info = read_bundle(store, digest)
    models = {f"sha256:{h['content']}" for c in doc["components"] if c["type"] == "machine-learning-model"
              for h in c["hashes"]}
    assert {c.artifact for c in info.cells} | {info.checkpoint} == models
    for cell in info.cells:
        card = by_ref[f"artifact:{cell.name}"]["modelCard"]
        fmt, precision = cell.name.split("/")
        metrics = card.get("quantitativeAnalysis", {}).get("performanceMetrics", [])
        gates = [g for g in VALIDATIONS[cell.name]["gates"] if g["ran"]]
        assert [m["type"] for m in metrics[:len(gates)]] == [g["gate"] for g in gates]
        assert all(m["slice"].startswith(f"format={fmt},precision={precision}") for m in metrics)
    litert = by_ref["artifact:litert/int8"]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "map50_95 drop", "value": "0.081", "slice": litert[-1]["slice"]} in litert
    assert "dataset=sha256:" in litert[-1]["slice"]
    reference = by_ref["checkpoint"]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert {m["type"]: m["value"] for m in reference} == {"map50": "0.93", "map50_95": "0.712"}
    libraries = {c["purl"]: c for c in doc["components"] if c["type"] == "library"}
    assert set(libraries) == {f"pkg:pypi/{n}@{v}".replace("+", "%2B") for pins in LOCKS.values() for n, v in pins}
    numpy = libraries["pkg:pypi/numpy@2.2.6"]
    assert len(numpy["hashes"]) == 1 and {p["value"] for p in numpy["properties"]} == set(LOCKS)
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    assert deps["artifact:onnx/fp32"] == {"checkpoint", "pkg:pypi/numpy@2.2.6", "pkg:pypi/onnxruntime@1.22.1"}


def test_the_bom_is_a_pure_function_of_the_bundle(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    first = bom.attach(store, digest)
    other = Store.open(tmp_path / "other")
    assert evidence_bundle(other) == digest
    again = bom.attach(other, digest)
    assert again.raw == first.raw and again.blobs == first.blobs  # same bytes, so the same referrer digest
    bom.attach(store, digest)
    assert [r.digest for r in ref.load(store, digest)] == [first.digest]  # listed once
    assert SOURCE_DATE_EPOCH == 315532800 and first.annotations[ref.ANNOTATION_CREATED] == "1980-01-01T00:00:00Z"


def test_export_carries_the_bom_and_verify_checks_it(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    attached = bom.attach(store, digest)
    exported = json.loads(exportctl("export", digest, tmp_path / "out", "--json", store=store.root).stdout)
    assert exported["bom"] == attached.digest
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["annotations"][ref.ANNOTATION_BOM] == attached.digest
    report = json.loads(exportctl("verify", tmp_path / "out", "--json").stdout)
    assert report["bom"]["referrer"] == attached.digest and report["bom"]["components"] > 4
    # A changed byte in the BOM is refused ...
    layer = next(la["digest"] for la in attached.manifest["layers"])
    blob = tmp_path / "out" / "blobs" / "sha256" / layer[7:]
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b'"hashes"', b'"hashez"'))
    done = exportctl("verify", tmp_path / "out", check=False)
    assert done.returncode == errors.VERIFY_FAILED and "the ML-BOM blob" in done.stderr, done.stderr
    # ... and so is a well-formed BOM that leaves an artifact out.
    forged = Store.open(tmp_path / "forged")
    evidence_bundle(forged)
    doc = bom.document(forged, read_bundle(forged, digest))
    doc["components"] = [c for c in doc["components"] if c["bom-ref"] != "artifact:onnx/fp32"]
    ref.attach(forged, ref.make(forged.resolve(digest), ref.BOM_TYPE, [(bom.encode(doc), ref.BOM_TYPE)], {}))
    exportctl("export", digest, tmp_path / "forged-out", store=forged.root)
    done = exportctl("verify", tmp_path / "forged-out", check=False)
    assert done.returncode == errors.VERIFY_FAILED, done.stderr
    assert f"the ML-BOM of {digest} lacks the artifacts of onnx/fp32" in " ".join(done.stderr.split())


def test_signatures_cover_the_bom_they_were_made_with(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    exportctl("keygen", tmp_path / "k.pem")
    # Signed before the BOM existed (a bundle built before BOMs): attaching one later must not break the signature.
    exportctl("sign", digest, "--key", tmp_path / "k.pem", store=store.root)
    exportctl("bom", digest, store=store.root)
    assert bom.attached(store, digest) is not None
    exportctl("export", digest, tmp_path / "old", store=store.root)
    assert ref.ANNOTATION_BOM not in json.loads((tmp_path / "old" / "index.json").read_text())["manifests"][0][
        "annotations"]
    exportctl("verify", tmp_path / "old", "--key", tmp_path / "k.pub.pem")
    # A bundle whose BOM came first: the signature covers it, and the export carries it.
    fresh = Store.open(tmp_path / "fresh")
    evidence_bundle(fresh)
    made = bom.attach(fresh, digest)
    exportctl("sign", digest, "--key", tmp_path / "k.pem", store=fresh.root)
    (sig,) = [r for r in ref.load(fresh, digest) if r.artifact_type == ref.SIGNATURE_TYPE]
    assert sig.annotations[ref.ANNOTATION_COVERS_BOM] == made.digest
    exportctl("export", digest, tmp_path / "new", store=fresh.root)
    verified = json.loads(exportctl("verify", tmp_path / "new", "--key", tmp_path / "k.pub.pem", "--json").stdout)
    assert verified["bom"]["referrer"] == made.digest
    assert verified["signatures"] == [{"keyid": sig.keyid[:16], "status": "valid (key given)"}]


def test_show_and_audit_give_the_bom_one_line(evidence) -> None:
    store, digest = evidence
    wide = {"COLUMNS": "200"}
    assert "ML-BOM      none (`exportctl bom DIGEST` makes one)" in exportctl("show", digest, store=store.root,
                                                                            env=wide).stdout
    made = bom.attach(store, digest)
    shown = exportctl("show", digest, store=store.root, env=wide).stdout
    assert f"ML-BOM      CycloneDX 1.6 referrer {made.digest}" in shown
    audited = exportctl("audit", digest, store=store.root, env=wide).stdout
    assert f"ML-BOM      CycloneDX 1.6 referrer {made.digest}, " in audited and "every artifact named" in audited
    assert json.loads(exportctl("audit", digest, "--json", store=store.root).stdout)["bom"] == made.digest
