"""Signing keys: EC key pairs on the curves model-signing accepts, their key ids and signature hashes.

Private keys are only ever read here and handed to a signer (trust/signers.py): never written to the store,
never logged, never quoted in an error (errors name the key file, not its contents).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from exportctl import errors

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
    from cryptography.hazmat.primitives.hashes import HashAlgorithm

SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # the curves model-signing accepts
PASSWORD_VARIABLE = "EXPORTCTL_KEY_PASSWORD"


def public_pem(public_key: PublicKeyTypes) -> bytes:
    """The key as a SubjectPublicKeyInfo PEM: the form key ids are computed over."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def keyid(public_key: PublicKeyTypes) -> str:
    """sha256 of the public key's PEM: the key hint model-signing writes into every signature."""
    return hashlib.sha256(public_pem(public_key)).hexdigest()


def signature_hash(key: EllipticCurvePrivateKey | EllipticCurvePublicKey) -> HashAlgorithm:
    """The hash ECDSA uses with `key`'s curve, as model-signing pairs them."""
    from cryptography.hazmat.primitives import hashes

    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]


def public_key_from_pem(pem: bytes) -> EllipticCurvePublicKey:
    """A public key the store recorded beside a signature (written by `exportctl sign`, so trusted to parse)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise errors.VerifyFailed("a public key recorded in the store is not an elliptic-curve key")
    return key


_MAX_KEY_BYTES = 64 << 10  # a PEM key is a few hundred bytes; /dev/zero or a model file must not be read whole


def _read(path: Path, what: str, error: type[errors.ExportctlError]) -> bytes:
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise error(f"{what} {path} is not a regular file", hint="pass the PEM file `exportctl keygen` wrote")
        with open(path, "rb") as f:
            data = f.read(_MAX_KEY_BYTES + 1)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}", hint="check the path") from None
    if len(data) > _MAX_KEY_BYTES:
        raise error(f"{what} {path} is larger than {_MAX_KEY_BYTES} bytes: not a PEM key")
    return data


def load_public_key(path: Path) -> EllipticCurvePublicKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    # A key that cannot check a signature fails the signature check (10): nothing it was asked to vouch for is.
    data = _read(path, "public key", errors.SignatureInvalid)
    if b"PRIVATE KEY" in data:
        raise errors.SignatureInvalid(f"{path} holds a private key; verification takes the public one",
                                      hint="pass the .pub.pem file `exportctl keygen` wrote")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise errors.SignatureInvalid(f"{path} is not a PEM public key", hint="pass the .pub.pem file") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in SUPPORTED_CURVES:
        raise errors.SignatureInvalid(f"{path} is not an elliptic-curve P-256/384/521 public key")
    return key


def key_password() -> bytes | None:
    """The private key's password, from the environment (never from the command line, where `ps` shows it)."""
    password = os.environ.get(PASSWORD_VARIABLE)
    return password.encode() if password else None


def load_private_key(path: Path) -> EllipticCurvePrivateKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read(path, "signing key", errors.SigningFailed)
    try:
        key = serialization.load_pem_private_key(data, key_password())
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
    public_path.write_bytes(public_pem(key.public_key()))
    return keyid(key.public_key())
