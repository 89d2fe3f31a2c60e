"""CLI start-up: `exportctl --version` and `exportctl ls` on a store of 1 000 bundles, against `python -c pass`.

    python benchmarks/startup.py [--bundles 1000] [--runs 15] [--dir DIR]

The store is benchmarks/gc.py's (synthetic bundles of the test suite's shape, 100 of them signed, no litter);
it is made once under --dir (default: the system temp dir) and reused by later runs with the same --bundles.
Each command runs --runs times after one warm-up run (page cache, the store's index brought up to date), through
the `exportctl` console script of this interpreter's environment, as a user runs it; the table gives the median
and the fastest run, with the 1-minute load average before and after (other processes share the cores).

Bytecode: an installed tool has it (pip compiles it at install time; Python writes it on the first run), so the
"warm" columns run with compiled bytecode (kept in a cache folder under --dir, PYTHONPYCACHEPREFIX). A machine
that sets PYTHONDONTWRITEBYTECODE and has none compiles every module on every run: the "no .pyc" columns.
`ls (terminal)` runs with stdout on a pseudo-terminal, where `ls` renders its rich table.
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gc import make_store  # noqa: E402  (the same 1 000-bundle store gc and fsck are timed on)


def store_for(scratch: Path, bundles: int) -> Path:
    """The store of `bundles` bundles under `scratch`, made once and reused (its marker is written last)."""
    root = scratch / f"store-{bundles}"
    if not (root / "complete").is_file():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        start = time.perf_counter()
        make_store(root, bundles, signed=min(100, bundles), litter=0)
        print(f"made a {bundles}-bundle store in {time.perf_counter() - start:.0f} s: {root}", file=sys.stderr)
        (root / "complete").write_text("")
    return root / "store"


def bytecode_env(scratch: Path, compiled: bool = True) -> dict[str, str]:
    """This environment, with bytecode as an installed tool has it (`compiled`), or with none at all."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    if compiled:
        return {**env, "PYTHONPYCACHEPREFIX": str(scratch / "pycache")}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(scratch / "no-pycache")}


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 16):
            pass
    except OSError:  # the terminal's other end closed
        pass


def run_once(argv: list[str], env: dict[str, str], terminal: bool) -> float:
    if not terminal:
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()}")
        return elapsed
    leader, follower = pty.openpty()
    reader = threading.Thread(target=_drain, args=(leader,))
    reader.start()
    start = time.perf_counter()
    done = subprocess.run(argv, env={**env, "COLUMNS": "160", "LINES": "50"}, stdout=follower,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    os.close(follower)
    reader.join()
    os.close(leader)
    if done.returncode:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed


def timed(argv: list[str], env: dict[str, str], runs: int, terminal: bool = False) -> tuple[float, float]:
    run_once(argv, env, terminal)  # warm-up: page cache, bytecode, the store's index
    times = [run_once(argv, env, terminal) for _ in range(runs)]
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "exportctl-bench-startup")
    args = parser.parse_args()
    store = store_for(args.dir, args.bundles)
    script = str(Path(sys.executable).parent / "exportctl")
    warm = {**bytecode_env(args.dir), "EXPORTCTL_STORE": str(store)}
    cold = {**bytecode_env(args.dir, compiled=False), "EXPORTCTL_STORE": str(store)}
    commands: list[tuple[str, list[str], bool]] = [
        ("python -c pass", [sys.executable, "-c", "pass"], False),
        ("python -c 'import click'", [sys.executable, "-c", "import click"], False),
        ("exportctl --version", [script, "--version"], False),
        ("python -m exportctl --version", [sys.executable, "-m", "exportctl", "--version"], False),
        ("exportctl ls", [script, "ls"], False),
        ("exportctl ls --json", [script, "ls", "--json"], False),
        ("exportctl ls (terminal)", [script, "ls"], True),
        ("exportctl --help", [script, "--help"], False),
    ]
    load_before = os.getloadavg()[0]
    rows = []
    for name, argv, terminal in commands:
        warm_median, warm_best = timed(argv, warm, args.runs, terminal)
        cold_median, cold_best = timed(argv, cold, max(3, args.runs // 3), terminal)
        rows.append((name, warm_median, warm_best, cold_median, cold_best))
    load_after = os.getloadavg()[0]
    print(f"{args.bundles} bundles, {args.runs} runs each (no .pyc: {max(3, args.runs // 3)}); "
          f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after; {os.cpu_count()} cores")
    print(f"{'command':<32} {'median s':>9} {'best s':>8} {'no .pyc median':>15} {'no .pyc best':>13}")
    for name, *numbers in rows:
        print(f"{name:<32} " + " ".join(f"{n:>{w}.3f}" for n, w in zip(numbers, (9, 8, 15, 13), strict=True)))


if __name__ == "__main__":
    main()
