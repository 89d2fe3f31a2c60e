"""Verification throughput against Python's own sha256 over the same bytes, and `ls` filters over 1 000 bundles.

    python benchmarks/verify.py [--size-mb 512] [--bundles 1000] [--signed 100] [--no-index]

(`--size-mb 1024` for the 1 GB figure; each `*_vs_hashlib` is that verification's throughput over Python's
`hashlib.file_digest` sha256 of the bundle's blobs: 1.0 is "hashing the bytes once, and nothing else". A `cli_*`
run is a new process, and a new process hashes page-cached bytes ~1.5x slower than a warm one here (0.40 s vs
0.24-0.37 s for 256 MB), so `cli_*_vs_hashlib_new_process` also compares it with `python -c` hashing the same blobs
in a new process: the like-for-like figure.)

Throughput: a synthetic bundle with a --size-mb artifact, signed, and a second, unsigned one with the same
artifact (page cache warm: best of 3 runs each). `verify DIGEST` of the signed one re-hashes its blobs and
checks the signature by the key the store recorded; `verify DIR --key` checks the exported layout. The
signature check takes model-signing's manifest digests from the blob check (canonical.HashLedger), so every
byte is read once. `cli_*` run the command as a user does (with compiled bytecode, as installed); importing
model-signing is part of a signed bundle's time: `cli_import_model_signing_for_keys` alone is what exportctl
imports for a key signature (trust/model_signing_import.py: no sigstore), `cli_import_model_signing` the whole
package with its Sigstore signer, for comparison. The 1-minute load average is reported with the numbers
(other processes share the cores).
Index: --bundles synthetic bundles (the test suite's shape), --signed of them signed; times a cold index
rebuild, a warm filtered query in-process and through the CLI, and the blob scan `ls` did before the index.
Numbers go to stdout as JSON; the closing notes quote them.
"""

from __future__ import annotations

import argparse
import hashlib
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

from benchmarks.startup import bytecode_env  # noqa: E402
from exportctl import catalog as index  # noqa: E402
from exportctl.bundle.read import read_bundle  # noqa: E402
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


STARTUP_DIR = Path(tempfile.gettempdir()) / "exportctl-bench-startup"  # its bytecode cache


# Python's sha256 as a command: a new interpreter hashing the blobs, as `exportctl verify` is a new process.
HASH_IN_NEW_PROCESS = "import hashlib, sys\nfor p in sys.argv[1:]:\n    hashlib.file_digest(open(p, 'rb'), 'sha256')"


def cli(*args: str) -> None:
    # With compiled bytecode, as an installed exportctl has it (see benchmarks/startup.py).
    subprocess.run([sys.executable, "-m", "exportctl", *args], check=True, capture_output=True, cwd=ROOT,
                   env=bytecode_env(STARTUP_DIR))


def python_sha256(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as f:
            hashlib.file_digest(f, "sha256")


def throughput(scratch: Path, size_mb: int) -> dict[str, float]:
    store = Store.open(scratch / "big")
    keygen(scratch / "k.pem", scratch / "k.pub.pem")
    artifact = (os.urandom(size_mb << 20), mt.WEIGHT_RAW)
    digest = fake_bundle(store, "big", artifact=artifact)
    unsigned = fake_bundle(store, "unsigned", artifact=artifact)  # the same artifact blob, no signature
    del artifact
    sign_bundle(store, digest, key=scratch / "k.pem", sigstore=False)
    ref.export(store, digest, scratch / "layout")

    def blobs_of(bundle: str) -> list[Path]:
        info = read_bundle(store, bundle)
        return [store.blob_path(d) for d in (bundle, info.config_digest, *(la.digest for la in info.layers))]

    sizes = {name: sum(p.stat().st_size for p in blobs_of(b)) / 2**20 for name, b in
             (("signed", digest), ("unsigned", unsigned))}
    load_before = os.getloadavg()[0]
    seconds = {
        "sha256sum": best(lambda: subprocess.run(["sha256sum", *map(str, blobs_of(digest))], check=True,
                                                 capture_output=True)),
        "python_hashlib": best(lambda: python_sha256(blobs_of(digest))),
        "python_hashlib_new_process": best(lambda: subprocess.run(
            [sys.executable, "-c", HASH_IN_NEW_PROCESS, *map(str, blobs_of(digest))], check=True)),
        "verify_digest": best(lambda: verify_stored(store, digest)),
        "verify_digest_unsigned": best(lambda: verify_stored(store, unsigned)),
        "verify_dir_with_key": best(lambda: verify_layout(scratch / "layout", scratch / "k.pub.pem")),
        "cli_verify_digest": best(lambda: cli("--store", str(store.root), "verify", digest)),
        "cli_verify_digest_unsigned": best(lambda: cli("--store", str(store.root), "verify", unsigned)),
        "cli_import_model_signing": best(lambda: subprocess.run([sys.executable, "-c", "import model_signing"],
                                                                check=True, env=bytecode_env(STARTUP_DIR))),
        "cli_import_model_signing_for_keys": best(lambda: subprocess.run(
            [sys.executable, "-c", "import exportctl.trust.model_signing_import"], check=True, cwd=ROOT,
            env=bytecode_env(STARTUP_DIR))),
        "cli_verify_dir_with_key": best(lambda: cli("verify", str(scratch / "layout"), "--key",
                                                    str(scratch / "k.pub.pem"))),
    }
    out: dict[str, float] = {"blobs_mb": round(sizes["signed"], 1), "load_average_1m_before": load_before,
                             "load_average_1m_after": os.getloadavg()[0]}
    hashlib_rate = sizes["signed"] / seconds["python_hashlib"]
    new_process_rate = sizes["signed"] / seconds["python_hashlib_new_process"]
    for name, s in seconds.items():
        rate = (sizes["unsigned"] if name.endswith("unsigned") else sizes["signed"]) / s
        out[f"{name}_s"] = round(s, 3)
        out[f"{name}_mb_per_s"] = round(rate, 1)
        if name.startswith(("verify", "cli_verify")):
            out[f"{name}_vs_hashlib"] = round(rate / hashlib_rate, 3)
        if name.startswith("cli_verify"):  # like for like: a new process each, reading the same cached bytes
            out[f"{name}_vs_hashlib_new_process"] = round(rate / new_process_rate, 3)
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
    parser.add_argument("--no-index", action="store_true", help="Only the throughput (benchmarks/startup.py "
                                                                 "times `ls` start-up on its own).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exportctl-bench-verify-") as tmp:
        results: dict[str, object] = {"verify": throughput(Path(tmp), args.size_mb)}
        if not args.no_index:
            results["index"] = index_timing(Path(tmp), args.bundles, args.signed)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
