"""End-to-end time of a Slurm build against a local build of the same recipe, on this machine.

    python benchmarks/slurm.py [RECIPE] [--skip-local]

Starts the cluster tier's single-node Slurm and the registry tier's docker-registry (tests/cluster/slurm.py,
tests/registry/service.py; root), then, from empty stores (toolchain environments come from the user cache, as
for any second build on a machine): `exportctl build RECIPE --executor slurm` (wall time, each task's Slurm
run time, where each task's reference came from) and `exportctl build RECIPE` on this machine. The load
average is printed beside the numbers: the machine may be shared. Numbers go to stdout as JSON.
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
sys.path.insert(0, str(ROOT))

from tests.cluster import slurm  # noqa: E402
from tests.registry import service  # noqa: E402


def _build(recipe: Path, store: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "exportctl", "build", str(recipe), "--backend", "local", "--json",
                           *extra], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {}), "EXPORTCTL_STORE": str(store)})
    if done.returncode != 0:
        sys.exit(f"build exited {done.returncode}:\n{done.stderr[-3000:]}")
    return round(time.monotonic() - start, 1), json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe", type=Path, nargs="?", default=ROOT / "recipes" / "quickstart.yaml")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    for reason in (service.ensure_packages(), slurm.ensure_packages()):
        if reason:
            sys.exit(reason)
    results: dict[str, object] = {"recipe": str(args.recipe), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="exportctl-bench-") as tmp:
        base = Path(tmp)
        with service.registry(base / "reg") as reg, slurm.cluster(base / "slurm") as slurm_env:
            seconds, data = _build(args.recipe, base / "coordinator", "--executor", "slurm", "--registry",
                                   f"{reg.host}/bench/{args.recipe.stem}:latest", "--log-dir", str(base / "logs"),
                                   env=slurm_env)
            results["slurm"] = {"seconds": seconds, "bundle": data["bundle"], "tasks": [
                {k: t.get(k) for k in ("cell", "run_time", "reference_cached", "checkpoint_cached")}
                for t in data["tasks"]]}
            results["load_after_slurm"] = os.getloadavg()
        if not args.skip_local:
            seconds, data = _build(args.recipe, base / "local")
            results["local"] = {"seconds": seconds, "bundle": data["bundle"]}
            results["load_after_local"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
