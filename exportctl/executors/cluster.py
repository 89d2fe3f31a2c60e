"""A build whose cells run elsewhere (today: Slurm), finished here exactly as a one-machine build finishes.

Plan first; cells the store already has are assembled from the action cache by the local pipeline (instant),
the demo checkpoint and the reference are computed here once (the tasks get them with their inputs), the rest
run remotely and come back as partial bundles; `bundle.merge` makes the one bundle a full local build
makes, which is stored, recorded (which Slurm task built which cell, on which node) and pushed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import catalog, errors
from exportctl.build.events import ReportProgress
from exportctl.build.pipeline import Report, build, prepare
from exportctl.bundle.merge import merge
from exportctl.bundle.read import read_bundle
from exportctl.executors.slurm import SlurmOptions, run_cells
from exportctl.plan.matrix import make_plan
from exportctl.recipe.model import Recipe
from exportctl.registry.push import Pushed, push
from exportctl.runners import Runner
from exportctl.store.layout import Store


@dataclass(frozen=True)
class ClusterOutcome:
    digest: str
    exit_code: int
    tasks: list[dict[str, Any]]
    pushed: Pushed
    cached_cells: list[str]


def build_on_slurm(recipe_file: Path, recipe: Recipe, store: Store, runner: Runner, opts: SlurmOptions,
                   report: Report, only: tuple[str, ...] = ()) -> ClusterOutcome:
    started = dt.datetime.now(dt.UTC)
    plan = make_plan(recipe, only=only)
    remote = [c for c in plan.cells if store.cache_get(c.key) is None]
    cached = [c.name for c in plan.cells if c.name not in {r.name for r in remote}]
    parts: dict[str, str] = {}
    tasks: list[dict[str, Any]] = []
    reference: dict[str, Any] | None = None
    if remote:  # the reference and demo checkpoint once, here; the tasks get them with the inputs
        prepared = prepare(recipe, plan, store, runner, ReportProgress(report), toolchains=(plan.reference_toolchain,))
        reference = {"cached": prepared.reference.cached, "seconds": prepared.reference.seconds,
                     "demo_checkpoint": prepared.demo}
        parts, tasks = run_cells(recipe_file, recipe, remote, store, opts, report, prepared.actions)
    digests = list(dict.fromkeys(parts.values()))
    if cached:  # from the action cache: no cell runs again
        digests.append(build(recipe, store, runner, report, only=tuple(cached)).digest)
    digest = digests[0] if len(digests) == 1 else merge(store, digests)[0]
    store.add_run_record(digest, {"bundle": digest, "recipe": recipe.name, "executor": "slurm",
                                  "started": started.isoformat(), "finished": dt.datetime.now(dt.UTC).isoformat(),
                                  "registry": f"{opts.registry.host}/{opts.registry.repository}",
                                  "shared_dir": str(opts.shared_dir) if opts.shared_dir else None,
                                  "reference": reference,
                                  "cells": [*tasks, *({"cell": c, "cached": True} for c in cached)]})
    catalog.record(store, digest)
    failed = [c.name for c in read_bundle(store, digest).cells if c.status == "failed"]
    pushed = push(store, digest, opts.registry, opts.transport, report=lambda msg: None)
    report("push", pushed.reference)
    return ClusterOutcome(digest, errors.VALIDATION_FAILED if failed else errors.OK, tasks, pushed, cached)
