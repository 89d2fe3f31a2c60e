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
from exportctl.runners import BACKENDS


@click.command()
@recipe_argument
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True,
              help="Where cells run: docker when a daemon is reachable (auto), else the local sandbox.")
@sandbox_option("Cell isolation for the local backend; 'none' is recorded in the bundle.")
@click.option("--only", multiple=True, metavar="FORMAT[/PRECISION]", help="Build only these cells (repeatable).")
@click.option("--sign-key", type=click.Path(path_type=Path), default=None, help="Sign the bundle with this key.")
@click.option("--sigstore", is_flag=True, help="Sign keylessly with Sigstore (CI OIDC identity).")
@click.option("--sign-failed", is_flag=True, help="Sign even when a cell failed validation (refused otherwise).")
@store_option()
@json_option
def build(recipe: Path, backend: str, sandbox: str, only: tuple[str, ...], sign_key: Path | None,
          sigstore: bool, sign_failed: bool) -> None:
    """Build every cell of RECIPE, validate it, and store the bundle."""
    from exportctl.build.pipeline import build as run_build
    from exportctl.recipe.load import load_recipe
    from exportctl.runners import get_runner
    from exportctl.store.housekeeping import remove_dead_temps
    from exportctl.store.lease import lease
    from exportctl.views.summary import build_summary, render_build

    loaded = load_recipe(recipe)
    runner = get_runner(backend, sandbox=sandbox)
    store = open_store()
    # The store's lease, shared with other writers: `gc` waits until this build has named every blob it wrote.
    with lease(store.root, "build", say=lambda msg: err().print(msg, highlight=False, markup=False)):
        remove_dead_temps(store)  # what killed builds left in the store's temp area
        with err().status("building", spinner="dots") as status:
            def report(step: str, msg: str) -> None:
                status.update(f"{step}: {msg}")
                if not msg.endswith("running") and not msg.endswith("preparing"):
                    err().print(f"  [cyan]{step}[/] {msg}", highlight=False)
            outcome = run_build(loaded, store, runner, report, only=only)
        refused = outcome.exit_code != errors.OK and not sign_failed  # never vouch for a failed build by default
        if (sign_key is not None or sigstore) and not refused:
            from exportctl.trust.signing import sign_bundle

            sign_bundle(store, outcome.digest, key=sign_key, sigstore=sigstore)
    summary = build_summary(outcome)
    emit(summary, lambda: render_build(out(), summary))
    if outcome.exit_code == errors.VALIDATION_FAILED:
        failed = [c for c in summary["cells"] if c["status"] == "failed"]
        details = "; ".join(f"{c['cell']}: {', '.join(c['violations'])}" for c in failed)
        raise errors.ValidationFailed(f"validation failed for {details}",
                                      hint=f"results are stored in {outcome.digest}"
                                           + (", unsigned (--sign-failed signs a failed build)"
                                              if (sign_key is not None or sigstore) and refused else "")
                                           + "; loosen validation.tolerances only if intended")
