"""Keyless (Sigstore) provenance verified offline, the positive path included: a self-made Sigstore
(tests/unit/sigstore_root.py: a private Fulcio CA, Rekor and CT log keys) signs the provenance, and `exportctl
verify --certificate-identity/--certificate-oidc-issuer --trust-root` checks it with sigstore-python's own
Verifier: certificate chain, SCT, identity extensions, inclusion proof, signed checkpoint, inclusion promise."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from exportctl import errors
from exportctl.bundle.read import read_bundle
from exportctl.canonical import canonical_json
from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from exportctl.trust.provenance import PAYLOAD_TYPE, statement
from tests.unit.sigstore_root import Sigstore, fulcio_ca
from tests.unit.test_signing import exportctl, fake_bundle, snapshot

IDENTITY, ISSUER = "release@exportctl.test", "https://issuer.exportctl.test"


def _signed_store(root: Path, sigstore_bundle_of: Callable[[dict], bytes]) -> tuple[Store, str, dict]:
    """A store holding a small bundle whose provenance is attached as a Sigstore bundle."""
    store = Store.open(root)
    digest = fake_bundle(store)
    stmt = statement(store, read_bundle(store, digest), None, "0.1.0")
    signed = sigstore_bundle_of(stmt)
    ref.attach(store, ref.make(store.resolve(digest), ref.DSSE_TYPE, [(signed, ref.SIGNATURE_TYPE)],
                               {ref.ANNOTATION_SIGNER: "sigstore"}))
    return store, digest, stmt


def _verify(store: Store, digest: str, trust_root: Path, identity: str = IDENTITY, issuer: str = ISSUER):
    return exportctl("verify", digest, "--certificate-identity", identity, "--certificate-oidc-issuer", issuer,
                     "--trust-root", trust_root, "--json", store=store.root, check=False)


def test_keyless_provenance_verifies_offline_against_its_trust_root(tmp_path: Path) -> None:
    sigstore = Sigstore()
    trust_root = tmp_path / "trusted_root.json"
    trust_root.write_text(json.dumps(sigstore.trusted_root()))
    store, digest, _ = _signed_store(tmp_path / "store", lambda stmt: sigstore.sign_dsse(
        canonical_json(stmt), PAYLOAD_TYPE, IDENTITY, ISSUER))
    before = snapshot(store.root)

    done = _verify(store, digest, trust_root)
    assert done.returncode == 0, done.stderr
    provenance = json.loads(done.stdout)["provenance"]
    assert provenance["status"] == "valid" and provenance["identity"] == IDENTITY

    for identity, issuer, needle in [("someone-else@exportctl.test", ISSUER, "SANs do not match"),
                                     (IDENTITY, "https://other-issuer.test", "OIDCIssuer does not match")]:
        done = _verify(store, digest, trust_root, identity, issuer)
        assert done.returncode == errors.PROVENANCE_INVALID and needle in done.stderr, done.stderr
        assert "does not verify against" in done.stderr and "Traceback" not in done.stderr

    # A trust root without the CA that issued the certificate (another CA in its place): the chain fails.
    other_root = tmp_path / "other_root.json"
    other_root.write_text(json.dumps(sigstore.trusted_root(fulcio_ca("another fulcio", sigstore.now)[1])))
    done = _verify(store, digest, other_root)
    assert done.returncode == errors.PROVENANCE_INVALID and "CertValidationError" in done.stderr, done.stderr
    assert json.loads(done.stdout)["exit_code"] == errors.PROVENANCE_INVALID
    assert snapshot(store.root) == before  # verifying wrote nothing


def test_tampered_keyless_provenance_is_refused(tmp_path: Path) -> None:
    """The statement is changed after signing (same subjects, another builder): the DSSE signature fails."""
    sigstore = Sigstore()
    trust_root = tmp_path / "trusted_root.json"
    trust_root.write_text(json.dumps(sigstore.trusted_root()))

    def tampered(stmt: dict) -> bytes:
        signed = json.loads(sigstore.sign_dsse(canonical_json(stmt), PAYLOAD_TYPE, IDENTITY, ISSUER))
        stmt["predicate"]["runDetails"]["builder"]["id"] = "https://attacker.example/builder"
        signed["dsseEnvelope"]["payload"] = base64.b64encode(canonical_json(stmt)).decode()
        return canonical_json(signed)

    store, digest, _ = _signed_store(tmp_path / "store", tampered)
    done = _verify(store, digest, trust_root)
    assert done.returncode == errors.PROVENANCE_INVALID and "DSSE: invalid signature" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
