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
    parallel_options,
    recipe_argument,
    sandbox_option,
    settings,
    store_option,
)
from exportctl.commands.remote import registry_options, transport_options
from exportctl.executors import EXECUTORS
from exportctl.runners import BACKENDS


def _answered_unchanged(recipe: Path, options: dict[str, object], quiet: bool) -> bool:
    """Answer a rebuild from the store's journal when nothing it would read has changed (build/noop.py)."""
    import datetime as dt

    from exportctl.build import noop
    from exportctl.store.housekeeping import remove_dead_temps
    from exportctl.store.layout import default_store_root
    from exportctl.store.lease import lease

    started = dt.datetime.now(dt.UTC)
    entry = noop.answer(settings().store or default_store_root(), recipe, options)
    if entry is None:
        return False
    store = open_store(create=False)
    with lease(store.root, "build", say=lambda msg: err().print(msg, highlight=False, markup=False)):
        remove_dead_temps(store)  # as every build does: what killed ones left
        summary = noop.repeat(store, entry, started)
    if not quiet:
        click.echo(f"unchanged: {recipe}, everything it reads, exportctl and the options are as at run "
                   f"{entry['run']} of this bundle; every cell is cached", err=True)
    if summary.get("isolation_degraded"):
        click.secho(f"isolation degraded: {summary['isolation_degraded']}", fg="yellow", err=True)
    emit(summary, lambda: _render(summary))
    return True


def _render(summary: dict[str, object]) -> None:
    from exportctl.views.summary import render_build

    render_build(out(), summary)


@click.command()
@recipe_argument
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True,
              help="Where cells run: docker when a daemon can have every toolchain image (auto), else local.")
@sandbox_option("Cell isolation for the local backend; 'none' is recorded in the bundle.")
@click.option("--require-isolation", is_flag=True, envvar="EXPORTCTL_REQUIRE_ISOLATION", show_envvar=True,
              help="Refuse (exit 4) to build with degraded isolation (unshare or none).")
@click.option("--only", multiple=True, metavar="FORMAT[/PRECISION]", help="Build only these cells (repeatable).")
@parallel_options
@click.option("--no-profile", is_flag=True, help="Do not measure each artifact's latency (run records only; "
              "the bundle is the same either way).")
@click.option("--profile-runs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Timed runs per thread setting when measuring latency, exactly (default: up to 100 in 2 s, at "
                   "least 10, after 3 warm-up runs).")
@click.option("-q", "--quiet", is_flag=True, help="No progress, only warnings and the result.")
@click.option("-v", "--verbose", is_flag=True, help="Also stream every cell's output.")
@click.option("--sign-key", type=click.Path(path_type=Path), default=None, help="Sign the bundle with this key.")
@click.option("--sigstore", is_flag=True, help="Sign keylessly with Sigstore (CI OIDC identity).")
@click.option("--sign-failed", is_flag=True, help="Sign even when a cell failed validation (refused otherwise).")
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
@click.option("--shared-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="slurm: hand the inputs to the tasks through this directory (mounted on every node) instead "
                   "of the registry.")
@registry_options
@store_option()
@json_option
def build(recipe: Path, backend: str, sandbox: str, require_isolation: bool, only: tuple[str, ...],
          jobs: int | None, memory_budget: int | None, no_profile: bool, profile_runs: int | None, quiet: bool,
          verbose: bool, sign_key: Path | None,
          sigstore: bool, sign_failed: bool, executor: str, registry_ref: str | None,
          partition: str | None, gpu_partition: str | None, time_limit: str | None, log_dir: Path | None,
          shared_dir: Path | None, ca_file: Path | None, insecure: bool) -> None:
    """Build every cell of RECIPE, validate it, and store the bundle."""
    if executor == "slurm":
        from exportctl.commands.build_slurm import build_slurm

        build_slurm(recipe, backend, sandbox, only, registry_ref, partition, gpu_partition, time_limit, log_dir,
                    shared_dir, transport_options(ca_file, insecure))
        return
    options = {"backend": backend, "sandbox": sandbox, "only": list(only), "require_isolation": require_isolation}
    if not (sign_key or sigstore) and _answered_unchanged(recipe, options, quiet):
        return
    from exportctl import readlog
    from exportctl.build import noop
    from exportctl.build.pipeline import build as run_build
    from exportctl.build.schedule import default_jobs
    from exportctl.cell.profile import DEFAULT, Settings
    from exportctl.plan.matrix import make_plan
    from exportctl.recipe.load import load_recipe
    from exportctl.runners import get_runner
    from exportctl.store.housekeeping import remove_dead_temps
    from exportctl.store.lease import lease
    from exportctl.views.progress import ConsoleProgress
    from exportctl.views.summary import build_summary, render_build

    with readlog.reading() as log:  # every path the build reads: the next build's no-op check (build/noop.py)
        loaded = load_recipe(recipe)
        live = out().is_terminal and err().is_terminal
        with ConsoleProgress(err(), live=live, quiet=quiet, verbose=verbose) as progress:
            toolchains = make_plan(loaded, only=only).toolchains if backend == "auto" else ()
            runner = get_runner(backend, sandbox=sandbox, toolchains=toolchains,
                                notice=lambda line: progress.notice(line))
            degraded = runner.isolation().get("degraded")
            if degraded and require_isolation:  # refused before the store is touched
                raise errors.SandboxUnavailable(
                    f"isolation would be degraded ({runner.isolation().get('sandbox')}: {degraded}) and "
                    "--require-isolation (or EXPORTCTL_REQUIRE_ISOLATION) asks for full isolation",
                    hint="install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), "
                         "or build with --backend docker")
            store = open_store()
            # The store's lease, shared with other writers: `gc` waits until this build has named every blob it wrote.
            with lease(store.root, "build", say=lambda msg: err().print(msg, highlight=False, markup=False)):
                remove_dead_temps(store)  # what killed builds left in the store's temp area
                outcome = run_build(loaded, store, runner, only=only, progress=progress, jobs=jobs or default_jobs(),
                                    memory_budget_mib=memory_budget,
                                    profile=None if no_profile else
                                    Settings(runs=profile_runs, seconds=None) if profile_runs else DEFAULT)
                refused = outcome.exit_code != errors.OK and not sign_failed  # never vouch for a failed build
                if (sign_key is not None or sigstore) and not refused:
                    from exportctl.trust.signing import sign_bundle

                    sign_bundle(store, outcome.digest, key=sign_key, sigstore=sigstore)
    summary = build_summary(outcome)
    if outcome.exit_code == errors.OK:
        noop.record(store, recipe, options, log, outcome.digest, summary)
    emit(summary, lambda: render_build(out(), summary))
    if outcome.exit_code == errors.VALIDATION_FAILED:
        failed = [c for c in summary["cells"] if c["status"] == "failed"]
        details = "; ".join(f"{c['cell']}: {', '.join(c['violations'])}" for c in failed)
        raise errors.ValidationFailed(f"validation failed for {details}",
                                      hint=f"results are stored in {outcome.digest}"
                                           + (", unsigned (--sign-failed signs a failed build)"
                                              if (sign_key is not None or sigstore) and refused else "")
                                           + "; loosen validation.tolerances only if intended")
