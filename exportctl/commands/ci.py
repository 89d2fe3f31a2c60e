"""`exportctl ci github`: the recipe's matrix as a GitHub Actions workflow (see exportctl/ci/github.py)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import click

from exportctl.commands.common import emit, err, json_option, recipe_argument


@click.group(name="ci")
def ci() -> None:
    """Render the recipe's build matrix for another scheduler (files only; nothing runs here)."""


@ci.command(name="github")
@recipe_argument
@click.option("--registry", "registry_ref", metavar="REF", required=True,
              help="HOST/REPO[:TAG]: parts go to HOST/REPO, the signed bundle to its TAG (default: the commit).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the workflow here (default: stdout), e.g. .github/workflows/exportctl.yml.")
@click.option("--runner", default="ubuntu-24.04", show_default=True, help="Runner label of CPU cells.")
@click.option("--gpu-runner", default="gpu", show_default=True, help="Runner label of GPU cells (TensorRT).")
@click.option("--install", default="pip install exportctl", show_default=True,
              help="The shell line that installs exportctl on a runner.")
@json_option
def github(recipe: Path, registry_ref: str, out: Path | None, runner: str, gpu_runner: str, install: str) -> None:
    """A workflow with one matrix job per cell and a final job that merges, signs keylessly and pushes."""
    from exportctl.ci.cells import render_cells
    from exportctl.ci.github import render
    from exportctl.recipe.load import load_recipe
    from exportctl.registry.reference import parse

    loaded = load_recipe(recipe)
    cells = render_cells(loaded)
    # The recipe's path as the workflow sees it: relative to the repository root (the working directory).
    where = PurePosixPath(Path(os.path.relpath(recipe.resolve(), Path.cwd())).as_posix())
    text = render(loaded.name, where, cells, parse(registry_ref), runner, gpu_runner, install)
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    emit({"workflow": str(out), "cells": [c.name for c in cells]},
         lambda: err().print(f"wrote {out}: {len(cells)} matrix job(s) and the bundle job", highlight=False))
