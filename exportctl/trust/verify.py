"""`exportctl verify DIGEST|DIR [--key PUB.pem]`: layout, blobs, provenance and signatures, in that order.

Each check has its own exit code so a pipeline can tell them apart: 7 when the layout or a blob is wrong
(a byte changed, a file missing, added, linked or named outside the bundle), 11 when the provenance does not
verify or does not name exactly this bundle, 10 when there is no valid signature by the given key. A bundle
in the store is checked by laying it out exactly as `exportctl export` would (hard links, in a scratch
directory that is removed), so a store bundle and an exported one go through the same code.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from exportctl import errors
from exportctl.bundle import bom
from exportctl.bundle.read import BundleInfo, read_bundle
from exportctl.canonical import HashLedger, canonical_json, digest_file, hash_ledger, is_digest
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as ref
from exportctl.store.atomic import scratch_dir
from exportctl.store.descriptor import blob_references
from exportctl.store.layout import Store
from exportctl.trust.key_signature import check_key_signature, import_model_signing_beside_hashing
from exportctl.trust.keys import keyid, load_public_key, public_key_from_pem
from exportctl.trust.layout_guard import check_layers, read_json
from exportctl.trust.provenance_check import COVERED, Trust, check_provenance

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from rich.console import Console

_LAYOUT_VERSION = "1.0.0"


def _fail(message: str) -> errors.VerifyFailed:
    return errors.VerifyFailed(message, hint="re-export the bundle from a store that verifies, or rebuild it")


def _scan(root: Path) -> tuple[set[str], dict[str, Path]]:
    """(blob digests, signature files) of a layout; anything else in it, or any link, is refused."""
    blobs: set[str] = set()
    signatures: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise _fail(f"'{rel}' is a symlink; an exported bundle holds only regular files")
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise _fail(f"'{rel}' is not a regular file or directory")
            parts = tuple(rel.split("/"))
            if stat.S_ISDIR(mode) and parts in {("blobs",), ("blobs", "sha256"), (ref.SIGNATURES_DIR,)}:
                continue
            if stat.S_ISREG(mode) and parts in {("oci-layout",), ("index.json",)}:
                continue
            if stat.S_ISREG(mode) and len(parts) == 3 and parts[:2] == ("blobs", "sha256") \
                    and is_digest(f"sha256:{parts[2]}"):
                blobs.add(f"sha256:{parts[2]}")
                continue
            if stat.S_ISREG(mode) and len(parts) == 2 and parts[0] == ref.SIGNATURES_DIR \
                    and ref.is_signature_name(parts[1]):
                signatures[parts[1][:ref.KEYID_CHARS]] = path
                continue
            raise _fail(f"unexpected {'directory' if stat.S_ISDIR(mode) else 'file'} '{rel}' in {root}: "
                        "not part of an exported bundle")
    return blobs, signatures


def _unnamed(entries: list[dict[str, Any]]) -> set[bytes]:
    """The index entries with their names left out: one bundle listed under several names gives one."""
    return {canonical_json({**e, "annotations": {k: v for k, v in (e.get("annotations") or {}).items()
                                                 if k != mt.ANNOTATION_REF_NAME}}) for e in entries}


def _safe_path(value: Any, what: str) -> None:
    text = str(value)
    path = PurePosixPath(text)
    if not text or "\\" in text or "\0" in text or path.is_absolute() or ".." in path.parts:
        raise _fail(f"{what} '{text}' is not a relative path inside the bundle (absolute, '..' or empty); "
                    "a tool unpacking it could write outside its directory")


def _check_names(info: BundleInfo, entry: dict[str, Any], store: Store) -> None:
    for key in (mt.ANNOTATION_TITLE, mt.ANNOTATION_REF_NAME):
        if key in (entry.get("annotations") or {}):
            _safe_path(entry["annotations"][key], f"index.json annotation {key}")
    for i, layer in enumerate(info.layers):
        for key in (mt.ANNOTATION_TITLE, mt.ANNOTATION_FILEPATH):
            if key in layer.annotations:
                _safe_path(layer.annotations[key], f"layer {i} annotation {key}")
    check_layers(info, store)  # known media types; tar entries plain and inside, checked without extracting


def _keys(key_file: Path | None, recorded: dict[str, bytes],
          ) -> tuple[EllipticCurvePublicKey | None, dict[str, EllipticCurvePublicKey]]:
    keys = {prefix: public_key_from_pem(pem) for prefix, pem in recorded.items()}
    public_key = load_public_key(key_file) if key_file is not None else None
    if public_key is not None:
        keys[keyid(public_key)[:ref.KEYID_CHARS]] = public_key
    return public_key, keys


def _blobs_of(manifest: Any, digest: str, what: str) -> set[str]:
    """The manifest's own digest and those of every blob it references."""
    try:
        return {digest, *(desc.digest for _, desc in blob_references(manifest))}
    except errors.StoreError:
        raise _fail(f"{what} ({digest}) is not an OCI image manifest") from None


def _expected_blobs(root: Path, bundle: str, attached: dict[str, str], blobs: set[str], rehash: bool) -> set[str]:
    """Every blob the bundle and the referrers its index entry names (`attached`: what -> digest) reference;
    a missing or an extra one fails here."""
    if bundle not in blobs:
        raise _fail(f"the bundle manifest blobs/sha256/{bundle[7:]} is missing: the layout is truncated")
    path = root / "blobs" / "sha256" / bundle[7:]
    if rehash and (actual := digest_file(path)) != bundle:  # before parsing it: a changed byte may not be JSON
        raise _fail(f"manifest ({bundle}) is corrupt: its content hashes to {actual}")
    expected = _blobs_of(read_json(path, "the bundle manifest"), bundle, "manifest")
    for what, digest in attached.items():
        if digest not in blobs:
            raise _fail(f"the {what} referrer blobs/sha256/{digest[7:]} is missing: the layout is truncated")
        manifest = read_json(root / "blobs" / "sha256" / digest[7:], f"{what} referrer manifest")
        expected |= _blobs_of(manifest, digest, f"{what} referrer manifest")
    if missing := sorted(expected - blobs):
        raise _fail(f"blobs/sha256/{missing[0][7:]} is missing: the layout is truncated")
    if extra := sorted(blobs - expected):
        raise _fail(f"unexpected blob blobs/sha256/{extra[0][7:]}: neither the bundle nor its "
                    f"{' nor its '.join(attached) or 'provenance'} uses it")
    return expected


def _check_bom(root: Path, digest: str | None, info: BundleInfo, rehash: bool) -> dict[str, Any] | None:
    """The ML-BOM the layout carries must be a referrer of this bundle that describes exactly its artifacts."""
    if digest is None:
        return None
    manifest = read_json(root / "blobs" / "sha256" / digest[7:], "ML-BOM referrer manifest")
    if (manifest.get("subject") or {}).get("digest") != info.digest:
        raise _fail(f"the ML-BOM referrer {digest} does not name bundle {info.digest} as its subject")
    layers = [la for la in manifest.get("layers") or [] if la.get("mediaType") == ref.BOM_TYPE]
    if len(layers) != 1 or not is_digest(str(layers[0].get("digest"))):
        raise _fail(f"the ML-BOM referrer {digest} does not hold one {ref.BOM_TYPE} layer")
    path = root / "blobs" / "sha256" / str(layers[0]["digest"])[7:]
    if rehash and digest_file(path) != layers[0]["digest"]:
        raise _fail(f"the ML-BOM blob {layers[0]['digest']} is corrupt")
    try:
        return {"referrer": digest, **bom.check(path.read_bytes(), info)}
    except errors.VerifyFailed as e:
        raise _fail(e.message) from None


def verify_layout(root: Path, key_file: Path | None = None, recorded: dict[str, bytes] | None = None,
                  rehash: bool = True, trust: Trust | None = None) -> dict[str, Any]:
    """Verify an exported layout. `recorded`: keyid prefix -> public key PEM the store holds for a signer
    (that proves a signature intact, not who made it: pinning the signer takes --key)."""
    root, recorded = Path(root), recorded or {}
    trust = trust or Trust(key_file=key_file)
    if not root.is_dir():
        raise _fail(f"{root} is not a directory")
    try:
        with hash_ledger() as ledger:  # signatures are checked over digests the blob checks computed
            return _verify_layout(root, key_file, recorded, rehash, trust, ledger)
    except errors.ExportctlError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        # A safety net under the checks above: a document shaped like nothing exportctl writes is a failed
        # verification (7) naming what broke, never a traceback.
        raise _fail(f"{root} is not a bundle layout exportctl can read ({type(e).__name__}: {str(e)[:200]})"
                    ) from None


def _verify_layout(root: Path, key_file: Path | None, recorded: dict[str, bytes], rehash: bool,
                   trust: Trust, ledger: HashLedger) -> dict[str, Any]:
    blobs, sig_files = _scan(root)
    if sig_files and (key_file is not None or set(sig_files) & set(recorded)):
        import_model_signing_beside_hashing()
    if read_json(root / "oci-layout", "oci-layout").get("imageLayoutVersion") != _LAYOUT_VERSION:
        raise _fail(f"oci-layout does not declare imageLayoutVersion {_LAYOUT_VERSION}")
    index = read_json(root / "index.json", "index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries) \
            or not is_digest(str(entries[0].get("digest"))) or len(_unnamed(entries)) != 1:
        raise _fail("index.json must list exactly one manifest (the bundle) by its sha256 digest, once per "
                    "org.opencontainers.image.ref.name")
    entry, store = entries[0], Store.open(root, create=False)
    bundle = str(entry["digest"])
    provenance, bom_digest = (ref.attached_digest(entry, key) for key in (ref.ANNOTATION_PROVENANCE,
                                                                          ref.ANNOTATION_BOM))
    attached = {what: d for what, d in (("provenance", provenance), ("ML-BOM", bom_digest)) if d is not None}
    expected = _expected_blobs(root, bundle, attached, blobs, rehash)
    if rehash:
        store.verify(bundle)
    info = read_bundle(store, bundle)
    for named in entries:
        _check_names(info, named, store)
    public_key, keys = _keys(key_file, recorded)
    given = keyid(public_key)[:ref.KEYID_CHARS] if public_key is not None else None
    prov = check_provenance(root, info, provenance, keys, given, trust, rehash) if provenance else None
    bom_facts = _check_bom(root, bom_digest, info, rehash)
    if prov is None and trust.requested and (sig_files or trust.keyless is not None):
        raise errors.ProvenanceInvalid(f"bundle {bundle} is signed but its layout carries no provenance "
                                       "attestation", hint="export it again from the store that signed it")
    signatures = []
    if public_key is not None:
        kid = keyid(public_key)
        if kid[:ref.KEYID_CHARS] not in sig_files:
            signed_by = ", ".join(sig_files) if sig_files else "nobody: the bundle is not signed"
            raise errors.SignatureInvalid(f"there is no signature by key {kid[:16]} ({key_file}); "
                                          f"signed by {signed_by}",
                                          hint="pass the public key of a signer, or sign with `exportctl sign`")
        check_key_signature(root, sig_files[kid[:ref.KEYID_CHARS]], Path(str(key_file)), kid, ledger)
        if prov is not None and prov["status"] == COVERED:
            prov["status"] = (f"valid: made by key {prov['keyid']}, covered by the valid signature of the given "
                              f"key {kid[:16]}")
    with tempfile.TemporaryDirectory(prefix="exportctl-keys-") as tmp:
        for prefix, path in sig_files.items():
            if public_key is not None and prefix == keyid(public_key)[:ref.KEYID_CHARS]:
                signatures.append({"keyid": prefix, "status": "valid (key given)"})
            elif prefix in recorded:
                pem_file = Path(tmp) / f"{prefix}.pem"
                pem_file.write_bytes(recorded[prefix])
                check_key_signature(root, path, pem_file, keyid(keys[prefix]), ledger)
                signatures.append({"keyid": prefix, "status": "intact (key recorded in the store; --key pins it)"})
            else:
                signatures.append({"keyid": prefix, "status": "not checked (pass --key)"})
    return {"bundle": bundle, "blobs_checked": len(expected), "ok": True, "provenance": prov, "bom": bom_facts,
            "signatures": signatures}


def verify_stored(store: Store, ref_text: str, key_file: Path | None = None,
                  trust: Trust | None = None) -> dict[str, Any]:
    """Verify bundle `ref_text` in the store with its provenance and signatures, as it would be exported."""
    digest = store.resolve(ref_text).digest
    attached = ref.pick(ref.load(store, digest))  # re-hashes the referrers' blobs
    recorded = {s.keyid[:ref.KEYID_CHARS]: s.layer(ref.PUBLIC_KEY_TYPE) for s in attached.signatures
                if s.annotations.get(ref.ANNOTATION_SIGNER) == "key"}
    if recorded:
        import_model_signing_beside_hashing()
    # beside the blobs: the layout is hard links, so the blob digests write_layout computed serve the signatures
    with scratch_dir(store.root / "exportctl") as tmp, hash_ledger():
        ref.write_layout(store, digest, tmp / "layout", attached)  # re-hashes the bundle's blobs
        return verify_layout(tmp / "layout", key_file, recorded, rehash=False, trust=trust)


def render(console: Console, report: dict[str, Any]) -> None:
    console.print(f"[green]ok[/] {report['bundle']}: {report['blobs_checked']} blobs match their digests",
                  highlight=False)
    prov = report["provenance"]
    console.print(f"provenance: {prov['status']} ({prov['subjects']} subjects, by {prov['builder']})" if prov and
                  "subjects" in prov else f"provenance: {prov['status'] if prov else 'none (the bundle is unsigned)'}",
                  highlight=False)
    if report.get("bom"):
        console.print(f"ML-BOM: CycloneDX {report['bom']['serial']}, {report['bom']['components']} components, names "
                      "every artifact", highlight=False)
    for s in report["signatures"]:
        console.print(f"signature {s['keyid']}: {s['status']}", highlight=False)
