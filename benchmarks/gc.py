"""`gc` and `fsck` time on a store of 1 000 synthetic bundles (the test suite's shape, as benchmarks/verify.py
makes them), with the litter killed builds leave: unreferenced blobs, dead processes' temp files and cell
output folders, cache entries whose blobs are gone.

    python benchmarks/gc.py [--bundles 1000] [--signed 100] [--litter 500] [--keep-last 100]

Times (one run each, as a user runs them, through the CLI): `gc --dry-run`, `gc` (litter only), `fsck`
(re-hashes every blob), `gc --keep-last N` (removes the bundles beyond the N newest), `fsck` again.
Numbers go to stdout as JSON; the closing notes quote them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exportctl.canonical import digest_bytes  # noqa: E402
from exportctl.store.housekeeping import blob_files, temp_root  # noqa: E402
from exportctl.store.layout import Store  # noqa: E402
from exportctl.trust.keys import keygen  # noqa: E402
from exportctl.trust.signing import sign_bundle  # noqa: E402
from tests.unit.test_signing import fake_bundle  # noqa: E402  (the same bundle shape the tests use)


def cli(store: Path, *args: str) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "exportctl", "--store", str(store), *args, "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 7):
        raise SystemExit(f"exportctl {args} failed ({done.returncode}): {done.stderr}")
    return round(elapsed, 3), json.loads(done.stdout)


def make_store(scratch: Path, bundles: int, signed: int, litter: int) -> Store:
    store = Store.open(scratch / "store")
    keygen(scratch / "k.pem", scratch / "k.pub.pem")
    digests = [fake_bundle(store, str(i), formats=("onnx",) if i % 3 else ("torchscript",),
                           started=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00")
               for i in range(bundles)]
    for digest in digests[:signed]:
        sign_bundle(store, digest, key=scratch / "k.pem", sigstore=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    actions = store.root / "exportctl" / "actions"
    actions.mkdir(parents=True, exist_ok=True)
    for i in range(litter):
        store.put_bytes(f"orphan {i}".encode() * 100, "application/octet-stream")
        (store.root / "blobs" / "sha256" / f".tmp-{dead.pid}-{i:08x}").write_bytes(b"half")
        out = temp_root(store) / f".tmp-{dead.pid}-cell{i}" / "out"
        out.mkdir(parents=True)
        (out / "model.onnx").write_bytes(b"x" * 4096)
        gone = digest_bytes(f"gone {i}".encode())
        (actions / f"{gone[7:]}.json").write_text(json.dumps({"blobs": [gone]}))
    return store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--signed", type=int, default=100)
    parser.add_argument("--litter", type=int, default=500)
    parser.add_argument("--keep-last", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exportctl-bench-gc-") as tmp:
        start = time.perf_counter()
        store = make_store(Path(tmp), args.bundles, args.signed, args.litter)
        made = time.perf_counter() - start
        blobs = sum(1 for _ in blob_files(store))
        dry_s, dry = cli(store.root, "gc", "--dry-run")
        gc_s, gc = cli(store.root, "gc")
        fsck_s, fsck = cli(store.root, "fsck")
        keep_s, keep = cli(store.root, "gc", "--keep-last", str(args.keep_last))
        fsck2_s, fsck2 = cli(store.root, "fsck")
        results = {
            "bundles": args.bundles, "signed": args.signed, "litter_each": args.litter, "blobs": blobs,
            "create_store_s": round(made, 1),
            "gc_dry_run_s": dry_s, "gc_s": gc_s, "gc_blobs_removed": gc["blobs_removed"],
            "gc_temp_removed": gc["temp_removed"], "gc_cache_entries_removed": gc["cache_entries_removed"],
            "fsck_s": fsck_s, "fsck_problems": len(fsck["problems"]),  # type: ignore[arg-type]
            "gc_keep_last_s": keep_s, "gc_keep_last_bundles_removed": len(keep["bundles_removed"]),  # type: ignore[arg-type]
            "gc_keep_last_blobs_removed": keep["blobs_removed"], "fsck_after_s": fsck2_s,
            "fsck_after_problems": len(fsck2["problems"]),  # type: ignore[arg-type]
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
