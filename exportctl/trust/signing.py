"""Signing bundles in the OpenSSF model-signing format, with a key pair or keylessly through Sigstore.

The signed "model" is the bundle's exported layout (store/referrers.py): `model_signing verify key DIR
--signature DIR/signatures/<keyid>.sig --public_key PUB.pem` checks an export with model-signing's own CLI.
The first signature of a bundle also makes its provenance (provenance.py), signed by the same signer and
covered by the signature; later signers cover that same provenance, so every signature of a bundle fits
one exported layout. Signature and provenance are made in memory and stored only once both succeeded.

Private keys stay in the signer objects below: never written to the store, never logged, never quoted
in an error (errors name the key file, not its contents).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from exportctl import __version__, errors
from exportctl import catalog as index
from exportctl.bundle.read import BundleInfo, read_bundle
from exportctl.store import referrers as ref
from exportctl.store.layout import Descriptor, Store
from exportctl.trust.provenance import PREDICATE_TYPE, envelope, statement

SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # the curves model-signing accepts
PASSWORD_VARIABLE = "EXPORTCTL_KEY_PASSWORD"


def _spki_pem(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def keyid(public_key: Any) -> str:
    """sha256 of the public key's PEM: the key hint model-signing writes into every signature."""
    return hashlib.sha256(_spki_pem(public_key)).hexdigest()


def _hash_for(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]


def load_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise errors.ConfigError(f"cannot read public key {path}: {e.strerror}", hint="check the path") from None
    if b"PRIVATE KEY" in data:
        raise errors.ConfigError(f"{path} holds a private key; verification takes the public one",
                                 hint="pass the .pub.pem file `exportctl keygen` wrote")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise errors.ConfigError(f"{path} is not a PEM public key", hint="pass the .pub.pem file") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in SUPPORTED_CURVES:
        raise errors.ConfigError(f"{path} is not an elliptic-curve P-256/384/521 public key")
    return key


def keygen(private_path: Path, public_path: Path) -> str:
    """Write a new EC P-256 key pair; the private key file is created mode 0600 and never overwritten."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    for path in (private_path, public_path):
        if path.exists():
            raise errors.ConfigError(f"{path} already exists; refusing to overwrite a key",
                                     hint="choose another path or delete the old key pair first")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL + mode at creation: the key is never readable by others, not even between open and chmod.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(pem)
    public_path.write_bytes(_spki_pem(key.public_key()))
    return keyid(key.public_key())


class Signer(Protocol):
    kind: str
    keyid: str | None
    envelope_type: str  # how the provenance's DSSE envelope is stored

    def sign_envelope(self, stmt: dict[str, Any]) -> bytes: ...
    def sign_layout(self, layout: Path, out: Path) -> None: ...
    def identity(self, signature: bytes) -> tuple[str, bytes, str | None]: ...  # keyid, public PEM, identity


class KeySigner:
    kind = "key"
    envelope_type = ref.DSSE_TYPE

    def __init__(self, path: Path) -> None:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self._path = Path(path)
        password = os.environ.get(PASSWORD_VARIABLE)
        self._password = password.encode() if password else None
        try:
            data = self._path.read_bytes()
        except OSError as e:
            raise errors.SigningFailed(f"cannot read signing key {path}: {e.strerror}", hint="check the path") from None
        try:
            key = serialization.load_pem_private_key(data, self._password)
        except TypeError:
            raise errors.SigningFailed(f"signing key {path} is encrypted and {PASSWORD_VARIABLE} is unset (or the "
                                       "key is not encrypted and it is set)",
                                       hint=f"set {PASSWORD_VARIABLE} only for an encrypted key") from None
        except (ValueError, UnsupportedAlgorithm):
            # The library's message is generic, but only ours is shown: nothing of the file's content.
            raise errors.SigningFailed(f"{path} is not a PEM private key (or its password is wrong)",
                                       hint="create a key pair with `exportctl keygen`") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in SUPPORTED_CURVES:
            raise errors.SigningFailed(f"{path} is not an elliptic-curve P-256/384/521 private key, which is what "
                                       "model-signing uses", hint="create a key pair with `exportctl keygen`")
        self._key = key
        self.keyid: str | None = keyid(key.public_key())

    def sign_envelope(self, stmt: dict[str, Any]) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import ec

        return envelope(stmt, self.keyid or "", lambda data: self._key.sign(data, ec.ECDSA(_hash_for(self._key))))

    def sign_layout(self, layout: Path, out: Path) -> None:
        import model_signing

        model_signing.signing.Config().use_elliptic_key_signer(
            private_key=self._path, password=self._password,  # type: ignore[arg-type]
        ).set_hashing_config(_hashing()).sign(layout, out)

    def identity(self, signature: bytes) -> tuple[str, bytes, str | None]:
        return self.keyid or "", _spki_pem(self._key.public_key()), None


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

        from exportctl.canonical import canonical_json

        with self._context.signer(self._identity) as signer:
            return str(signer.sign_dsse(dsse.Statement(canonical_json(stmt))).to_json()).encode()

    def sign_layout(self, layout: Path, out: Path) -> None:
        import model_signing

        model_signing.signing.Config().use_sigstore_signer(
            identity_token=self._token, use_ambient_credentials=False,
        ).set_hashing_config(_hashing()).sign(layout, out)

    def identity(self, signature: bytes) -> tuple[str, bytes, str | None]:
        from sigstore import models

        cert = models.Bundle.from_json(signature).signing_certificate
        return keyid(cert.public_key()), _spki_pem(cert.public_key()), str(self._identity.identity)


def _hashing() -> Any:
    import model_signing

    # Only signatures/ is left out (recorded in the signature, so model-signing's CLI leaves it out too);
    # git paths are not, because an exported bundle has none and a stray one must fail verification.
    return model_signing.hashing.Config().set_ignored_paths(paths=[ref.SIGNATURES_DIR], ignore_git_paths=False)


@contextlib.contextmanager
def scratch(store: Store) -> Iterator[Path]:
    """A temp dir beside the store's blobs, so layouts are hard links (free); the system's temp dir (copies)
    when the store is read-only to us. Removed afterwards either way."""
    try:
        base = store.root / "exportctl"
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    except OSError:
        path = Path(tempfile.mkdtemp(prefix="exportctl-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _sign(store: Store, info: BundleInfo, entry: Descriptor, signer: KeySigner | SigstoreSigner,
          provenance: ref.Referrer | None) -> tuple[ref.Referrer, bytes]:
    """(provenance, model-signing signature): made in memory, over the layout the export will have."""
    if provenance is None:
        runs = store.run_records(entry.digest)
        stmt = statement(store, info, {**runs[0], "run": 1} if runs else None, __version__)
        annotations = {ref.ANNOTATION_PREDICATE: PREDICATE_TYPE, ref.ANNOTATION_SIGNER: signer.kind}
        if signer.keyid:  # a Sigstore certificate (and so its key) exists only once it signed
            annotations[ref.ANNOTATION_KEYID] = signer.keyid
        provenance = ref.make(entry, ref.DSSE_TYPE, [(signer.sign_envelope(stmt), signer.envelope_type)], annotations)
    with scratch(store) as tmp:
        layout = tmp / info.name  # model-signing names the model after its directory
        ref.write_layout(store, entry.digest, layout, provenance, [])
        signer.sign_layout(layout, tmp / "model.sig")
        return provenance, (tmp / "model.sig").read_bytes()


def sign_bundle(store: Store, digest: str, *, key: Path | None, sigstore: bool) -> dict[str, Any]:
    """Sign bundle `digest` (and give it provenance if it has none); returns what was attached."""
    if (key is None) == (not sigstore):
        raise errors.ConfigError("give exactly one of --key KEY.pem or --sigstore")
    entry = store.resolve(digest)
    info = read_bundle(store, entry.digest)
    try:
        signer: KeySigner | SigstoreSigner = KeySigner(key) if key is not None else SigstoreSigner.connect()
    except errors.SigningFailed as e:  # after `build --sign-key`, say that the build itself is kept
        kept = f"bundle {entry.digest} is stored, unsigned: sign it with `exportctl sign` once fixed"
        raise errors.SigningFailed(e.message, hint="; ".join(filter(None, [e.hint, kept]))) from None
    existing, _ = ref.pick(ref.load(store, entry.digest))
    try:
        provenance, signature = _sign(store, info, entry, signer, existing)
    except errors.ExportctlError:
        raise
    except Exception as e:  # the signing libraries' own failures (Sigstore services, I/O), never key material
        raise errors.SigningFailed(f"signing {entry.digest} failed: {type(e).__name__}: {e}") from None
    kid, public_pem, identity = signer.identity(signature)
    annotations = {ref.ANNOTATION_KEYID: kid, ref.ANNOTATION_SIGNER: signer.kind,
                   ref.ANNOTATION_COVERS: provenance.digest}
    if identity:
        annotations[ref.ANNOTATION_IDENTITY] = identity
    sig_ref = ref.make(entry, ref.SIGNATURE_TYPE, [(signature, ref.SIGNATURE_TYPE), (public_pem, ref.PUBLIC_KEY_TYPE)],
                       annotations)
    if existing is None:  # stored only now that both exist: a failure above leaves the store as it was
        ref.attach(store, provenance)
    ref.attach(store, sig_ref)
    index.record(store, entry.digest)
    return {"bundle": entry.digest, "keyid": kid, "signer": signer.kind, "identity": identity,
            "signature": sig_ref.digest, "provenance": provenance.digest, "provenance_created": existing is None}
