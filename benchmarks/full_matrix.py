"""The full matrix (recipes/full-matrix.yaml): per-cell export time, peak RSS, artifact size and validation
numbers, and two clean builds that must give one bundle digest.

    python benchmarks/full_matrix.py [--out results.json]

Build A runs each cell on its own (`build --only CELL`; the cell prints its own peak RSS into its log) into an
empty store and merges the parts;
build B is one plain `exportctl build` into another empty store. Equal digests mean every cell is byte-for-byte
reproducible and merging partial builds equals a full build. Environments come from the usual cache.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "full-matrix.yaml"


def exportctl(store: Path, *args: str, as_json: bool = True) -> tuple[Any, float, int]:
    """Run the CLI; returns (its --json output or text, seconds, exit code)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "exportctl", "--store", str(store), *args,
                           *(("--json",) if as_json else ())], cwd=ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 2):
        sys.exit(f"exportctl {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout) if as_json else done.stdout
    return out, time.perf_counter() - start, done.returncode


def peak_rss_mib(store: Path, bundle: str, cell: str) -> int | None:
    """The cell's own peak RSS, which the in-cell entrypoint prints into its log (a blob of the run record)."""
    shown, *_ = exportctl(store, "show", bundle)
    log = next(c["log"] for c in shown["runs"][-1]["cells"] if c["cell"] == cell)
    text, *_ = exportctl(store, "cat", log, as_json=False)
    found = re.findall(r"peak RSS (\d+) MiB", str(text))
    return int(found[-1]) if found else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, help="also write the results here")
    args = parser.parse_args()
    subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "shapes.py")], check=True)
    with tempfile.TemporaryDirectory(prefix="exportctl-matrix-") as scratch:
        store_a, store_b = Path(scratch) / "a", Path(scratch) / "b"
        plan, *_ = exportctl(store_a, "plan", str(RECIPE))
        cells, parts = [], []
        for entry in plan["cells"]:
            summary, wall, code = exportctl(store_a, "build", str(RECIPE), "--backend=local", "--only", entry["cell"])
            c = summary["cells"][0]
            rss = peak_rss_mib(store_a, summary["bundle"], c["cell"])
            v = c["validation"] or {}
            det, tensor = v.get("detection") or {}, (v.get("tensor") or {}).get("output0") or {}
            cells.append({
                "cell": c["cell"], "status": c["status"], "exit": code, "cell_seconds": c["seconds"],
                "wall_seconds": round(wall, 1), "peak_rss_mib": rss, "size_bytes": c["size"],
                "max_abs": tensor.get("max_abs"), "cosine": tensor.get("cosine"),
                **{k: det.get(k) for k in ("ref_boxes", "cand_boxes", "recall", "precision", "mean_iou", "min_iou",
                                           "max_score_delta", "class_agreement")},
                "reason": v.get("reason"),
            })
            parts.append(summary["bundle"])
            print(json.dumps(cells[-1]), flush=True)
        merged, *_ = exportctl(store_a, "merge", *parts)
        start = time.perf_counter()
        full, _, code_b = exportctl(store_b, "build", str(RECIPE), "--backend=local")
        results = {
            "cells": cells,
            "build_a_merged": merged["bundle"],
            "build_b_full": full["bundle"],
            "same_digest": merged["bundle"] == full["bundle"],
            "build_b_seconds": round(time.perf_counter() - start, 1),
            "build_b_exit": code_b,
        }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not results["same_digest"]:
        sys.exit("the two clean builds gave different bundle digests")


if __name__ == "__main__":
    main()
