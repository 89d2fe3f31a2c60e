"""`exportctl export`: a bundle as a standalone OCI layout, with its provenance and signatures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option

REF_NAME = "org.opencontainers.image.ref.name"
# The OCI image-layout grammar of a ref.name: components of alphanumerics joined by separators, '/' between.
_REF = re.compile(r"^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$")


def _check_tags(_ctx: click.Context, _param: click.Parameter, tags: tuple[str, ...]) -> tuple[str, ...]:
    for tag in tags:
        if not _REF.match(tag):
            raise click.BadParameter(f"'{tag}' is not an OCI reference name (letters, digits, and . _ - : @ + "
                                     "between them, '/' between components)", param_hint="--tag")
    return tags


@click.command(name="export")
@click.argument("digest")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--tag", "tags", multiple=True, callback=_check_tags, metavar="NAME",
              help="Another name for the bundle in DEST (repeatable; `oci:DEST:NAME`); unsigned bundles only.")
@store_option()
@json_option
def export_bundle(digest: str, dest: Path, tags: tuple[str, ...]) -> None:
    """Write a bundle as a standalone OCI layout in DEST (readable by skopeo, oras, registries).

    DEST's index.json names it `<recipe>-<short digest>` (org.opencontainers.image.ref.name) and each --tag.
    """
    from exportctl.store.referrers import export

    store = open_store(create=False)
    full = store.resolve(digest).digest
    attached = export(store, full, dest, tags)  # with its provenance, ML-BOM and signatures, if any
    names = [e["annotations"][REF_NAME] for e in json.loads((dest / "index.json").read_text())["manifests"]]
    emit({"bundle": full, "layout": str(dest), "names": names,
          "provenance": attached.provenance.digest if attached.provenance else None,
          "bom": attached.bom.digest if attached.bom else None,
          "signatures": [s.keyid[:16] for s in attached.signatures]},
         lambda: out().print(f"exported {full} to {dest} ({len(attached.signatures)} signature(s)"
                             f"{', ML-BOM' if attached.bom else ''})"))
