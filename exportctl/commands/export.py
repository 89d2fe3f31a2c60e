"""`exportctl export`: a bundle as a standalone OCI layout, with its provenance and signatures."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command(name="export")
@click.argument("digest")
@click.argument("dest", type=click.Path(path_type=Path))
@store_option()
@json_option
def export_bundle(digest: str, dest: Path) -> None:
    """Write a bundle as a standalone OCI layout in DEST (readable by skopeo, oras, registries)."""
    from exportctl.store.referrers import export

    store = open_store(create=False)
    full = store.resolve(digest).digest
    provenance, signatures = export(store, full, dest)  # with its provenance and signatures, when it has them
    emit({"bundle": full, "layout": str(dest), "provenance": provenance.digest if provenance else None,
          "signatures": [s.keyid[:16] for s in signatures]},
         lambda: out().print(f"exported {full} to {dest} ({len(signatures)} signature(s))"))
