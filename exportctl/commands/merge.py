"""`exportctl merge`: combine partial bundles of one recipe and checkpoint into one bundle."""

from __future__ import annotations

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command()
@click.argument("bundles", nargs=-1, required=True)
@store_option()
@json_option
def merge(bundles: tuple[str, ...]) -> None:
    """Combine BUNDLES (partial builds of one recipe and checkpoint, e.g. `build --only`) into one bundle."""
    from exportctl import catalog
    from exportctl.bundle.merge import merge as run_merge
    from exportctl.store.lease import lease

    store = open_store(create=False)
    with lease(store.root, "merge"):  # gc waits: the merged manifest names its blobs once stored
        digest, parts = run_merge(store, list(bundles))
    catalog.record(store, digest)
    cells = [{"cell": name, "platform": p.entry.get("platform"), "status": p.entry.get("status")}
             for name, p in sorted(parts.cells.items())]
    data = {"bundle": digest, "recipe": parts.name, "merged": list(bundles), "cells": cells}

    def render() -> None:
        for c in cells:
            out().print(f"  {c['cell']:<16} {c['status']:<14} built on {c['platform']}", highlight=False)
        out().print(f"bundle {digest}", highlight=False)

    emit(data, render)
