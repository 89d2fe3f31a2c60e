"""The build: plan -> environments -> demo checkpoint -> reference -> cells -> bundle -> store.

Every step that runs model code is a cached action executed by the runner; this module only wires them
together, reports progress, and decides the exit code.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import __version__, errors
from exportctl import catalog as store_index
from exportctl.build.actions import CACHEABLE, ActionResult, run_action
from exportctl.bundle import assemble as bundle
from exportctl.cell.protocol import Verdict
from exportctl.plan.matrix import CALIBRATION_INPUT, CHECKPOINT_INPUT, REFERENCE_INPUT, Cell, Plan, make_plan
from exportctl.recipe.model import Recipe
from exportctl.runners import Job, Runner
from exportctl.store.layout import Store

Report = Callable[[str, str], None]  # (step, what happened)


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    result: ActionResult
    validation: dict[str, Any] | None  # validation.json, as stored in the bundle
    verdict: Verdict

    @property
    def status(self) -> str:
        return self.verdict.value


@dataclass(frozen=True)
class BuildOutcome:
    digest: str
    plan: Plan
    outcomes: list[CellOutcome]
    exit_code: int


def _require_success(what: str, result: ActionResult, store: Store) -> None:
    if result.returncode != errors.OK:
        tail = "\n".join(store.read_blob(result.log).decode(errors="replace").splitlines()[-20:])
        raise errors.ExportFailed(f"{what} failed (exit {result.returncode}):\n{tail}",
                                  hint="the log above is from inside the cell; fix the cause and build again")


def build(recipe: Recipe, store: Store, runner: Runner, report: Report = lambda step, msg: None,
          only: tuple[str, ...] = ()) -> BuildOutcome:
    started = dt.datetime.now(dt.UTC)
    plan = make_plan(recipe, only=only)
    for warning in plan.warnings:
        report("warning", warning)
    sde = recipe.source_date_epoch
    environments = []
    for toolchain in plan.toolchains:
        report(f"env {toolchain}", "preparing")
        facts = runner.prepare(toolchain)
        environments.append(facts)
        state = "created" if facts.get("created") else "ready"
        report(f"env {toolchain}", "image build failed" if facts.get("image_build") == "failed" else state)

    checkpoint_path, checkpoint_digest, demo = _checkpoint(recipe, plan, store, runner, report)
    report("reference", "running")
    reference = run_action(store, runner, plan.reference_key, lambda out: Job(
        toolchain=plan.reference_toolchain, request=plan.reference,
        inputs={CHECKPOINT_INPUT: checkpoint_path, **plan.images}, output_dir=out, source_date_epoch=sde,
        label="reference"))
    _require_success("computing the PyTorch reference outputs", reference, store)
    report("reference", "cached" if reference.cached else f"done in {reference.seconds:.1f}s")

    outcomes, failures = [], []
    for cell in plan.cells:
        report(cell.name, "running")
        result = _run_cell(cell, plan, store, runner, checkpoint_path, reference, sde)
        if result.returncode not in CACHEABLE:
            failures.append((cell, result))
            report(cell.name, f"export failed (exit {result.returncode})")
            continue
        validation = json.loads(store.read_blob(result.outputs["validation.json"].digest))
        outcome = CellOutcome(cell, result, validation, _verdict(result))
        outcomes.append(outcome)
        report(cell.name, ("cached, " if result.cached else "") + outcome.status)
    if failures:
        cell, result = failures[0]
        _require_success(f"cell {cell.name} ({len(failures)} of {len(plan.cells)} cells failed)", result, store)

    degraded = runner.isolation().get("degraded")
    results = [bundle.CellResult(o.cell, o.result.outputs, o.status) for o in outcomes]
    manifest = bundle.assemble(store, plan, checkpoint_digest, reference.outputs, results, degraded)
    desc = store.add_manifest(manifest, {"dev.exportctl.recipe": recipe.name})
    store.add_run_record(desc.digest, {
        "bundle": desc.digest, "recipe": recipe.name, "exportctl_version": __version__,
        "started": started.isoformat(), "finished": dt.datetime.now(dt.UTC).isoformat(),
        "host": {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version()},
        "isolation": runner.isolation(), "environments": environments, "demo_checkpoint": demo,
        "reference": {"cached": reference.cached, "seconds": reference.seconds, "log": reference.log},
        "cells": [{"cell": o.cell.name, "cached": o.result.cached, "seconds": o.result.seconds,
                   "log": o.result.log, "status": o.status} for o in outcomes],
    })
    store_index.record(store, desc.digest)  # after the run record: the index takes the build time from it
    # "not-validated" (a runtime this platform lacks, e.g. CoreML off macOS) is reported plainly, never as passed,
    # and does not fail the build: only a cell measured outside its tolerances does.
    failed = [o for o in outcomes if o.verdict == Verdict.failed]
    return BuildOutcome(desc.digest, plan, outcomes, errors.VALIDATION_FAILED if failed else errors.OK)


def _checkpoint(recipe: Recipe, plan: Plan, store: Store, runner: Runner,
                report: Report) -> tuple[Path, str, dict[str, Any] | None]:
    demo = plan.demo
    if demo is None or demo.demo is None:
        assert recipe.checkpoint.path is not None
        return recipe.resolve(recipe.checkpoint.path), plan.checkpoint_id, None
    report("checkpoint", f"making demo {demo.demo.arch} seed {demo.demo.seed}")
    result = run_action(store, runner, plan.checkpoint_id, lambda out: Job(
        toolchain=plan.reference_toolchain, request=demo, inputs={}, output_dir=out,
        source_date_epoch=recipe.source_date_epoch, label="demo-checkpoint"))
    _require_success(f"making the demo checkpoint from {demo.demo.arch}", result, store)
    model = result.blob("model.pt")
    report("checkpoint", ("cached " if result.cached else "") + model.digest)
    return store.blob_path(model.digest), model.digest, {"cached": result.cached, "seconds": result.seconds}


def _run_cell(cell: Cell, plan: Plan, store: Store, runner: Runner, checkpoint: Path, reference: ActionResult,
              sde: int) -> ActionResult:
    inputs = {CHECKPOINT_INPUT: checkpoint, **reference.mounts(REFERENCE_INPUT, store)}
    if cell.calibrates and plan.calibration is not None:  # only calibrating cells see the images
        inputs.update(plan.calibration.mounts(CALIBRATION_INPUT))
    return run_action(store, runner, cell.key, lambda out: Job(
        toolchain=cell.format.toolchain, request=cell.request, inputs=inputs, output_dir=out, source_date_epoch=sde,
        label=cell.name))


def _verdict(result: ActionResult) -> Verdict:
    """The cell's verdict, from its report (exit 2 without one: the export guide's "validation failed")."""
    if result.report is not None and result.report.verdict is not None:
        return result.report.verdict
    return Verdict.failed if result.returncode == errors.VALIDATION_FAILED else Verdict.not_validated
