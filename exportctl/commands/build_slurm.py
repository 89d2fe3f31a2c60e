"""`exportctl build --executor slurm`: the cluster build's command side (options, progress, output)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from exportctl import errors
from exportctl.commands.common import emit, err, open_store, out

if TYPE_CHECKING:
    from exportctl.registry.transport import TransportOptions


def build_slurm(recipe: Path, backend: str, sandbox: str, only: tuple[str, ...], registry_ref: str | None,
                partition: str | None, gpu_partition: str | None, time_limit: str | None, log_dir: Path | None,
                shared_dir: Path | None, transport: TransportOptions) -> None:
    from exportctl.executors.cluster import build_on_slurm
    from exportctl.executors.slurm import SlurmOptions
    from exportctl.recipe.load import load_recipe
    from exportctl.registry.reference import parse
    from exportctl.runners import get_runner

    if registry_ref is None:
        raise errors.ConfigError("--executor slurm needs --registry HOST/REPO[:TAG]: the nodes get the inputs and "
                                 "send their parts through it", hint="e.g. --registry registry.example.org/exports")
    loaded = load_recipe(recipe)
    store = open_store()
    opts = SlurmOptions(parse(registry_ref), backend, sandbox, log_dir or store.root / "exportctl" / "slurm",
                        partition, gpu_partition, time_limit, transport,
                        shared_dir=shared_dir.resolve() if shared_dir else None)
    # Runs the demo checkpoint and the reference here (once, for every task), and assembles cached cells.
    runner = get_runner(backend, sandbox=sandbox)
    with err().status("submitting", spinner="dots") as status:
        def report(step: str, msg: str) -> None:
            status.update(f"{step}: {msg}")
            err().print(f"  [cyan]{step}[/] {msg}", highlight=False, soft_wrap=True)
        outcome = build_on_slurm(recipe, loaded, store, runner, opts, report, only=only)
    data = {"bundle": outcome.digest, "reference": outcome.pushed.reference, "tasks": outcome.tasks,
            "cached_cells": outcome.cached_cells, "exit_code": outcome.exit_code}

    def render() -> None:
        for t in outcome.tasks:
            out().print(f"  {t['cell']:<18} {t['state']:<10} slurm {t['slurm_array_job']}_{t['slurm_array_task']} "
                        f"on {t['node']}", highlight=False)
        out().print(f"pushed {outcome.pushed.reference}", highlight=False, soft_wrap=True)
        out().print(f"bundle {outcome.digest}", highlight=False, soft_wrap=True)

    emit(data, render)
    if outcome.exit_code == errors.VALIDATION_FAILED:
        raise errors.ValidationFailed(f"validation failed for at least one cell of {outcome.digest}",
                                      hint=f"`exportctl show {outcome.digest}` lists the numbers")
