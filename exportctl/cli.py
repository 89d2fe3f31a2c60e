"""`exportctl`: the command line. Every command takes --json; every failure exits with its errors.py code."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from exportctl import __version__, errors
from exportctl.recipe.model import load_recipe
from exportctl.store.layout import Store, default_store_root

console = Console(stderr=True)
out = Console()


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except errors.ExportctlError as exc:
            console.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
            if exc.hint:
                console.print(f"  [bold]fix:[/] {exc.hint}", highlight=False)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            console.print("[bold red]interrupted[/]: the store keeps only complete writes")
            sys.exit(errors.INTERRUPTED)
    return wrapper


def _store(ctx: click.Context, create: bool = True) -> Store:
    return Store.open(ctx.obj["store"], create=create)


def _emit(as_json: bool, data: Any, render: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        render()


@click.group()
@click.version_option(__version__, prog_name="exportctl")
@click.option("--store", "store", type=click.Path(path_type=Path), envvar="EXPORTCTL_STORE",
              default=None, help="Store directory (default: $EXPORTCTL_STORE or the user data dir).")
@click.pass_context
def main(ctx: click.Context, store: Path | None) -> None:
    """Reproducible, hermetic builds of model exports into a content-addressed store."""
    ctx.obj = {"store": store or default_store_root()}


JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
RECIPE = click.argument("recipe", type=click.Path(path_type=Path))


@main.command()
@RECIPE
@click.option("--backend", type=click.Choice(["auto", "local", "docker"]), default="auto", show_default=True,
              help="Where cells run: docker when a daemon is reachable (auto), else the local sandbox.")
@click.option("--sandbox", type=click.Choice(["auto", "bwrap", "unshare", "none"]), default="auto",
              show_default=True, help="Cell isolation for the local backend; 'none' is recorded in the bundle.")
@click.option("--only", multiple=True, metavar="FORMAT[/PRECISION]", help="Build only these cells (repeatable).")
@click.option("--sign-key", type=click.Path(path_type=Path), default=None, help="Sign the bundle with this key.")
@click.option("--sigstore", is_flag=True, help="Sign keylessly with Sigstore (CI OIDC identity).")
@JSON
@click.pass_context
@_handle_errors
def build(ctx: click.Context, recipe: Path, backend: str, sandbox: str, only: tuple[str, ...],
          sign_key: Path | None, sigstore: bool, as_json: bool) -> None:
    """Build every cell of RECIPE, validate it, and store the bundle."""
    from exportctl.build.pipeline import build as run_build
    from exportctl.runners import get_runner

    loaded = load_recipe(recipe)
    runner = get_runner(backend, sandbox=sandbox)
    store = _store(ctx)
    with console.status("building", spinner="dots") as status:
        def report(step: str, msg: str) -> None:
            status.update(f"{step}: {msg}")
            if not msg.endswith("running") and not msg.endswith("preparing"):
                console.print(f"  [cyan]{step}[/] {msg}", highlight=False)
        outcome = run_build(loaded, store, runner, report, only=only)
    if sign_key is not None or sigstore:
        from exportctl.trust.signing import sign_bundle

        sign_bundle(store, outcome.digest, key=sign_key, sigstore=sigstore)
    summary = views.build_summary(outcome)
    _emit(as_json, summary, lambda: views.render_build(out, summary))
    if outcome.exit_code == errors.VALIDATION_FAILED:
        failed = [c for c in summary["cells"] if c["status"] == "failed"]
        details = "; ".join(f"{c['cell']}: {', '.join(c['violations'])}" for c in failed)
        console.print(f"[bold red]error:[/] validation failed for {details}", highlight=False)
        console.print(f"  results are stored in {outcome.digest}; loosen validation.tolerances only if intended")
    sys.exit(outcome.exit_code)


@main.command()
@RECIPE
@JSON
@click.pass_context
@_handle_errors
def plan(ctx: click.Context, recipe: Path, as_json: bool) -> None:
    """Show the cells RECIPE would build and which are already cached."""
    from exportctl.plan.matrix import make_plan

    made = make_plan(load_recipe(recipe))
    store = _store(ctx)
    cells = [{"cell": c.name, "key": c.key, "runtime": c.toolchain.runtime,
              "cached": store.cache_get(c.key) is not None} for c in made.cells]
    data = {"recipe": made.recipe.name, "checkpoint": made.checkpoint_id, "toolchains": list(made.toolchains),
            "cells": cells, "warnings": list(made.warnings)}
    _emit(as_json, data, lambda: views.render_plan(out, data))
    for warning in made.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


@main.command()
@click.argument("digest")
@JSON
@click.pass_context
@_handle_errors
def show(ctx: click.Context, digest: str, as_json: bool) -> None:
    """Show a bundle: its cells, artifacts and validation numbers."""
    store = _store(ctx, create=False)
    data = views.bundle_detail(store, store.resolve(digest).digest)
    _emit(as_json, data, lambda: views.render_detail(out, data))


@main.command()
@click.argument("target", metavar="DIGEST|DIR")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="Require a valid signature by this "
              "public key (PEM).")
@JSON
@click.pass_context
@_handle_errors
def verify(ctx: click.Context, target: str, key: Path | None, as_json: bool) -> None:
    """Re-hash a bundle (stored, or exported to DIR) and check its provenance and signatures (see exit codes)."""
    from exportctl.trust.verify import render, verify_layout, verify_stored

    report = (verify_layout(Path(target), key) if Path(target).is_dir()
              else verify_stored(_store(ctx, create=False), target, key))
    _emit(as_json, report, lambda: render(out, report))


@main.command(name="export")
@click.argument("digest")
@click.argument("dest", type=click.Path(path_type=Path))
@JSON
@click.pass_context
@_handle_errors
def export_bundle(ctx: click.Context, digest: str, dest: Path, as_json: bool) -> None:
    """Write a bundle as a standalone OCI layout in DEST (readable by skopeo, oras, registries)."""
    from exportctl.store.referrers import export

    store = _store(ctx, create=False)
    full = store.resolve(digest).digest
    provenance, signatures = export(store, full, dest)  # with its provenance and signatures, when it has them
    _emit(as_json, {"bundle": full, "layout": str(dest), "provenance": provenance.digest if provenance else None,
                    "signatures": [s.keyid[:16] for s in signatures]},
          lambda: out.print(f"exported {full} to {dest} ({len(signatures)} signature(s))"))


@main.command(name="cat")
@click.argument("digest")
@click.pass_context
@_handle_errors
def cat_blob(ctx: click.Context, digest: str) -> None:
    """Write one blob (a log, a metadata.json, ...) to stdout."""
    sys.stdout.buffer.write(_store(ctx, create=False).read_blob(digest))


@main.command()
@click.option("--sandbox", type=click.Choice(["auto", "bwrap", "unshare", "none"]), default="auto", show_default=True)
@JSON
@_handle_errors
def doctor(sandbox: str, as_json: bool) -> None:
    """Run a probe cell and report what it can reach (network, writable paths, environment)."""
    from exportctl.doctor import probe

    report = probe(sandbox)
    _emit(as_json, report, lambda: out.print_json(json.dumps(report)))
    if any(v == "allowed" for v in report["connect"].values()):
        sys.exit(errors.SANDBOX_UNAVAILABLE)


@main.command()
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="Write to a file.")
@_handle_errors
def schema(out_path: Path | None) -> None:
    """Print the recipe JSON Schema (for editors and CI linting)."""
    text = json.dumps(recipe_schema(), indent=2, sort_keys=True) + "\n"
    if out_path:
        out_path.write_text(text)
    else:
        click.echo(text, nl=False)


def recipe_schema() -> dict[str, Any]:
    from exportctl.recipe.model import Recipe

    data = Recipe.model_json_schema(mode="validation")
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "exportctl recipe"
    return data


from exportctl import (  # noqa: E402,F401  (each registers its subcommands on `main`)
    cli_audit,
    cli_formats,
    cli_images,
    views,  # noqa: E402  (rendering helpers)
)
