"""The full matrix (recipes/full-matrix.yaml): per-cell export time, peak RSS, artifact size and validation
numbers, and two clean builds that must give one bundle digest.

    python benchmarks/full_matrix.py [--out results.json]
    python benchmarks/full_matrix.py --jobs 1 2 [--out results.json]

With --jobs: one full build per value, each from an empty store (environments ready), in one run; reports
each wall time, the ratio of each to the first (target for 2 against 1 on 2 cores: <= 0.65) and whether the
digests are identical (they must be). Without it:

Build A runs each cell on its own (`build --only CELL`; the cell prints its own peak RSS into its log) into an
empty store and merges the parts;
build B is one plain `exportctl build` into another empty store. Equal digests mean every cell is byte-for-byte
reproducible and merging partial builds equals a full build. Environments come from the usual cache.
"""

from __future__ import annotations

import argparse
import json
import os
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
    parser.add_argument("--jobs", type=int, nargs="+", help="compare full builds with these --jobs values")
    args = parser.parse_args()
    subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "shapes.py")], check=True)
    if args.jobs:
        return compare_jobs(args.jobs, args.out)
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


def compare_jobs(values: list[int], out: Path | None) -> None:
    runs = []
    with tempfile.TemporaryDirectory(prefix="exportctl-matrix-jobs-") as scratch:
        for jobs in values:
            load = os.getloadavg()[0]
            summary, wall, code = exportctl(Path(scratch) / f"jobs-{jobs}", "build", str(RECIPE), "--backend=local",
                                            "--jobs", str(jobs))
            runs.append({"jobs": jobs, "wall_seconds": round(wall, 1), "exit": code, "bundle": summary["bundle"],
                         "cells": len(summary["cells"]), "load_average_1m_at_start": load})
            print(json.dumps(runs[-1]), flush=True)
    results = {"runs": runs, "identical_digests": len({r["bundle"] for r in runs}) == 1,
               "wall_ratio_to_first": {str(r["jobs"]): round(r["wall_seconds"] / runs[0]["wall_seconds"], 3)
                                       for r in runs}}
    print(json.dumps(results, indent=2))
    if out:
        out.write_text(json.dumps(results, indent=2) + "\n")
    if not results["identical_digests"]:
        sys.exit("different --jobs gave different bundle digests")


if __name__ == "__main__":
    main()
