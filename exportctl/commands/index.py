"""`exportctl index`: bring the store's SQLite index up to date, or recreate it from the store."""

from __future__ import annotations

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command(name="index")
@click.option("--rebuild", is_flag=True, help="Recreate the index from the store.")
@store_option()
@json_option
def index_command(rebuild: bool) -> None:
    """Bring the store's SQLite index up to date (--rebuild: from scratch) and count what it holds."""
    from exportctl import catalog

    store = open_store()
    counts = catalog.rebuild(store) if rebuild else {"bundles": len(catalog.query(store))}
    data = {**counts, "path": str(catalog.index_path(store))}
    emit(data, lambda: out().print(f"index {data['path']}: {data['bundles']} bundles", highlight=False))
