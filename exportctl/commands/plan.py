"""`exportctl plan`: the cells a recipe would build, their keys, and which are already cached."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, err, json_option, open_store, out, recipe_argument, store_option


@click.command()
@recipe_argument
@store_option()
@json_option
def plan(recipe: Path) -> None:
    """Show the cells RECIPE would build and which are already cached."""
    from exportctl.plan.matrix import make_plan
    from exportctl.recipe.load import load_recipe
    from exportctl.views.summary import render_plan

    made = make_plan(load_recipe(recipe))
    store = open_store()
    cells = [{"cell": c.name, "key": c.key, "runtime": c.format.runtime,
              "cached": store.cache_get(c.key) is not None} for c in made.cells]
    data = {"recipe": made.recipe.name, "task": made.task, "checkpoint": made.checkpoint_id,
            "toolchains": list(made.toolchains),
            "cells": cells, "warnings": list(made.warnings)}
    emit(data, lambda: render_plan(out(), data))
    for warning in made.warnings:
        err().print(f"[yellow]warning:[/] {warning}", highlight=False)
