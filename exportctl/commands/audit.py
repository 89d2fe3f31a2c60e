"""`exportctl audit`: one page on a bundle (recipe, checkpoint, toolchains, validation, trust, runs)."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option
from exportctl.commands.remote import is_reference, pull_into, registry_options


@click.command()
@click.argument("digest", metavar="DIGEST|REF")
@registry_options
@store_option()
@json_option
def audit(digest: str, ca_file: Path | None, insecure: bool) -> None:
    """One page on a bundle: recipe, checkpoint, toolchains, validation, signatures, provenance, runs.

    Exits with the code of the first failed check (7 blobs, 11 provenance, 10 signature), after the page."""
    from exportctl.views.audit import audit as collect
    from exportctl.views.audit import failure, render

    if is_reference(digest):  # pulled into the store (checked first): audit reads the store
        store = open_store()
        digest = pull_into(store, digest, ca_file, insecure)
    else:
        store = open_store(create=False)
    data = collect(store, digest)
    emit(data, lambda: render(out(), data))
    if (error := failure(data)) is not None:  # the page is printed, and the exit code says the check failed
        raise error
