"""`exportctl show`: one bundle's cells, artifacts and validation numbers."""

from __future__ import annotations

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command()
@click.argument("digest")
@store_option()
@json_option
def show(digest: str) -> None:
    """Show a bundle: its cells, artifacts and validation numbers."""
    from exportctl.views.summary import bundle_detail, render_detail

    store = open_store(create=False)
    data = bundle_detail(store, store.resolve(digest).digest)
    emit(data, lambda: render_detail(out(), data))
