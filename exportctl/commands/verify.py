"""`exportctl verify`: re-hash a stored or exported bundle and check its provenance and signatures."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl import errors
from exportctl.commands.common import emit, json_option, open_store, out, store_option
from exportctl.commands.remote import is_reference, pull_into, registry_options


@click.command()
@click.argument("target", metavar="DIGEST|DIR|REF")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="Require a valid signature by this "
              "public key (PEM), and a provenance it vouches for.")
@click.option("--certificate-identity", default=None, help="Keyless: the signer's identity in its Sigstore "
              "certificate (e.g. a CI workflow URL).")
@click.option("--certificate-oidc-issuer", default=None, help="Keyless: the OIDC issuer of that identity.")
@click.option("--trust-root", type=click.Path(path_type=Path), default=None, help="Keyless: Sigstore's "
              "trusted_root.json, given offline (without it a keyless signature is never reported valid).")
@registry_options
@store_option()
@json_option
def verify(target: str, key: Path | None, certificate_identity: str | None, certificate_oidc_issuer: str | None,
           trust_root: Path | None, ca_file: Path | None, insecure: bool) -> None:
    """Re-hash a bundle (stored, exported to DIR, or on a registry) and check its provenance and signatures."""
    from exportctl.store.atomic import scratch_dir
    from exportctl.store.layout import Store
    from exportctl.trust.keyless import KeylessPolicy
    from exportctl.trust.provenance_check import Trust
    from exportctl.trust.verify import render, verify_layout, verify_stored

    keyless = None
    if certificate_identity is not None or certificate_oidc_issuer is not None:
        if not (certificate_identity and certificate_oidc_issuer):
            raise errors.ConfigError("keyless verification needs both --certificate-identity and "
                                     "--certificate-oidc-issuer")
        keyless = KeylessPolicy(certificate_identity, certificate_oidc_issuer, trust_root)
    trust = Trust(key_file=key, keyless=keyless)
    if is_reference(target):  # pulled into a scratch store: verifying must not add to the user's store
        with scratch_dir() as tmp:
            scratch = Store.open(tmp / "store")
            report = verify_stored(scratch, pull_into(scratch, target, ca_file, insecure), key, trust=trust)
    else:
        report = (verify_layout(Path(target), key, trust=trust) if Path(target).is_dir()
                  else verify_stored(open_store(create=False), target, key, trust=trust))
    emit(report, lambda: render(out(), report))
