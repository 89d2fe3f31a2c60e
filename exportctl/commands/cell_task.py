"""`exportctl cell-task` (hidden): what one Slurm array task or Kubernetes Job index runs; see
exportctl/executors/task.py."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.remote import registry_options, transport_options


@click.command(name="cell-task", hidden=True)
@click.option("--inputs", required=True,
              help="HOST/REPO@sha256:… of the recipe's inputs artifact (with --shared-dir: its sha256:… there).")
@click.option("--shared-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Read the inputs from this directory (mounted on every node) instead of the registry.")
@click.option("--cell", default=None, help="FORMAT/PRECISION (default: from EXPORT_FORMAT and EXPORT_CONFIG).")
@click.option("--part", required=True, help="HOST/REPO:TAG to push the partial bundle to.")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Work here (a pod's volume) instead of a fresh temp directory.")
@click.option("--backend", default="auto")
@click.option("--sandbox", default="auto")
@registry_options
def cell_task(inputs: str, shared_dir: Path | None, cell: str | None, part: str, workdir: Path | None, backend: str,
              sandbox: str, ca_file: Path | None, insecure: bool) -> None:
    """Fetch the inputs, build one cell in a private directory/HOME/store, push the part, exit with its code."""
    from exportctl.executors.task import TaskInputs, error_for, run_task

    code = run_task(TaskInputs(inputs, shared_dir), cell, part, backend, sandbox,
                    transport_options(ca_file, insecure), workdir)
    if code != 0:  # the one exit path: the task exits with the cell's own code
        raise error_for(code, f"cell {cell or 'of EXPORT_FORMAT/EXPORT_CONFIG'} exited {code} (its log is above)")
