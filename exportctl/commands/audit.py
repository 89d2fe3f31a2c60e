"""`exportctl audit`: one page on a bundle (recipe, checkpoint, toolchains, validation, trust, runs)."""

from __future__ import annotations

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command()
@click.argument("digest")
@store_option()
@json_option
def audit(digest: str) -> None:
    """One page on a bundle: recipe, checkpoint, toolchains, validation, signatures, provenance, runs.

    Exits with the code of the first failed check (7 blobs, 11 provenance, 10 signature), after the page."""
    from exportctl.views.audit import audit as collect
    from exportctl.views.audit import failure, render

    data = collect(open_store(create=False), digest)
    emit(data, lambda: render(out(), data))
    if (error := failure(data)) is not None:  # the page is printed, and the exit code says the check failed
        raise error
