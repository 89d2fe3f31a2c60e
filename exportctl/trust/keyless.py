"""Keyless (Sigstore) verification, offline: a Sigstore bundle checked against a trust root the user gives.

A Sigstore signature is only as good as the certificate chain (Fulcio) and transparency-log entry (Rekor)
behind it, and checking those needs Sigstore's trust root. exportctl never fetches one (verification must
work where no network is): the user passes `--trust-root FILE` (a `trusted_root.json`, as `sigstore
verify --trust-root`/`cosign` take), and without it a keyless signature is reported unverifiable, never valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exportctl import errors


@dataclass(frozen=True)
class KeylessPolicy:
    """Who must have signed: the certificate's identity (SAN) and its OIDC issuer, and the trust root."""

    identity: str
    issuer: str
    trust_root: Path | None


def verify_dsse_bundle(bundle_json: bytes, policy: KeylessPolicy, what: str) -> bytes:
    """The DSSE payload a Sigstore bundle signs, once its certificate, log entry and signature verify."""
    if policy.trust_root is None:
        raise errors.ProvenanceInvalid(f"{what} is signed keylessly (Sigstore) and cannot be verified without a "
                                       "trust root", hint="pass --trust-root trusted_root.json (Sigstore's "
                                       "trusted root, fetched once where the network is reachable)")
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    try:
        root = TrustedRoot.from_file(str(policy.trust_root))
    except (OSError, ValueError) as e:  # pydantic's ValidationError is a ValueError
        raise errors.ConfigError(f"--trust-root {policy.trust_root} is not a Sigstore trusted root: "
                                 f"{type(e).__name__}") from None
    try:
        bundle = Bundle.from_json(bundle_json)
        _, payload = Verifier(trusted_root=root).verify_dsse(
            bundle, Identity(identity=policy.identity, issuer=policy.issuer))
    except Exception as e:  # sigstore's own errors, and whatever a malformed bundle raises while parsing
        raise errors.ProvenanceInvalid(f"{what}: the Sigstore signature does not verify against "
                                       f"{policy.trust_root} for identity {policy.identity!r} "
                                       f"({type(e).__name__}: {str(e)[:200]})") from None
    return payload
