"""`exportctl report`: a bundle's evidence as one self-contained HTML page, or as Markdown for CI summaries."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, err, json_option, open_store, store_option
from exportctl.commands.remote import is_reference, pull_into, registry_options


@click.command()
@click.argument("digest", metavar="DIGEST|REF")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="File to write ('-': stdout; e.g. -o \"$GITHUB_STEP_SUMMARY\" with --format md).")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]), default="html", show_default=True,
              help="html: one page with inline SVG plots, no network needed to view it; md: GitHub Markdown tables.")
@registry_options
@store_option()
@json_option
def report(digest: str, output: Path, fmt: str, ca_file: Path | None, insecure: bool) -> None:
    """Write a bundle's report: matrix with the reason for every cell that did not pass, gates and their limits,
    error histograms, accuracy, latency, sizes, toolchain pins, signatures, provenance and ML-BOM."""
    from exportctl.store.atomic import atomic_write
    from exportctl.views.report import collect, render

    if is_reference(digest):  # pulled into the store (checked first), as `audit` does
        store = open_store()
        digest = pull_into(store, digest, ca_file, insecure)
    else:
        store = open_store(create=False)
    data = collect(store, store.resolve(digest).digest)
    page = render(data, fmt)
    to_stdout = str(output) == "-"
    summary = {"bundle": data["bundle"], "format": fmt, "output": None if to_stdout else str(output),
               "cells": [{"cell": c["cell"], "status": c["status"], "reason": c["reason"]} for c in data["cells"]]}
    if to_stdout:  # under --json the page is a field of the one JSON document on stdout
        emit({**summary, "report": page}, lambda: click.echo(page, nl=False))
        return
    atomic_write(output, page.encode())
    emit(summary, lambda: err().print(f"wrote the {fmt} report of {data['bundle']} ({len(data['cells'])} cells) "
                                      f"to {output}", highlight=False))
