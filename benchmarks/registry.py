"""Push and pull times and bytes of a stored bundle against a real registry (the registry tier's docker-registry).

    python benchmarks/registry.py DIGEST [--store DIR]

Starts Debian's docker-registry on 127.0.0.1 with an empty data directory (tests/registry/service.py), then
through the CLI, as a user would: a first push (every blob uploaded), a second push of the unchanged bundle
(no blob uploaded), a push to a second repository (blobs mounted, none uploaded), and a pull into an empty
store (every blob streamed and checked). Numbers go to stdout as JSON.
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

from tests.registry import service  # noqa: E402


def _cli(*args: str, store: Path) -> tuple[float, dict[str, object]]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "exportctl", *args, "--json"], capture_output=True, text=True,
                          env={**os.environ, "EXPORTCTL_STORE": str(store)}, check=True)
    return round(time.monotonic() - start, 2), json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("digest")
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    store = args.store or Path(os.environ.get("EXPORTCTL_STORE", "~/.local/share/exportctl/store")).expanduser()
    if reason := service.ensure_packages():
        sys.exit(reason)
    with tempfile.TemporaryDirectory(prefix="exportctl-bench-") as tmp, service.registry(Path(tmp) / "reg") as reg:
        ref = f"{reg.host}/bench/bundle:v1"
        results: dict[str, object] = {}
        for name, target in (("first_push", ref), ("second_push", ref), ("other_repo_push", f"{reg.host}/b2/x:v1")):
            seconds, data = _cli("push", args.digest, target, store=store)
            results[name] = {"seconds": seconds, **{k: data[k] for k in ("uploaded_blobs", "uploaded_bytes",
                                                                       "skipped_blobs", "mounted_blobs")}}
        seconds, data = _cli("pull", ref, store=Path(tmp) / "empty-store")
        results["pull"] = {"seconds": seconds, "downloaded_bytes": data["downloaded_bytes"],
                           "referrers": len(data["referrers"])}  # type: ignore[arg-type]
    print(json.dumps({"bundle": args.digest, **results}, indent=2))


if __name__ == "__main__":
    main()
