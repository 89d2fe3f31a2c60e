"""Verification throughput against `sha256sum` over the same blobs, and `ls` filter time with 1 000 bundles.

    python benchmarks/verify.py [--size-mb 512] [--bundles 1000] [--signed 100]

(`--size-mb 1024` for the 1 GB figure; `verify_digest_vs_hashlib` is verify's throughput over Python's sha256.)

Throughput: one synthetic signed bundle with a --size-mb artifact (page cache warm: best of 3 runs each).
`verify DIGEST` re-hashes every blob once; `verify DIR --key` re-hashes them and then model-signing hashes
the whole layout again to check the signature, so it reads every byte twice.
Index: --bundles synthetic bundles (the test suite's shape), --signed of them signed; times a cold index
rebuild, a warm filtered query in-process and through the CLI, and the blob scan `ls` did before the index.
Numbers go to stdout as JSON; the closing notes quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exportctl import catalog as index  # noqa: E402
from exportctl.bundle.read import read_bundle  # noqa: E402
from exportctl.canonical import digest_file  # noqa: E402
from exportctl.store import mediatypes as mt  # noqa: E402
from exportctl.store import referrers as ref  # noqa: E402
from exportctl.store.layout import Store  # noqa: E402
from exportctl.trust.keys import keygen  # noqa: E402
from exportctl.trust.signing import sign_bundle  # noqa: E402
from exportctl.trust.verify import verify_layout, verify_stored  # noqa: E402
from tests.unit.test_signing import fake_bundle  # noqa: E402  (the same bundle shape the tests use)


def best(fn, runs: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "exportctl", *args], check=True, capture_output=True, cwd=ROOT)


def throughput(scratch: Path, size_mb: int) -> dict[str, float]:
    store = Store.open(scratch / "big")
    keygen(scratch / "k.pem", scratch / "k.pub.pem")
    digest = fake_bundle(store, "big", artifact=(os.urandom(size_mb << 20), mt.WEIGHT_RAW))
    sign_bundle(store, digest, key=scratch / "k.pem", sigstore=False)
    ref.export(store, digest, scratch / "layout")
    info = read_bundle(store, digest)
    digests = [digest, info.config_digest, *(la.digest for la in info.layers)]
    blobs = [store.blob_path(d) for d in digests]
    total_mb = sum(p.stat().st_size for p in blobs) / 2**20
    seconds = {
        "sha256sum": best(lambda: subprocess.run(["sha256sum", *map(str, blobs)], check=True, capture_output=True)),
        "python_hashlib": best(lambda: [digest_file(p) for p in blobs]),
        "verify_digest": best(lambda: verify_stored(store, digest)),
        "verify_dir_with_key": best(lambda: verify_layout(scratch / "layout", scratch / "k.pub.pem")),
        "cli_verify_digest": best(lambda: cli("--store", str(store.root), "verify", digest)),
        "cli_verify_dir_with_key": best(lambda: cli("verify", str(scratch / "layout"), "--key",
                                                    str(scratch / "k.pub.pem"))),
    }
    out = {"blobs_mb": round(total_mb, 1),
           "verify_digest_vs_hashlib": round(seconds["python_hashlib"] / seconds["verify_digest"], 3)}
    for name, s in seconds.items():
        out[f"{name}_s"] = round(s, 3)
        out[f"{name}_mb_per_s"] = round(total_mb / s, 1)
    return out


def index_timing(scratch: Path, bundles: int, signed: int) -> dict[str, float]:
    store = Store.open(scratch / "many")
    checkpoint = "sha256:" + "ab" * 32
    digests = []
    start = time.perf_counter()
    for i in range(bundles):
        digests.append(fake_bundle(store, str(i), formats=("onnx",) if i % 3 else ("torchscript",),
                                   checkpoint=checkpoint if i % 2 else None,
                                   started=f"2026-{1 + i % 12:02d}-01T10:00:00+00:00"))
    made = time.perf_counter() - start
    keyid = ""
    for digest in digests[:signed]:
        keyid = sign_bundle(store, digest, key=scratch / "k.pem", sigstore=False)["keyid"]
    query = {"checkpoint": checkpoint, "fmt": "onnx", "since": "2026-06-01", "signed_by": keyid[:16]}
    rebuild = best(lambda: index.rebuild(store), runs=1)
    rows = index.query(store, **query)  # type: ignore[arg-type]
    warm = [best(lambda: index.query(store, **query), runs=1) for _ in range(50)]  # type: ignore[arg-type]
    args = ["--store", str(store.root), "ls", "--json", "--checkpoint", checkpoint, "--format", "onnx", "--since",
            "2026-06-01", "--signed-by", keyid[:16]]
    cli_times = [best(lambda: cli(*args), runs=1) for _ in range(5)]
    scan = best(lambda: [read_bundle(store, d) for d in (m.digest for m in store.manifests())], runs=1)
    return {"bundles": bundles, "signed": signed, "matching": len(rows), "create_bundles_s": round(made, 1),
            "index_rebuild_s": round(rebuild, 3), "query_ms_median": round(statistics.median(warm) * 1000, 2),
            "cli_ls_filtered_s_median": round(statistics.median(cli_times), 3),
            "cli_startup_s": round(best(lambda: cli("--help")), 3),
            "cli_version_s": round(best(lambda: cli("--version"), runs=5), 3),
            "cli_ls_s": round(best(lambda: cli("--store", str(store.root), "ls", "--json"), runs=5), 3),
            "load_average_1m": os.getloadavg()[0],
            "blob_scan_without_index_s": round(scan, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--signed", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exportctl-bench-verify-") as tmp:
        results = {"verify": throughput(Path(tmp), args.size_mb),
                   "index": index_timing(Path(tmp), args.bundles, args.signed)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
