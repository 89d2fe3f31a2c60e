"""`exportctl build`: plan, run and validate every cell of a recipe, store the bundle, optionally sign it."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl import errors
from exportctl.commands.common import (
    emit,
    err,
    json_option,
    open_store,
    out,
    recipe_argument,
    sandbox_option,
    store_option,
)
from exportctl.commands.remote import registry_options, transport_options
from exportctl.executors import EXECUTORS
from exportctl.runners import BACKENDS


@click.command()
@recipe_argument
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True,
              help="Where cells run: docker when a daemon is reachable (auto), else the local sandbox.")
@sandbox_option("Cell isolation for the local backend; 'none' is recorded in the bundle.")
@click.option("--only", multiple=True, metavar="FORMAT[/PRECISION]", help="Build only these cells (repeatable).")
@click.option("--sign-key", type=click.Path(path_type=Path), default=None, help="Sign the bundle with this key.")
@click.option("--sigstore", is_flag=True, help="Sign keylessly with Sigstore (CI OIDC identity).")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="Where cells run: this machine, or one Slurm array task per uncached cell.")
@click.option("--registry", "registry_ref", metavar="REF", default=None,
              help="slurm: HOST/REPO[:TAG] that carries inputs and parts, and receives the merged bundle.")
@click.option("--partition", default=None, help="slurm: partition for CPU cells (and GPU cells without "
              "--gpu-partition).")
@click.option("--gpu-partition", default=None, help="slurm: partition for GPU cells (they ask --gres=gpu:1).")
@click.option("--time", "time_limit", default=None, help="slurm: time limit per task (sbatch --time).")
@click.option("--log-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="slurm: where task logs go (default: <store>/exportctl/slurm); nodes must reach it.")
@registry_options
@store_option()
@json_option
def build(recipe: Path, backend: str, sandbox: str, only: tuple[str, ...], sign_key: Path | None,
          sigstore: bool, executor: str, registry_ref: str | None, partition: str | None,
          gpu_partition: str | None, time_limit: str | None, log_dir: Path | None, ca_file: Path | None,
          insecure: bool) -> None:
    """Build every cell of RECIPE, validate it, and store the bundle."""
    if executor == "slurm":
        from exportctl.commands.build_slurm import build_slurm

        build_slurm(recipe, backend, sandbox, only, registry_ref, partition, gpu_partition, time_limit, log_dir,
                    transport_options(ca_file, insecure))
        return
    from exportctl.build.pipeline import build as run_build
    from exportctl.recipe.load import load_recipe
    from exportctl.runners import get_runner
    from exportctl.views.summary import build_summary, render_build

    loaded = load_recipe(recipe)
    runner = get_runner(backend, sandbox=sandbox)
    store = open_store()
    with err().status("building", spinner="dots") as status:
        def report(step: str, msg: str) -> None:
            status.update(f"{step}: {msg}")
            if not msg.endswith("running") and not msg.endswith("preparing"):
                err().print(f"  [cyan]{step}[/] {msg}", highlight=False)
        outcome = run_build(loaded, store, runner, report, only=only)
    if sign_key is not None or sigstore:
        from exportctl.trust.signing import sign_bundle

        sign_bundle(store, outcome.digest, key=sign_key, sigstore=sigstore)
    summary = build_summary(outcome)
    emit(summary, lambda: render_build(out(), summary))
    if outcome.exit_code == errors.VALIDATION_FAILED:
        failed = [c for c in summary["cells"] if c["status"] == "failed"]
        details = "; ".join(f"{c['cell']}: {', '.join(c['violations'])}" for c in failed)
        raise errors.ValidationFailed(f"validation failed for {details}",
                                      hint=f"results are stored in {outcome.digest}; "
                                           "loosen validation.tolerances only if intended")
