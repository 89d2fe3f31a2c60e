"""`exportctl render`: write the Docker build context of every toolchain a recipe needs."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl import errors
from exportctl.commands.common import emit, json_option, out, recipe_argument


@click.command()
@recipe_argument
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory to write one build context per toolchain into (DIR/<toolchain>/).")
@json_option
def render(recipe: Path, out_dir: Path) -> None:
    """Write the Docker build context of every toolchain RECIPE needs: Dockerfile, lock, wheelhouse, cell code."""
    from exportctl.env.contexts import render_context
    from exportctl.plan.matrix import make_plan
    from exportctl.recipe.load import load_recipe

    toolchains = make_plan(load_recipe(recipe)).toolchains
    taken = [t for t in toolchains if (out_dir / t).exists()]
    if taken:
        raise errors.ConfigError(f"{out_dir / taken[0]} already exists; render writes only new directories",
                                 hint="remove it or choose another --out")
    rows = []
    for toolchain in toolchains:
        context = render_context(toolchain, out_dir / toolchain)
        args = " ".join(f"--build-arg {k}={v}" for k, v in context.base_args.items())
        rows.append({"toolchain": toolchain, "context": str(context.path), "digest": context.digest,
                     "base_args": context.base_args,
                     "build": f"docker build --network none {args} {context.path}"})

    def show() -> None:
        for row in rows:
            out().print(f"[cyan]{row['toolchain']}[/] {row['context']} {row['digest']}", highlight=False,
                        soft_wrap=True)
            out().print(f"  {row['build']}", highlight=False, soft_wrap=True, markup=False)

    emit(rows, show)
