"""`exportctl cell-task` (hidden): what one Slurm array task runs; see exportctl/executors/task.py."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.remote import registry_options, transport_options


@click.command(name="cell-task", hidden=True)
@click.option("--inputs", required=True, help="HOST/REPO@sha256:… of the recipe's inputs artifact.")
@click.option("--cell", required=True, help="FORMAT/PRECISION.")
@click.option("--part", required=True, help="HOST/REPO:TAG to push the partial bundle to.")
@click.option("--backend", default="auto")
@click.option("--sandbox", default="auto")
@registry_options
def cell_task(inputs: str, cell: str, part: str, backend: str, sandbox: str, ca_file: Path | None,
              insecure: bool) -> None:
    """Fetch the inputs, build one cell in a private directory/HOME/store, push the part, exit with its code."""
    from exportctl.executors.task import error_for, run_task

    code = run_task(inputs, cell, part, backend, sandbox, transport_options(ca_file, insecure))
    if code != 0:  # the one exit path: the task exits with the cell's own code
        raise error_for(code, f"cell {cell} exited {code} (its log is above)")
