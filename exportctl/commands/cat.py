"""`exportctl cat`: one blob of the store, byte for byte, on stdout."""

from __future__ import annotations

import sys

import click

from exportctl.commands.common import json_option, open_store, store_option


@click.command(name="cat")
@click.argument("digest")
@store_option()
@json_option  # only errors: the blob itself is written as it is
def cat_blob(digest: str) -> None:
    """Write one blob (a log, a metadata.json, ...) to stdout."""
    sys.stdout.buffer.write(open_store(create=False).read_blob(digest))
