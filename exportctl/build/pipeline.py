"""The build: plan -> environments -> demo checkpoint -> reference -> cells -> bundle -> store.

Every step that runs model code is a cached action executed by the runner; this module only wires them
together, reports progress, and decides the exit code.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import __version__, errors
from exportctl import catalog as store_index
from exportctl.build.actions import CACHEABLE, ActionResult, run_action
from exportctl.build.events import CACHED, DONE, QUEUED, RUNNING, STEP_ENV, WAITING, Progress, ReportProgress
from exportctl.build.schedule import PeakMemory, Task, available_memory_mib, own_peak_rss_mib, run_all
from exportctl.bundle import assemble as bundle
from exportctl.cell.phases import phase_of
from exportctl.cell.profile import DEFAULT, OFF, PROFILE_ENV, Settings
from exportctl.cell.protocol import Verdict
from exportctl.env.uvenv import cache_root
from exportctl.plan.matrix import (
    CALIBRATION_INPUT,
    CHECKPOINT_INPUT,
    DATASET_INPUT,
    REFERENCE_INPUT,
    Cell,
    Plan,
    make_plan,
)
from exportctl.recipe.model import Recipe
from exportctl.runners import Job, Runner
from exportctl.store.layout import Store

Report = Callable[[str, str], None]  # (step, what happened)


def _attach_bom(store: Store, digest: str) -> None:
    """The ML-BOM, a pure function of the bundle: a referrer beside it. A rebuild of a stored bundle finds it there
    (making it again was 0.4 s of a 1 s no-op rebuild; cyclonedx is imported only to make one)."""
    from exportctl.bundle import bom

    if bom.attached(store, digest) is None:
        bom.attach(store, digest)


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
    isolation_degraded: str | None = None


CELL_HINT = "the log above is the cell's own output (from inside its sandbox); fix the cause and build again"


def _require_success(what: str, result: ActionResult, store: Store, hint: str = CELL_HINT) -> None:
    if result.returncode != errors.OK:
        tail = "\n".join(store.read_blob(result.log).decode(errors="replace").splitlines()[-20:])
        raise errors.ExportFailed(f"{what} failed (exit {result.returncode}):\n{tail}", hint=hint)


def build(recipe: Recipe, store: Store, runner: Runner, report: Report = lambda step, msg: None,
          only: tuple[str, ...] = (), *, progress: Progress | None = None, jobs: int = 1,
          memory_budget_mib: int | None = None, profile: Settings | None = DEFAULT) -> BuildOutcome:
    """Build `recipe`: environments, then the demo checkpoint and the reference (once each), then the cells,
    up to `jobs` at a time within the memory budget (default: the memory available now). Each cell that runs
    measures its artifact's latency (`profile`; None: not measured), a run fact outside every key."""
    watch = progress or ReportProgress(report)
    started = dt.datetime.now(dt.UTC)
    plan = make_plan(recipe, only=only)
    for warning in plan.warnings:
        watch.notice(warning, warning=True)
    degraded = runner.isolation().get("degraded")
    if degraded:  # said before any cell runs, not only afterwards in `show`
        watch.notice(f"isolation degraded: {degraded} (recorded in the bundle; --require-isolation refuses)",
                     warning=True)
    for cell in plan.cells:
        watch.task(cell.name, QUEUED)
    sde = recipe.source_date_epoch
    prepared = prepare(recipe, plan, store, runner, watch)
    hints, reference, checkpoint_path = prepared.hints, prepared.reference, prepared.checkpoint_path

    if jobs > 1 and not runner.concurrent:
        watch.notice(f"cells run one at a time: the {runner.isolation().get('sandbox', runner.name)} sandbox gives "
                     "them no private /tmp (bubblewrap does)", warning=True)
        jobs = 1
    peaks = PeakMemory(cache_root() / "peak-rss.json")
    budget = memory_budget_mib if memory_budget_mib is not None else available_memory_mib()
    results = run_all([Task(cell.name, peaks.estimate(cell.name),
                            functools.partial(_run_cell, cell, plan, store, runner, watch, checkpoint_path,
                                              reference, sde, peaks, profile))
                       for cell in plan.cells],
                      jobs=jobs, budget_mib=budget, waiting=lambda name: watch.task(name, WAITING),
                      interrupt=runner.cancel)
    outcomes, failures = [], []
    for cell in plan.cells:  # plan order, whatever order the cells finished in
        result = results[cell.name]
        if result.returncode not in CACHEABLE:
            failures.append((cell, result))
            continue
        validation = json.loads(store.read_blob(result.outputs["validation.json"].digest))
        outcomes.append(CellOutcome(cell, result, validation, _verdict(result)))
    if failures:
        cell, result = failures[0]
        _require_success(f"cell {cell.name} ({len(failures)} of {len(plan.cells)} cells failed)", result, store,
                         hints.get(cell.format.toolchain, CELL_HINT))

    results_ = [bundle.CellResult(o.cell, o.result.outputs, o.status) for o in outcomes]
    manifest = bundle.assemble(store, plan, prepared.checkpoint_digest, reference.outputs, results_, degraded)
    desc = store.add_manifest(manifest, {"dev.exportctl.recipe": recipe.name})
    store.add_run_record(desc.digest, {
        "bundle": desc.digest, "recipe": recipe.name, "exportctl_version": __version__,
        "started": started.isoformat(), "finished": dt.datetime.now(dt.UTC).isoformat(),
        "host": {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version()},
        "isolation": runner.isolation(), "environments": prepared.environments, "demo_checkpoint": prepared.demo,
        "jobs": jobs, "memory_budget_mib": budget, "orchestrator_peak_rss_mib": own_peak_rss_mib(),
        "reference": {"cached": reference.cached, "seconds": reference.seconds, "log": reference.log,
                      **_run_facts(reference)},
        "cells": [{"cell": o.cell.name, "cached": o.result.cached, "seconds": o.result.seconds,
                   "log": o.result.log, "status": o.status, **_run_facts(o.result)} for o in outcomes],
    })
    _attach_bom(store, desc.digest)
    store_index.record(store, desc.digest)  # after the run record: the index takes the build time from it
    # "not-validated" (a runtime this platform lacks, e.g. CoreML off macOS) is reported plainly, never as passed,
    # and does not fail the build: only a cell measured outside its tolerances does.
    failed = [o for o in outcomes if o.verdict == Verdict.failed]
    return BuildOutcome(desc.digest, plan, outcomes, errors.VALIDATION_FAILED if failed else errors.OK, degraded)


@dataclass(frozen=True)
class Prepared:
    """What every cell of a build needs first: environments, the checkpoint, the reference outputs."""
    environments: list[dict[str, Any]]
    hints: dict[str, str]  # toolchain -> why its image build failed
    checkpoint_path: Path
    checkpoint_digest: str
    demo: dict[str, Any] | None  # run facts of the demo checkpoint action, if the recipe has one
    reference: ActionResult
    actions: tuple[ActionResult, ...]  # the demo checkpoint's (if any) and the reference's action results


def prepare(recipe: Recipe, plan: Plan, store: Store, runner: Runner, watch: Progress,
            toolchains: tuple[str, ...] | None = None) -> Prepared:
    """Environments (the plan's, or `toolchains`), then the demo checkpoint and the reference, once each.

    A cluster coordinator calls this alone, with the reference's toolchain, and ships the two actions to its
    tasks, so no task runs them again."""
    environments, hints = [], {}
    for toolchain in plan.toolchains if toolchains is None else toolchains:
        watch.task(f"env {toolchain}", RUNNING, step=STEP_ENV)
        facts = runner.prepare(toolchain)
        environments.append({k: v for k, v in facts.items() if k != "failure_hint"})
        if facts.get("image_build") == "failed":
            hints[toolchain] = str(facts.get("failure_hint") or "the log above is the toolchain image build's")
            watch.task(f"env {toolchain}", "image build failed")
        else:
            watch.task(f"env {toolchain}", "created" if facts.get("created") else "ready")
    sde = recipe.source_date_epoch
    checkpoint_path, checkpoint_digest, demo = _checkpoint(recipe, plan, store, runner, watch, hints)
    labelled = plan.dataset.mounts(DATASET_INPUT) if plan.dataset is not None else {}
    reference = _watched(store, runner, watch, "reference", plan.reference_key, lambda out, on_line: Job(
        toolchain=plan.reference_toolchain, request=plan.reference,
        inputs={CHECKPOINT_INPUT: checkpoint_path, **plan.images, **labelled}, output_dir=out,
        source_date_epoch=sde, label="reference", on_line=on_line))
    _require_success("computing the PyTorch reference outputs", reference, store,
                     hints.get(plan.reference_toolchain, CELL_HINT))
    demo_facts = None if demo is None else {"cached": demo.cached, "seconds": demo.seconds}
    return Prepared(environments, hints, checkpoint_path, checkpoint_digest, demo_facts, reference,
                    tuple(r for r in (demo, reference) if r is not None))


def _run_facts(result: ActionResult) -> dict[str, Any]:
    """Peak memory and where the time went: the cell's own phases, and the rest of the run (sandbox start,
    interpreter start-up and teardown), which only the host sees. Cached: the facts of the run that made it."""
    if result.report is None:
        return {}
    phases = dict(result.report.phases)
    phases = {"sandbox start": round(max(0.0, result.seconds - sum(phases.values())), 3), **phases}
    facts: dict[str, Any] = {"peak_rss_mib": result.report.peak_rss_mib, "phases": phases}
    if result.report.profile is not None:  # latency on the machine that ran the cell
        facts["profile"] = result.report.profile
    if result.report.profile_skipped is not None:
        facts["profile_skipped"] = result.report.profile_skipped
    return facts


def _watched(store: Store, runner: Runner, watch: Progress, name: str, key: str,
             job_for: Callable[[Path, Callable[[str], None]], Job]) -> ActionResult:
    """A cached action whose progress (state, the step the cell announces, its output) goes to `watch`."""
    def on_line(line: str) -> None:
        step = phase_of(line)
        if step is not None:
            watch.task(name, RUNNING, step=step)
        watch.log(name, line)

    watch.task(name, RUNNING, step=STEP_ENV)
    result = run_action(store, runner, key, lambda out: job_for(out, on_line))
    if result.cached:
        watch.task(name, CACHED)
    elif result.returncode not in CACHEABLE:
        watch.task(name, "export failed", detail=f"exit {result.returncode}")
    else:  # a cell ends as its verdict; the checkpoint and the reference as done
        watch.task(name, _verdict(result).value if result.report and result.report.verdict else DONE,
                   detail=f"{result.seconds:.1f}s")
    return result


def _checkpoint(recipe: Recipe, plan: Plan, store: Store, runner: Runner, watch: Progress,
                hints: dict[str, str]) -> tuple[Path, str, ActionResult | None]:
    demo = plan.demo
    if demo is None or demo.demo is None:
        assert recipe.checkpoint.path is not None
        return recipe.resolve(recipe.checkpoint.path), plan.checkpoint_id, None
    result = _watched(store, runner, watch, "checkpoint", plan.checkpoint_id, lambda out, on_line: Job(
        toolchain=plan.reference_toolchain, request=demo, inputs={}, output_dir=out,
        source_date_epoch=recipe.source_date_epoch, label="demo-checkpoint", on_line=on_line))
    _require_success(f"making the demo checkpoint from {demo.demo.arch}", result, store,
                     hints.get(plan.reference_toolchain, CELL_HINT))
    model = result.blob("model.pt")
    watch.notice(f"demo checkpoint {demo.demo.arch} seed {demo.demo.seed}: {model.digest}")
    return store.blob_path(model.digest), model.digest, result


def _run_cell(cell: Cell, plan: Plan, store: Store, runner: Runner, watch: Progress, checkpoint: Path,
              reference: ActionResult, sde: int, peaks: PeakMemory, profile: Settings | None) -> ActionResult:
    # the validation images too: latency is timed on them when there is no labelled set
    inputs = {CHECKPOINT_INPUT: checkpoint, **plan.images, **reference.mounts(REFERENCE_INPUT, store)}
    if cell.calibrates and plan.calibration is not None:  # only calibrating cells see the images
        inputs.update(plan.calibration.mounts(CALIBRATION_INPUT))
    if cell.request.dataset is not None and plan.dataset is not None:
        inputs.update(plan.dataset.mounts(DATASET_INPUT))
    asked = {PROFILE_ENV: profile.to_env() if profile is not None else OFF}  # not in the request: in no key
    result = _watched(store, runner, watch, cell.name, cell.key, lambda out, on_line: Job(
        toolchain=cell.format.toolchain, request=cell.request, inputs=inputs, output_dir=out, source_date_epoch=sde,
        label=cell.name, extra_env=asked, on_line=on_line))
    if result.report is not None:
        peaks.record(cell.name, result.report.peak_rss_mib)
    return result


def _verdict(result: ActionResult) -> Verdict:
    """The cell's verdict, from its report (exit 2 without one: the export guide's "validation failed")."""
    if result.report is not None and result.report.verdict is not None:
        return result.report.verdict
    return Verdict.failed if result.returncode == errors.VALIDATION_FAILED else Verdict.not_validated
