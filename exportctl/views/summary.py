"""What the CLI shows: plain data (also the --json output) and its rich rendering."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from exportctl.canonical import short
from exportctl.store import mediatypes as mt
from exportctl.store.layout import Store

if TYPE_CHECKING:
    from exportctl.build.pipeline import BuildOutcome


def _metrics_line(validation: dict[str, Any] | None) -> str:
    if not validation:
        return "-"
    if "structure" in validation:  # not validated numerically: say why, and what was checked instead
        checks = validation["structure"]
        return f"{validation['reason']}; structure {sum(c['ok'] for c in checks)}/{len(checks)} checks ok"
    gates = validation.get("gates", [])
    parts = [f"gates {sum(g['ok'] for g in gates)}/{len(gates)} ok"] if gates else []
    if validation.get("reason"):
        parts.append(validation["reason"])
    for name, t in sorted(validation.get("tensor", {}).items()):
        if t.get("max_abs") is not None:
            parts.append(f"{name} max_abs={t['max_abs']:.2e} cos={t['cosine']:.6f}")
        for group, g in sorted((t.get("groups") or {}).items()):
            if g.get("max_abs") is not None and len(t["groups"]) > 1:
                parts.append(f"{group} max_abs={g['max_abs']:.2e} cos={g['cosine']:.6f}")
    # the task's metrics (validation.json keeps them under the task's key): matched boxes, then the task's own gates
    det = next((v for v in validation.values() if isinstance(v, dict) and "ref_boxes" in v), {})
    if det:
        parts.append(f"boxes {det['matched']}/{det['ref_boxes']}")
        if det.get("mean_iou") is not None:
            parts.append(f"iou={det['mean_iou']:.4f} dscore={det['max_score_delta']:.4f} "
                         f"cls={det['class_agreement']:.2f}")
    shown = {"box mean_iou", "max_score_delta", "class_agreement", "recall", "precision"} if det else set()
    for g in gates:  # the task's own gates; accuracy drops are shown below with the value they come from
        if (g["value"] is not None and g["gate"] not in shown and not g["gate"].startswith("accuracy.")
                and not g["gate"].endswith((" max_abs", " cosine"))):
            parts.append(f"{g['gate'].replace(' ', '_')}={g['value']:.4f}")
    for name, m in sorted(((validation.get("accuracy") or {}).get("metrics") or {}).items()):
        if m.get("artifact") is not None:
            parts.append(f"{name}={m['artifact']:.4f} (drop {m['drop']:+.4f})")
    return " ".join(parts)


def latest_profiles(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """cell -> its newest run record entry that says something about latency (`profile` or `profile_skipped`)."""
    found: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first: later runs replace earlier ones
        for cell in run.get("cells", []):
            if "profile" in cell or "profile_skipped" in cell:
                found[cell["cell"]] = {**cell, "run_started": run.get("started")}
    return found


def render_latency(console: Console, runs: list[dict[str, Any]]) -> None:
    """Each cell's latency from its newest measurement: p50 per stage and p50/p99 in total, at each thread count."""
    profiles = latest_profiles(runs)
    if not profiles:
        return
    table = Table(title="latency on the build machine (ms; newest run record per cell)")
    table.add_column("cell", no_wrap=True, min_width=max(map(len, profiles)))  # other columns give way first
    for col in ("threads", "pre p50", "infer p50", "post p50", "total p50", "total p99", "img/s"):
        table.add_column(col, justify="right")
    for name, cell in profiles.items():
        for t in cell["profile"]["threads"].values() if "profile" in cell else ():
            table.add_row(name, str(t["threads"]), *(f"{t[f'{s}_ms']['p50']:.2f}" for s in (
                "preprocess", "inference", "postprocess", "total")), f"{t['total_ms']['p99']:.2f}",
                f"{t['throughput_ips']:.1f}")
    console.print(table)
    for name, cell in profiles.items():
        if "profile" not in cell:
            console.print(f"{name} latency: {cell['profile_skipped']}", highlight=False)


def build_summary(outcome: BuildOutcome) -> dict[str, Any]:
    cells = []
    for o in outcome.outcomes:
        artifact = o.result.blob(o.cell.format.artifact)
        cells.append({"cell": o.cell.name, "status": o.status, "cached": o.result.cached,
                      "artifact": artifact.digest, "size": artifact.size, "seconds": round(o.result.seconds, 2),
                      "validation": o.validation, "violations": (o.validation or {}).get("violations", [])})
    return {"bundle": outcome.digest, "recipe": outcome.plan.recipe.name, "task": outcome.plan.task,
            "exit_code": outcome.exit_code, "isolation_degraded": outcome.isolation_degraded, "cells": cells}


def render_build(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title=f"exportctl build: {summary['recipe']}")
    for col in ("cell", "status", "size", "time", "cached", "validation"):
        table.add_column(col, no_wrap=col != "validation")
    for c in summary["cells"]:
        color = {"passed": "green", "not-validated": "yellow"}.get(c["status"], "red")
        table.add_row(c["cell"], f"[{color}]{c['status']}[/]", f"{c['size'] / 1e6:.1f} MB", f"{c['seconds']:.1f}s",
                      "yes" if c["cached"] else "no", _metrics_line(c["validation"]))
    console.print(table)
    if summary.get("isolation_degraded"):
        console.print(Text(f"isolation degraded: {summary['isolation_degraded']}", style="yellow"), soft_wrap=True)
    console.print(f"bundle {summary['bundle']}", soft_wrap=True, highlight=False)  # the digest stays on one line


def render_plan(console: Console, data: dict[str, Any]) -> None:
    table = Table(title=f"plan: {data['recipe']} (task: {data['task']})")
    for col in ("cell", "runtime", "cached", "key"):
        table.add_column(col)
    for c in data["cells"]:
        table.add_row(c["cell"], c["runtime"], "cached" if c["cached"] else "to build", short(c["key"]))
    console.print(table)


def bundle_detail(store: Store, digest: str) -> dict[str, Any]:
    """What `exportctl show` prints: the bundle's cells with their validation reports, its layers and runs."""
    from exportctl.bundle.bom import attached  # here, not at the top: a no-op build renders its table without
    from exportctl.bundle.read import read_bundle, validation_of

    info = read_bundle(store, digest)
    cells = [{**c.entry, "validation": validation_of(store, info, c.name)} for c in info.cells]
    return {"bundle": digest, "name": info.name, "checkpoint": info.checkpoint, "toolchains": info.toolchains,
            "cells": cells, "isolation_degraded": info.isolation_degraded,
            "layers": [{"title": la.annotations.get(mt.ANNOTATION_TITLE), "digest": la.digest, "size": la.size,
                        "mediaType": la.media_type} for la in info.layers],
            "runs": store.run_records(digest), "bom": (bom.digest if (bom := attached(store, digest)) else None)}


def bom_line(referrer: str | None, checked: dict[str, Any] | None = None) -> str:
    """The one line `audit` and `show` give the ML-BOM."""
    if referrer is None:
        return "ML-BOM      none (`exportctl bom DIGEST` makes one)"
    found = f", {checked['components']} components, every artifact named" if checked else ""
    return f"ML-BOM      CycloneDX 1.6 referrer {referrer}{found}"


def render_detail(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[bold]{data['name']}[/] {data['bundle']}")
    console.print(f"checkpoint {data['checkpoint']}")
    for name, t in data["toolchains"].items():
        console.print(f"toolchain {name}: lock {t['lock']}")
    if data["isolation_degraded"]:
        console.print(f"[yellow]isolation degraded:[/] {data['isolation_degraded']}")
    table = Table(title="cells")
    for col in ("cell", "status", "artifact", "validation", "violations"):
        table.add_column(col)
    for c in data["cells"]:
        v = c["validation"] or {}
        violations = "; ".join(v.get("violations", []))
        table.add_row(c["cell"], c["status"], short(c["artifact"]), _metrics_line(v), violations)
    console.print(table)
    layers = Table(title="layers")
    for col in ("title", "size", "digest"):
        layers.add_column(col)
    for la in data["layers"]:
        layers.add_row(la["title"] or "?", str(la["size"]), la["digest"])
    console.print(layers)
    console.print(bom_line(data["bom"]), highlight=False)
    render_latency(console, data["runs"])
