"""`exportctl ls`: the bundles in the store, answered from the store's SQLite index (no blob is read)."""

from __future__ import annotations

import datetime as dt

import click

from exportctl import errors
from exportctl.commands.common import emit, json_option, open_store, print_columns, store_option


def _since(value: str | None) -> str | None:
    """--since as the index stores times: ISO 8601 in UTC (a date alone is midnight UTC)."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise errors.ConfigError(f"--since {value!r} is not a date",
                                 hint="use YYYY-MM-DD or an ISO 8601 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat()


@click.command(name="ls")
@click.option("--checkpoint", default=None, help="Only bundles built from this checkpoint (digest or prefix).")
@click.option("--format", "fmt", default=None, help="Only bundles with a cell of this format.")
@click.option("--since", default=None, help="Only bundles first built at or after this date (YYYY-MM-DD).")
@click.option("--signed-by", default=None, help="Only bundles signed by this key id (prefix) or Sigstore identity.")
@store_option()
@json_option
def list_bundles(checkpoint: str | None, fmt: str | None, since: str | None, signed_by: str | None) -> None:
    """List the bundles in the store (answered from the store's index, which follows the store)."""
    from exportctl import catalog

    rows = catalog.query(open_store(), checkpoint=checkpoint, fmt=fmt, since=_since(since), signed_by=signed_by)

    def render() -> None:
        print_columns(("bundle", "recipe", "cells", "status", "built", "signed by"),
                      [(r["bundle"], r["name"] or "?", ",".join(r["cells"]), ",".join(r["status"]),
                        (r["created"] or "?")[:19], ",".join(r["signed_by"]) or "-") for r in rows])

    emit(rows, render)
