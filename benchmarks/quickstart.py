"""Quickstart timings: cold build (new environments), warm build (new store), no-op rebuild, and the same
Ultralytics exports run by hand in the same environment (no sandbox, no validation, no store).

    python benchmarks/quickstart.py [--cold] [--jobs 2]

--cold also times creating the toolchain environments from scratch (downloads wheels into a new cache).
--jobs is passed to `exportctl build` (cells at once). The headline ratio compares exportctl's build of the
quickstart into an empty store (environments ready; demo checkpoint, reference, two sandboxed cells with
validation and the latency profile) with the same two exports by hand (`YOLO(ckpt).export(...)`, same
environment, no validation). Two more ratios take out, in turn, what the by-hand run never does: the latency
profile (a `--no-profile` build into a third empty store), then making the checkpoint and the reference (the
demo checkpoint's and the reference's own seconds, from the run record).
Numbers go to stdout as JSON; the closing notes quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "quickstart.yaml"
BY_HAND = """
import sys, time
from ultralytics import YOLO
t = time.perf_counter()
YOLO(sys.argv[1], task="detect").export(format="onnx", imgsz=320, device="cpu", simplify=True, opset=17)
YOLO(sys.argv[1], task="detect").export(format="torchscript", imgsz=320, device="cpu")
print(time.perf_counter() - t)
"""


def timed_build(store: Path, env: dict[str, str], jobs: int, *extra: str) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "exportctl", "--store", str(store), "build", str(RECIPE), "--json",
                           "--backend", "local", "--jobs", str(jobs), *extra], env=env, capture_output=True,
                          text=True, check=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="also time environment creation in a fresh cache")
    parser.add_argument("--jobs", type=int, default=2, help="cells at once (exportctl build --jobs)")
    args = parser.parse_args()
    results: dict[str, float] = {"jobs": args.jobs, "load_average_1m_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="exportctl-bench-") as scratch:
        env = dict(os.environ)
        if args.cold:
            env["EXPORTCTL_CACHE"] = str(Path(scratch) / "cache")
            results["cold_build_s"], _ = timed_build(Path(scratch) / "cold", env, args.jobs)
        results["warm_build_s"], summary = timed_build(Path(scratch) / "warm", env, args.jobs)
        results["noop_rebuild_s"], _ = timed_build(Path(scratch) / "warm", env, args.jobs)
        # The by-hand exports measure no latency; the build does unless told not to (issue 9's default).
        results["warm_build_no_profile_s"], _ = timed_build(Path(scratch) / "no-profile", env, args.jobs,
                                                            "--no-profile")
        sys.path.insert(0, str(ROOT))
        if "EXPORTCTL_CACHE" in env:
            os.environ["EXPORTCTL_CACHE"] = env["EXPORTCTL_CACHE"]
        from exportctl.env import uvenv as envs

        checkpoint = Path(scratch) / "hand" / "model.pt"
        checkpoint.parent.mkdir()
        shown = subprocess.run([sys.executable, "-m", "exportctl", "--store", str(Path(scratch) / "warm"), "show",
                                summary["bundle"], "--json"], env=env, capture_output=True, text=True, check=True)
        detail = json.loads(shown.stdout)
        run = detail["runs"][0]
        results["demo_checkpoint_s"] = run["demo_checkpoint"]["seconds"]
        results["reference_s"] = run["reference"]["seconds"]
        results["orchestrator_peak_rss_mib"] = run["orchestrator_peak_rss_mib"]
        results["cell_phases"] = {c["cell"]: c["phases"] for c in run["cells"]}  # type: ignore[assignment]
        blob = detail["checkpoint"].split(":")[1]
        checkpoint.write_bytes((Path(scratch) / "warm" / "blobs" / "sha256" / blob).read_bytes())
        python = envs.env_dir("onnx") / "bin" / "python"
        stub = ROOT / "exportctl" / "cell" / "site"
        hand_env = {"PATH": os.environ["PATH"], "HOME": str(checkpoint.parent), "PYTHONPATH": str(stub),
                    "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "OMP_NUM_THREADS": "1",
                    "YOLO_CONFIG_DIR": str(checkpoint.parent / "cfg")}
        start = time.perf_counter()
        done = subprocess.run([str(python), "-c", BY_HAND, str(checkpoint)], env=hand_env,
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"exporting by hand failed:\n{done.stderr[-3000:]}")
        results["by_hand_exports_s"] = time.perf_counter() - start
        # Like for like: the two export cells (sandbox + export + validation) against the two bare exports.
        cells_s = sum(c["seconds"] for c in summary["cells"])
        results["export_cells_s"] = cells_s
        results["overhead_cells_vs_by_hand_s"] = cells_s - results["by_hand_exports_s"]
        results["cells"] = {c["cell"]: c["seconds"] for c in summary["cells"]}  # type: ignore[assignment]
        # The headline: a whole build from an empty store against the bare exports (target <= 1.0 with --jobs 2).
        results["build_vs_by_hand_ratio"] = results["warm_build_s"] / results["by_hand_exports_s"]
        results["build_no_profile_vs_by_hand_ratio"] = results["warm_build_no_profile_s"] / results["by_hand_exports_s"]
        # What the by-hand run never does: make its checkpoint (it starts from one on disk) and the reference.
        results["build_no_profile_after_checkpoint_and_reference_vs_by_hand_ratio"] = (
            results["warm_build_no_profile_s"] - results["demo_checkpoint_s"] - results["reference_s"]
        ) / results["by_hand_exports_s"]
        results["load_average_1m_at_end"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
