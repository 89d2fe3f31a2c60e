"""`exportctl verify`: re-hash a stored or exported bundle and check its provenance and signatures."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option
from exportctl.commands.remote import is_reference, pull_into, registry_options


@click.command()
@click.argument("target", metavar="DIGEST|DIR|REF")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="Require a valid signature by this "
              "public key (PEM).")
@registry_options
@store_option()
@json_option
def verify(target: str, key: Path | None, ca_file: Path | None, insecure: bool) -> None:
    """Re-hash a bundle (stored, exported to DIR, or on a registry) and check its provenance and signatures."""
    from exportctl.store.atomic import scratch_dir
    from exportctl.store.layout import Store
    from exportctl.trust.verify import render, verify_layout, verify_stored

    if is_reference(target):  # pulled into a scratch store: verifying must not add to the user's store
        with scratch_dir() as tmp:
            scratch = Store.open(tmp / "store")
            report = verify_stored(scratch, pull_into(scratch, target, ca_file, insecure), key)
    else:
        report = (verify_layout(Path(target), key) if Path(target).is_dir()
                  else verify_stored(open_store(create=False), target, key))
    emit(report, lambda: render(out(), report))
