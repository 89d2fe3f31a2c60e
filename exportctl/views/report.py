"""`exportctl report`: one bundle's evidence as a self-contained HTML page or GitHub-flavoured Markdown.

The data comes from what `audit` already knows (verify's verdict, signatures, provenance: views/audit.py), the
bundle's validation.json files (gates, labelled-set accuracy, error histograms), its lockfiles (toolchain pins)
and the newest run record (latency, measured on one machine: the page names it). Both renderings are Jinja
templates over the same data and the same number formatting, so the Markdown says what the HTML says.
Nothing on the page depends on when it was rendered: its only dates are the bundle's own.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from exportctl.bundle.bom import lock_pins, toolchain_of
from exportctl.bundle.read import read_bundle, validation_of
from exportctl.canonical import short
from exportctl.store.layout import Store
from exportctl.views import plots
from exportctl.views.audit import audit

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("html", "md")
# The metric a cell's accuracy is summarised by, in this order of preference; otherwise its first metric.
PRIMARY_METRICS = ("map50_95", "top1", "map50")


def reason(status: str | None, validation: dict[str, Any] | None) -> str:
    """Why a cell did not pass, as one line ("" for a passed cell)."""
    if status == "passed":
        return ""
    v = validation or {}
    found = [*v.get("violations", []), *([v["reason"]] if v.get("reason") else [])]
    return "; ".join(found) or ("no validation.json" if validation is None else "no reason recorded")


def primary_metric(accuracy: dict[str, Any] | None) -> str | None:
    metrics = (accuracy or {}).get("metrics") or {}
    return next((m for m in PRIMARY_METRICS if m in metrics), next(iter(sorted(metrics)), None))


def _latency(runs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """(where the numbers come from, cell -> profile) of the newest run record that profiled any cell."""
    for run in reversed(runs):
        profiles = {c["cell"]: c["profile"] for c in run.get("cells", []) if c.get("profile")}
        if profiles:
            return {"started": run.get("started"), "host": run.get("host") or {}, "runs": len(runs)}, profiles
    return None, {}


def collect(store: Store, digest: str) -> dict[str, Any]:
    """The report's data (also `--json`): every number the page shows, nothing rendered."""
    page = audit(store, digest)
    info = read_bundle(store, page["bundle"])
    source, profiles = _latency(store.run_records(info.digest))
    pins = lock_pins(store, info)
    cells = []
    for record in info.cells:
        validation = validation_of(store, info, record.name) or {}
        fmt, precision = record.name.split("/", 1)
        cells.append({
            "cell": record.name, "format": fmt, "precision": precision, "status": record.status,
            "reason": reason(record.status, validation_of(store, info, record.name)), "artifact": record.artifact,
            "size": record.size, "toolchain": toolchain_of(info, record)[0], "runtime": validation.get("runtime"),
            "images": validation.get("images"), "gates": validation.get("gates", []),
            "structure": validation.get("structure", []), "accuracy": validation.get("accuracy"),
            "histograms": {name: t["histogram"] for name, t in sorted((validation.get("tensor") or {}).items())
                           if t.get("histogram")},
            "latency": profiles.get(record.name),
        })
    toolchains = [{"name": name, "platform": facts.get("platform"), "lock": facts.get("lock"),
                   "packages": sorted((p, pin["version"]) for p, pin in pins.get(str(facts.get("lock")), {}).items())}
                  for name, facts in sorted(info.toolchains.items())]
    epoch = int(page["recipe"]["source_date_epoch"])
    return {**{k: page[k] for k in ("bundle", "name", "checkpoint", "recipe", "integrity", "signatures",
                                    "provenance", "bom", "exporter_version", "cell_code", "isolation_degraded")},
            "task": ", ".join(sorted({str(c.entry.get("task")) for c in info.cells if c.entry.get("task")})) or None,
            "date": dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z"),
            "cells": cells, "latency_source": source, "toolchains": toolchains}


def number(value: Any) -> str:
    """The one way the report writes a number, in both renderings (the test compares them)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.6g}"
        # 0.9999998 is not 1: a value that six digits round to a whole number gets ten (a cosine, a recall)
        return f"{value:.10g}" if float(text).is_integer() and float(text) != value else text
    return str(value)


def limit(gate: dict[str, Any]) -> str:
    return f"{'≤' if gate.get('bound') == 'max' else '≥'} {number(gate.get('limit'))}"


def markdown_text(text: Any) -> str:
    """Bundle text in a Markdown table cell: HTML escaped (GitHub renders raw HTML), pipes kept inside the cell."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def megabytes(size: int | None) -> str:
    if size is None:
        return "–"
    return f"{size / 1e6:.2f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"


def _plots(data: dict[str, Any]) -> dict[str, Any]:
    date, cells = data["date"], data["cells"]
    measured = [c for c in cells if primary_metric(c["accuracy"])]
    metric = primary_metric(measured[0]["accuracy"]) if measured else None
    with_metric = [c for c in measured if metric in c["accuracy"]["metrics"]]
    timed = [c for c in cells if c["latency"]]
    return {
        "histograms": {c["cell"]: plots.error_histogram(c["histograms"], date, f"per-element error of {c['cell']}")
                       for c in cells if c["histograms"]},
        "accuracy": plots.accuracy_bars(with_metric, str(metric), date) if with_metric else None,
        "latency": plots.latency_bars(timed, date) if timed else None,
        "sizes": plots.size_bars(cells, date) if cells else None,
    }


def render(data: dict[str, Any], fmt: str) -> str:
    """The page for `data` (collect's) as "html" (with inline SVG plots) or "md" (tables only)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html.j2"]), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(number=number, limit=limit, mb=megabytes, short=short,
                       md=markdown_text)
    env.globals.update(primary_metric=primary_metric)
    # The SVG is matplotlib's own markup, inserted unescaped (`|safe`) by the HTML template; everything else is escaped.
    svg = _plots(data) if fmt == "html" else {}
    return env.get_template(f"report.{fmt}.j2").render(data=data, svg=svg)
