"""Signing bundles in the OpenSSF model-signing format, with a key pair or keylessly through Sigstore.

The signed "model" is the bundle's exported layout (store/referrers.py): `model_signing verify key DIR
--signature DIR/signatures/<keyid>.sig --public_key PUB.pem` checks an export with model-signing's own CLI.
The first signature of a bundle also makes its provenance (provenance.py), signed by the same signer and
covered by the signature; later signers cover that same provenance, so every signature of a bundle fits
one exported layout. Signature and provenance are made in memory and stored only once both succeeded.
Keys live in trust/keys.py, the signers (key pair, Sigstore) in trust/signers.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exportctl import __version__, errors
from exportctl.bundle.read import BundleInfo, read_bundle
from exportctl.canonical import hash_ledger
from exportctl.store import referrers as ref
from exportctl.store.atomic import scratch_dir
from exportctl.store.descriptor import Descriptor
from exportctl.store.layout import Store
from exportctl.trust.provenance import PREDICATE_TYPE, statement
from exportctl.trust.signers import KeySigner, Signer, SigstoreSigner


def _sign(store: Store, info: BundleInfo, entry: Descriptor, signer: Signer,
          existing: ref.Attachments) -> tuple[ref.Referrer, bytes]:
    """(provenance, model-signing signature): made in memory, over the layout the export will have (with the
    bundle's ML-BOM, unless earlier signatures were made without it)."""
    provenance = existing.provenance
    if provenance is None:
        runs = store.run_records(entry.digest)
        stmt = statement(store, info, {**runs[0], "run": 1} if runs else None, __version__)
        annotations = {ref.ANNOTATION_PREDICATE: PREDICATE_TYPE, ref.ANNOTATION_SIGNER: signer.kind}
        if signer.keyid:  # a Sigstore certificate (and so its key) exists only once it signed
            annotations[ref.ANNOTATION_KEYID] = signer.keyid
        provenance = ref.make(entry, ref.DSSE_TYPE, [(signer.sign_envelope(stmt), signer.envelope_type)], annotations)
    # beside the blobs: the layout is hard links, whose blobs write_layout re-hashed into the ledger
    with scratch_dir(store.root / "exportctl") as tmp, hash_ledger() as ledger:
        layout = tmp / info.name  # model-signing names the model after its directory
        ref.write_layout(store, entry.digest, layout, ref.Attachments(provenance, existing.bom, []))
        signer.sign_layout(layout, tmp / "model.sig", ledger)
        return provenance, (tmp / "model.sig").read_bytes()


def sign_bundle(store: Store, digest: str, *, key: Path | None, sigstore: bool) -> dict[str, Any]:
    """Sign bundle `digest` (and give it provenance if it has none); returns what was attached."""
    if (key is None) == (not sigstore):
        raise errors.ConfigError("give exactly one of --key KEY.pem or --sigstore")
    entry = store.resolve(digest)
    info = read_bundle(store, entry.digest)
    try:
        signer: Signer = KeySigner(key) if key is not None else SigstoreSigner.connect()
    except errors.SigningFailed as e:  # after `build --sign-key`, say that the build itself is kept
        kept = f"bundle {entry.digest} is stored, unsigned: sign it with `exportctl sign` once fixed"
        raise errors.SigningFailed(e.message, hint="; ".join(filter(None, [e.hint, kept]))) from None
    existing = ref.pick(ref.load(store, entry.digest))
    try:
        provenance, signature = _sign(store, info, entry, signer, existing)
    except errors.ExportctlError:
        raise
    except Exception as e:  # the signing libraries' own failures (Sigstore services, I/O), never key material
        raise errors.SigningFailed(f"signing {entry.digest} failed: {type(e).__name__}: {e}") from None
    kid, public_pem, identity = signer.identity(signature)
    annotations = {ref.ANNOTATION_KEYID: kid, ref.ANNOTATION_SIGNER: signer.kind,
                   ref.ANNOTATION_COVERS: provenance.digest}
    if existing.bom is not None:
        annotations[ref.ANNOTATION_COVERS_BOM] = existing.bom.digest
    if identity:
        annotations[ref.ANNOTATION_IDENTITY] = identity
    sig_ref = ref.make(entry, ref.SIGNATURE_TYPE, [(signature, ref.SIGNATURE_TYPE), (public_pem, ref.PUBLIC_KEY_TYPE)],
                       annotations)
    if existing.provenance is None:  # stored only now that both exist: a failure above leaves the store as it was
        ref.attach(store, provenance)
    ref.attach(store, sig_ref)
    return {"bundle": entry.digest, "keyid": kid, "signer": signer.kind, "identity": identity,
            "signature": sig_ref.digest, "provenance": provenance.digest,
            "provenance_created": existing.provenance is None, "bom": existing.bom.digest if existing.bom else None}
