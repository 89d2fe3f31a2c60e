"""`exportctl pull`: a bundle and its referrers from an OCI registry into the store, checked as it streams."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, err, json_option, open_store, store_option
from exportctl.commands.remote import registry_options, transport_options


@click.command()
@click.argument("reference", metavar="REF")
@registry_options
@store_option()
@json_option
def pull(reference: str, ca_file: Path | None, insecure: bool) -> None:
    """Download REF (HOST[:PORT]/REPO:TAG or …@sha256:…) into the store; prints the bundle digest."""
    from exportctl import catalog
    from exportctl.registry.pull import pull as run_pull
    from exportctl.registry.reference import parse
    from exportctl.store.housekeeping import remove_dead_temps
    from exportctl.store.lease import lease

    ref = parse(reference)
    store = open_store()
    # A writer like build: gc waits until the pulled manifest names the blobs copied in before it.
    with lease(store.root, "pull", say=lambda msg: err().print(msg, highlight=False, markup=False)), \
            err().status(f"pulling {ref}", spinner="dots"):
        remove_dead_temps(store)  # a killed pull's staging copy of the bundle, beside the store
        pulled = run_pull(store, ref, transport_options(ca_file, insecure),
                          report=lambda msg: err().print(f"  {msg}", highlight=False, soft_wrap=True))
    catalog.record(store, pulled.digest)
    data = {"bundle": pulled.digest, "recipe": pulled.name, "referrers": pulled.referrers,
            "downloaded_bytes": pulled.traffic.downloaded_bytes}
    emit(data, lambda: click.echo(pulled.digest))
