"""`exportctl merge`. Registered on `exportctl.cli.main` when imported (cli.py does)."""

from __future__ import annotations

import click

from exportctl.cli import JSON, _emit, _handle_errors, _store, main, out


@main.command()
@click.argument("bundles", nargs=-1, required=True)
@JSON
@click.pass_context
@_handle_errors
def merge(ctx: click.Context, bundles: tuple[str, ...], as_json: bool) -> None:
    """Combine BUNDLES (partial builds of one recipe and checkpoint, e.g. `build --only`) into one bundle."""
    from exportctl.bundle.merge import merge as run_merge

    digest, parts = run_merge(_store(ctx, create=False), list(bundles))
    cells = [{"cell": name, "platform": p.entry.get("platform"), "status": p.entry.get("status")}
             for name, p in sorted(parts.cells.items())]
    data = {"bundle": digest, "recipe": parts.name, "merged": list(bundles), "cells": cells}

    def show() -> None:
        for c in cells:
            out.print(f"  {c['cell']:<16} {c['status']:<14} built on {c['platform']}", highlight=False)
        out.print(f"bundle {digest}", highlight=False)

    _emit(as_json, data, show)
