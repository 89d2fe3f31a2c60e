"""`exportctl sign`: sign a stored bundle (model-signing format); the first signature attaches provenance."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command()
@click.argument("digest")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="EC private key (PEM) to sign with.")
@click.option("--sigstore", is_flag=True, help="Sign keylessly with Sigstore (CI OIDC identity).")
@store_option()
@json_option
def sign(digest: str, key: Path | None, sigstore: bool) -> None:
    """Sign a bundle in the model-signing format; its first signature also attaches SLSA provenance."""
    from exportctl import catalog
    from exportctl.store.lease import lease
    from exportctl.trust.signing import sign_bundle

    store = open_store(create=False)
    with lease(store.root, "sign"):  # gc waits: the referrer's blobs are named once it is attached
        data = sign_bundle(store, digest, key=key, sigstore=sigstore)
    catalog.record(store, data["bundle"])  # `ls --signed-by` answers at once, without a later sync
    emit(data, lambda: out().print(
        f"signed {data['bundle']} with {data['signer']} {data['keyid'][:16]}"
        + (f"; provenance {data['provenance']} attached" if data["provenance_created"] else ""), highlight=False))
