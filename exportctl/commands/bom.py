"""`exportctl bom`: a bundle's CycloneDX 1.6 ML-BOM, printed or written to a file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command(name="bom")
@click.argument("digest")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the BOM to FILE instead of stdout.")
@store_option()
@json_option
def bom_command(digest: str, output: Path | None) -> None:
    """Print a bundle's CycloneDX 1.6 ML-BOM (builds attach one; an older bundle gets it made and attached now)."""
    from exportctl.bundle import bom
    from exportctl.canonical import pretty_json
    from exportctl.store import referrers as ref
    from exportctl.store.atomic import atomic_write
    from exportctl.store.lease import lease

    store = open_store(create=False)
    full = store.resolve(digest).digest
    referrer, made = bom.attached(store, full), False
    if referrer is None:
        with lease(store.root, "bom"):  # gc waits: the referrer's blobs are named once it is attached
            referrer, made = bom.attach(store, full), True
    document = json.loads(referrer.layer(ref.BOM_TYPE))
    if output is None:
        emit({"bundle": full, "referrer": referrer.digest, "attached_now": made, "bom": document},
             lambda: click.echo(pretty_json(document).decode(), nl=False))
        return
    atomic_write(output, pretty_json(document))
    emit({"bundle": full, "referrer": referrer.digest, "attached_now": made, "output": str(output)},
         lambda: out().print(f"wrote the ML-BOM of {full} ({len(document.get('components', []))} components) to "
                             f"{output}" + (f"; attached as referrer {referrer.digest}" if made else ""),
                             highlight=False))
