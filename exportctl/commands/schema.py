"""`exportctl schema`: the recipe JSON Schema, for editors and CI linting (`recipes/recipe.schema.json`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from exportctl.commands.common import json_option


def recipe_schema() -> dict[str, Any]:
    from exportctl.recipe.model import Recipe

    data = Recipe.model_json_schema(mode="validation")
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "exportctl recipe"
    return data


@click.command()
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="Write to a file.")
@json_option  # only errors: the schema is JSON already
def schema(out_path: Path | None) -> None:
    """Print the recipe JSON Schema (for editors and CI linting)."""
    text = json.dumps(recipe_schema(), indent=2, sort_keys=True) + "\n"
    if out_path:
        out_path.write_text(text)
    else:
        click.echo(text, nl=False)
