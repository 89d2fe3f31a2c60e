"""The provenance check of `verify`: it names exactly this bundle, and who vouches for it.

Without a trust request (no `--key`, no keyless identity) the provenance's subject is checked and its
signature reported as **unverified**, said plainly, exit 0 (a signature that provably fails, with the key
the store recorded beside it, still exits 11: the attestation was changed). Once the user asks for trust,
the provenance must be vouched for or the exit is 11:
  * key-signed (DSSE): its signature verifies with the given key; or it was made by an earlier signer and
    the given key's valid model-signing signature covers its exact bytes (the later signer vouches for it);
  * keyless (Sigstore bundle): certificate, log entry and signature verify against the user's `--trust-root`
    for the given identity and issuer; without a trust root it is unverifiable, never valid.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exportctl import errors
from exportctl.bundle.read import BundleInfo
from exportctl.canonical import digest_file
from exportctl.store import referrers as ref
from exportctl.trust.keyless import KeylessPolicy, verify_dsse_bundle
from exportctl.trust.keys import signature_hash
from exportctl.trust.provenance import PAYLOAD_TYPE, check_subjects, envelope_of, open_envelope, pae

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

UNVERIFIED = "unverified"
COVERED = "covered"  # valid once the given key's signature over the layout verifies (verify.py)


@dataclass(frozen=True)
class Trust:
    """What the user asked `verify` to establish: a signer's key, or a keyless identity with its trust root."""

    key_file: Path | None = None
    keyless: KeylessPolicy | None = None

    @property
    def requested(self) -> bool:
        return self.key_file is not None or self.keyless is not None


def _fail(message: str) -> errors.VerifyFailed:
    return errors.VerifyFailed(message, hint="re-export the bundle from a store that verifies, or rebuild it")


def check_provenance(root: Path, info: BundleInfo, digest: str, keys: dict[str, EllipticCurvePublicKey],
                     given: str | None, trust: Trust, rehash: bool) -> dict[str, Any]:
    """The provenance report; `keys`: keyid prefix -> public key (given and recorded), `given`: the given
    key's prefix. Raises ProvenanceInvalid (11) when it fails or when trust was asked and cannot be given."""
    def blob(d: str, what: str) -> bytes:
        path = root / "blobs" / "sha256" / d.split(":", 1)[1]
        if rehash and digest_file(path) != d:
            raise _fail(f"{what} ({d}) is corrupt: its content hashes to {digest_file(path)}")
        return path.read_bytes()

    try:
        manifest = json.loads(blob(digest, "provenance referrer manifest"))
        parts = [manifest.get("config", {}), *manifest.get("layers", [])]
        subject = (manifest.get("subject") or {}).get("digest")
        referrer = ref.Referrer(manifest, {la["digest"]: blob(la["digest"], "provenance blob") for la in parts})
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise _fail(f"the provenance referrer {digest} is not an OCI manifest ({type(e).__name__})") from None
    if subject != info.digest:
        raise errors.ProvenanceInvalid(f"the provenance attestation {digest} refers to {subject}, "
                                       f"not to bundle {info.digest}")
    envelope, offline = envelope_of(referrer)
    stmt, payload, signatures = open_envelope(envelope)
    check_subjects(stmt, info)
    signer = signatures[0]["keyid"][:ref.KEYID_CHARS]
    run = stmt["predicate"].get("runDetails") or {}
    report = {"referrer": digest, "keyid": signer, "subjects": len(stmt["subject"]),
              "builder": (run.get("builder") or {}).get("id"),
              "started": (run.get("metadata") or {}).get("startedOn"),
              "finished": (run.get("metadata") or {}).get("finishedOn")}
    if not offline:
        return {**report, **_keyless(referrer, payload, trust)}
    if trust.keyless is not None and given is None:
        raise errors.ProvenanceInvalid(f"the provenance is signed by key {signer}, not keylessly",
                                       hint="verify it with --key and that signer's public key")
    key = keys.get(signer)
    if key is not None:
        _check_signature(key, signatures[0]["sig"], payload, signer)
    if given is not None and signer == given:
        return {**report, "status": "valid"}
    if trust.requested:  # made by an earlier signer: valid only if the given key's signature covers it
        return {**report, "status": COVERED}
    how = ("intact, by the signer's key recorded in the store" if key is not None else "signature not checked")
    return {**report, "status": f"{UNVERIFIED}: subject matches; {how} (pass --key to check who signed)"}


def _keyless(referrer: ref.Referrer, payload: bytes, trust: Trust) -> dict[str, Any]:
    if trust.keyless is None:
        if trust.requested:
            raise errors.ProvenanceInvalid("the provenance is signed keylessly (Sigstore); --key cannot verify it",
                                           hint="pass --certificate-identity, --certificate-oidc-issuer and "
                                                "--trust-root")
        return {"status": f"{UNVERIFIED}: subject matches; keyless (Sigstore) signature not checked (pass "
                          "--certificate-identity, --certificate-oidc-issuer and --trust-root)"}
    signed = verify_dsse_bundle(referrer.layer(ref.SIGNATURE_TYPE), trust.keyless, "the provenance")
    if signed != payload:
        raise errors.ProvenanceInvalid("the provenance's Sigstore bundle signs another statement than it carries")
    return {"status": "valid", "identity": trust.keyless.identity}


def _check_signature(key: EllipticCurvePublicKey, sig: str, payload: bytes, signer: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(base64.b64decode(sig), pae(PAYLOAD_TYPE, payload), ec.ECDSA(signature_hash(key)))
    except (InvalidSignature, ValueError):
        raise errors.ProvenanceInvalid(f"the provenance envelope's signature by key {signer} does not "
                                       "verify: the attestation was changed after it was signed") from None
