"""A model-signing key signature over an exported layout (signatures/<keyid>.sig): checked with model-signing's
own verifier over the digests the blob checks computed (`HashLedger`), and held to its canonical encoding."""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import json
import sys
import threading
from pathlib import Path

from exportctl import errors
from exportctl.canonical import HashLedger


def _canonical_base64(text: object) -> bool:
    try:
        return isinstance(text, str) and base64.b64encode(base64.b64decode(text, validate=True)).decode() == text
    except (binascii.Error, ValueError):
        return False


def check_key_signature(root: Path, path: Path, public_key_file: Path, kid: str, ledger: HashLedger) -> None:
    from exportctl.trust.layout_hashing import layout_hashing
    from exportctl.trust.model_signing_import import model_signing

    rel = path.relative_to(root).as_posix()
    try:
        bundle = json.loads(path.read_bytes())
        hint = bundle["verificationMaterial"]["publicKey"]["hint"]
        encoded = [bundle["dsseEnvelope"]["payload"], *(s["sig"] for s in bundle["dsseEnvelope"]["signatures"])]
    except (OSError, ValueError, KeyError, TypeError):
        raise errors.SignatureInvalid(f"{rel} is not a model-signing key signature (no public key hint)") from None
    # Base64 has spare bits in its last character that decoders ignore: a signature file whose text changed
    # still decodes to the same bytes. We hold the file to its one canonical spelling, byte for byte.
    if not all(_canonical_base64(t) for t in encoded):
        raise errors.SignatureInvalid(f"{rel} is not canonically encoded: its text was changed after signing")
    if hint != kid:
        raise errors.SignatureInvalid(f"{rel} was made by key {str(hint)[:16]}, not by {kid[:16]}")
    try:
        model_signing.verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]
            public_key=public_key_file) \
            .set_hashing_config(layout_hashing(ledger)).verify(root, path)
    except ValueError as e:
        raise errors.SignatureInvalid(f"{rel} (key {kid[:16]}) does not match the bundle: {e}") from None
    except Exception as e:  # a forged signature surfaces as cryptography's InvalidSignature, a mangled file as others
        raise errors.SignatureInvalid(f"{rel} is not a valid signature by key {kid[:16]} ({type(e).__name__})",
                                      ) from None


def import_model_signing_beside_hashing() -> None:
    """Start importing model-signing (~0.3 s of Python) on a thread, so that it runs on another core while this
    one hashes the blobs (reading and sha256 release the GIL); `check_key_signature`'s import then finds it done.
    Only for a signature that will be checked: an unsigned bundle never pays for it."""

    interval = sys.getswitchinterval()

    def load() -> None:
        try:
            with contextlib.suppress(Exception):  # the check's own import reports any failure where it matters
                importlib.import_module("exportctl.trust.model_signing_import")
        finally:
            sys.setswitchinterval(interval)

    # The import holds the GIL; the hashing thread wants it back after every 2 MiB chunk (~2 ms of sha256) and
    # would wait up to the default 5 ms each time. Shorter turns while both run: signed 1 GB CLI verify median
    # 1.15-1.22 s instead of 1.24-1.25 s (7 alternating runs each, benchmarks/verify.py's bundle).
    sys.setswitchinterval(0.0002)
    threading.Thread(target=load, name="import-model-signing", daemon=True).start()
