"""`exportctl diff`: what changed from one bundle to another."""

from __future__ import annotations

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command()
@click.argument("a")
@click.argument("b")
@store_option()
@json_option
def diff(a: str, b: str) -> None:
    """What changed from bundle A to bundle B: recipe, lock pins, images, artifacts, validation metrics."""
    from exportctl.bundle.diff import diff as compare
    from exportctl.bundle.diff import render

    data = compare(open_store(create=False), a, b)
    emit(data, lambda: render(out(), data))
