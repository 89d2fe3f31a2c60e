"""The report's plots: matplotlib figures rendered to SVG text for inlining into one self-contained HTML file.

Deterministic bytes: the Agg backend's SVG writer with a fixed `svg.hashsalt` (the ids of clip paths and glyph
references), text kept as text (`svg.fonttype: none`, so no font outlines are embedded and the viewer's fonts
draw it), DejaVu Sans (shipped with matplotlib, so the layout does not depend on the fonts a machine has) and
the bundle's own date as the SVG metadata date. Same data, same matplotlib: same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STYLE: dict[Any, Any] = {"svg.hashsalt": "exportctl-report", "svg.fonttype": "none", "font.family": "DejaVu Sans",
                         "font.size": 9.0, "axes.spines.top": False, "axes.spines.right": False}
ONE_THREAD, ALL_THREADS, REFERENCE = "#4c72b0", "#dd8452", "#55a868"
WIDTH = 7.5  # inches: the report's column at 96 dpi


@contextmanager
def _figure(height: float, columns: int = 1) -> Iterator[tuple[Figure, list[Axes]]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH, height), layout="constrained")
        axes = figure.subplots(1, columns, squeeze=False)[0]
        yield figure, list(axes)


def _svg(figure: Figure, date: str, title: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": date, "Creator": "exportctl report", "Title": title})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: without the XML declaration and DOCTYPE


def _rows(height_per_row: float, rows: int) -> float:
    return max(1.6, 0.6 + height_per_row * rows)


def error_histogram(outputs: dict[str, dict[str, Sequence[float]]], date: str, title: str) -> str:
    """Per output, the share of elements by |artifact - reference| on log-spaced bins (a zero first edge is drawn
    one decade below the next, since a log axis has no zero)."""
    with _figure(1.9) as (figure, (ax,)):
        for name, hist in sorted(outputs.items()):
            edges, counts = [float(e) for e in hist["edges"]], [float(c) for c in hist["counts"]]
            if len(edges) > 1 and edges[0] <= 0:
                edges[0] = edges[1] / 10
            total = sum(counts) or 1.0
            ax.stairs([100 * c / total for c in counts], edges, fill=True, alpha=0.45, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("|artifact − reference| per element")
        ax.set_ylabel("% of elements")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(figure, date, title)


def accuracy_bars(cells: list[dict[str, Any]], metric: str, date: str) -> str:
    """Left: each cell's `metric` with the PyTorch reference as a line; right: its drop against its max_drop."""
    names = [c["cell"] for c in cells]
    values = [c["accuracy"]["metrics"][metric] for c in cells]
    with _figure(_rows(0.28, len(names)), columns=2) as (figure, (left, right)):
        rows = list(range(len(names)))
        left.barh(rows, [v["artifact"] for v in values], color=ONE_THREAD)
        for row, v in zip(rows, values, strict=True):
            left.vlines(v["reference"], row - 0.4, row + 0.4, color=REFERENCE, linewidth=2)
        left.set_yticks(rows, names)
        left.invert_yaxis()
        left.set_xlabel(f"{metric} (line: PyTorch reference)")
        right.barh(rows, [v["drop"] for v in values],
                   color=["#c44e52" if v.get("ok") is False else ONE_THREAD for v in values])
        limits = [(row, v["max_drop"]) for row, v in zip(rows, values, strict=True) if v.get("max_drop") is not None]
        right.scatter([m for _, m in limits], [r for r, _ in limits], marker="|", s=200, color="black",
                      label="max_drop")
        right.set_yticks(rows, [])
        right.invert_yaxis()
        right.set_xlabel(f"{metric} drop")
        if limits:
            right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(figure, date, f"{metric} per cell")


def latency_bars(cells: list[dict[str, Any]], date: str) -> str:
    """p50 of the whole per-image time at one thread and at all cores; whiskers reach p90."""
    names = [c["cell"] for c in cells]
    with _figure(_rows(0.36, len(names))) as (figure, (ax,)):
        for offset, key, color, label in ((-0.2, "1", ONE_THREAD, "1 thread"), (0.2, "all", ALL_THREADS,
                                                                                  "all cores")):
            totals = [c["latency"]["threads"][key]["total_ms"] for c in cells]
            rows = [i + offset for i in range(len(names))]
            ax.barh(rows, [t["p50"] for t in totals], height=0.38, color=color, label=label,
                    xerr=[[0.0] * len(totals), [t["p90"] - t["p50"] for t in totals]], capsize=2)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel("ms per image, p50 (whisker: p90): pre-process + inference + post-process")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(figure, date, "latency per cell")


def size_bars(cells: list[dict[str, Any]], date: str) -> str:
    names = [c["cell"] for c in cells]
    with _figure(_rows(0.26, len(names))) as (figure, (ax,)):
        ax.barh(range(len(names)), [(c["size"] or 0) / 1e6 for c in cells], color=ONE_THREAD)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel("artifact size (MB)")
        return _svg(figure, date, "artifact sizes")
