"""Who signs: a key pair on disk (`KeySigner`) or a Sigstore certificate for the CI's identity (`SigstoreSigner`).

Both sign the two things a signature of a bundle needs, behind the one `Signer` protocol the signing flow
(trust/signing.py) uses: the provenance's DSSE envelope, and the exported layout in the OpenSSF
model-signing format, hashed as `layout_hashing` says (shared with verification).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from exportctl import errors
from exportctl.canonical import HashLedger, canonical_json
from exportctl.store import referrers as ref
from exportctl.trust.keys import key_password, keyid, load_private_key, public_pem, signature_hash
from exportctl.trust.provenance import envelope


class Signer(Protocol):
    @property
    def kind(self) -> str: ...  # "key" or "sigstore": recorded on every referrer it makes

    @property
    def keyid(self) -> str | None: ...  # None until a Sigstore certificate exists (it is made when signing)

    @property
    def envelope_type(self) -> str: ...  # how the provenance's DSSE envelope is stored

    def sign_envelope(self, stmt: dict[str, Any]) -> bytes: ...

    def sign_layout(self, layout: Path, out: Path, ledger: HashLedger | None = None) -> None: ...

    def identity(self, signature: bytes) -> tuple[str, bytes, str | None]:
        """(keyid, public key PEM, OIDC identity or None) of the signer of `signature`."""
        ...


class KeySigner:
    kind = "key"
    envelope_type = ref.DSSE_TYPE

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._key = load_private_key(self._path)
        self.keyid: str | None = keyid(self._key.public_key())

    def sign_envelope(self, stmt: dict[str, Any]) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import ec

        algorithm = ec.ECDSA(signature_hash(self._key))
        return envelope(stmt, self.keyid or "", lambda data: self._key.sign(data, algorithm))

    def sign_layout(self, layout: Path, out: Path, ledger: HashLedger | None = None) -> None:
        from exportctl.trust.layout_hashing import layout_hashing
        from exportctl.trust.model_signing_import import model_signing

        model_signing.signing.Config().use_elliptic_key_signer(  # type: ignore[no-untyped-call]
            private_key=self._path, password=key_password(),  # type: ignore[arg-type]
        ).set_hashing_config(layout_hashing(ledger)).sign(layout, out)

    def identity(self, signature: bytes) -> tuple[str, bytes, str | None]:
        return self.keyid or "", public_pem(self._key.public_key()), None


class SigstoreSigner:
    """Keyless: a short-lived certificate for the CI job's OIDC identity. Everything up to `connect`'s last
    step runs offline; fetching Sigstore's trust root is the first network call (tests stop there)."""

    kind = "sigstore"
    keyid = None
    envelope_type = ref.SIGNATURE_TYPE  # a Sigstore bundle wrapping the envelope, with certificate and log entry

    def __init__(self, token: str, identity: Any, context: Any) -> None:
        self._token, self._identity, self._context = token, identity, context

    @classmethod
    def connect(cls) -> SigstoreSigner:
        from sigstore import models, oidc, sign

        try:
            token = oidc.detect_credential()
        except oidc.IdentityError as e:
            raise errors.SigningFailed(f"the CI's OIDC identity token could not be obtained: {e}") from None
        if not token:
            raise errors.SigningFailed(
                "--sigstore needs an ambient OIDC identity and none was found",
                hint="run in GitHub Actions with `permissions: id-token: write`, or sign with --key")
        try:
            identity = oidc.IdentityToken(token)
        except oidc.IdentityError as e:
            raise errors.SigningFailed(f"the CI's OIDC token cannot be used with Sigstore: {e}") from None
        try:
            context = sign.SigningContext.from_trust_config(models.ClientTrustConfig.production())
        except Exception as e:  # TUF, TLS and socket errors alike: all mean "Sigstore is not reachable"
            raise errors.SigningFailed(f"cannot reach Sigstore to fetch its trust root ({type(e).__name__}: {e})",
                                       hint="keyless signing needs network access to Sigstore; sign with --key",
                                       ) from None
        return cls(token, identity, context)

    def sign_envelope(self, stmt: dict[str, Any]) -> bytes:
        from sigstore import dsse

        with self._context.signer(self._identity) as signer:
            return str(signer.sign_dsse(dsse.Statement(canonical_json(stmt))).to_json()).encode()

    def sign_layout(self, layout: Path, out: Path, ledger: HashLedger | None = None) -> None:
        from exportctl.trust.layout_hashing import layout_hashing
        from exportctl.trust.model_signing_import import model_signing

        model_signing.signing.Config().use_sigstore_signer(  # type: ignore[no-untyped-call]
            identity_token=self._token, use_ambient_credentials=False,
        ).set_hashing_config(layout_hashing(ledger)).sign(layout, out)

    def identity(self, signature: bytes) -> tuple[str, bytes, str | None]:
        from sigstore import models

        cert = models.Bundle.from_json(signature).signing_certificate
        return keyid(cert.public_key()), public_pem(cert.public_key()), str(self._identity.identity)
