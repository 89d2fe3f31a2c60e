"""`gc` frees what nothing references and nothing else; `fsck` finds every inconsistency and repairs it
without deleting a valid blob. Stores of small real bundles (the signing tests' shape), with the leftovers a
killed build leaves: temp files and cell output folders of dead processes, blobs no manifest names yet,
cache entries whose blobs are gone, run records of no bundle.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from exportctl import errors
from exportctl.canonical import digest_bytes
from exportctl.store import referrers as ref
from exportctl.store.housekeeping import blob_files, temp_root
from exportctl.store.layout import Store
from exportctl.trust.keys import keygen
from exportctl.trust.signing import sign_bundle
from exportctl.trust.verify import verify_stored
from tests.unit.test_signing import exportctl, fake_bundle


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def litter(store: Store) -> dict[str, object]:
    """What killed builds leave behind; returns what gc must remove."""
    pid = dead_pid()
    orphan = store.put_bytes(b"written by a build killed before its manifest", "application/octet-stream")
    (store.root / "blobs" / "sha256" / f".tmp-{pid}-deadbeef").write_bytes(b"half a blob")
    out = temp_root(store) / f".tmp-{pid}-cell" / "out"
    out.mkdir(parents=True)
    (out / "model.onnx").write_bytes(b"x" * 1000)
    gone = digest_bytes(b"a blob that was deleted by hand")
    cache = store.root / "exportctl" / "actions" / f"{'ab' * 32}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"blobs": [gone], "outputs": {}, "returncode": 0, "log": gone, "seconds": 1}))
    (store.root / "exportctl" / "runs" / ("cd" * 32)).mkdir(parents=True)
    return {"orphan": orphan.digest, "cache": cache, "cell_out": out.parent}


def test_gc_frees_leftovers_and_only_them(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    bundles = [fake_bundle(store, salt=str(i), started=f"2026-03-{i + 1:02d}T10:00:00+00:00") for i in range(20)]
    for digest in bundles[:3]:  # the three oldest are signed
        sign_bundle(store, digest, key=tmp_path / "k.pem", sigstore=False)
    live_cache = store.root / "exportctl" / "actions" / f"{'ef' * 32}.json"
    live_cache.parent.mkdir(parents=True, exist_ok=True)
    kept_by_cache = store.put_bytes(b"a cached demo checkpoint", "application/octet-stream").digest
    live_cache.write_text(json.dumps({"blobs": [kept_by_cache]}))
    left = litter(store)
    blobs_before = {d for d, _ in blob_files(store)}

    dry = json.loads(exportctl("gc", "--dry-run", "--json", store=store.root).stdout)
    assert dry["blobs_removed"] == 1 and dry["temp_removed"] == 2 and {d for d, _ in blob_files(store)} == blobs_before
    report = json.loads(exportctl("gc", "--json", store=store.root).stdout)
    assert report == {**dry, "dry_run": False}
    assert report["bundles_removed"] == [] and report["cache_entries_removed"] == 1
    assert report["run_records_removed"] == 1 and report["bytes_freed"] == len(
        b"written by a build killed before its manifest")
    remaining = {d for d, _ in blob_files(store)}
    assert remaining == blobs_before - {left["orphan"]} and kept_by_cache in remaining
    assert not Path(str(left["cell_out"])).exists() and not Path(str(left["cache"])).exists()
    for digest in bundles:
        verify_stored(store, digest)
    assert json.loads(exportctl("fsck", "--json", store=store.root).stdout)["problems"] == []

    # Bundles: the 5 newest of the recipe stay, and the 3 signed ones (older) unless --include-signed; the no-op
    # journal's entries go with their bundles (and an unreadable one), the others stay.
    journal = store.root / "exportctl" / "noop"
    journal.mkdir()
    for name, bundle in (("old", bundles[3]), ("new", bundles[-1])):
        (journal / f"{name}.json").write_text(json.dumps({"bundle": bundle}))
    (journal / "torn.json").write_text("{")
    report = json.loads(exportctl("gc", "--keep-last", "5", "--json", store=store.root).stdout)
    assert set(report["bundles_removed"]) == set(bundles[3:15]) and report["bundles_kept"] == 8
    assert report["journal_entries_removed"] == 2 and sorted(p.name for p in journal.iterdir()) == ["new.json"]
    listed = {b["bundle"] for b in json.loads(exportctl("ls", "--json", store=store.root).stdout)}
    assert listed == set(bundles[:3]) | set(bundles[15:])
    for digest in listed:
        verify_stored(store, digest)
    report = json.loads(exportctl("gc", "--keep-last", "5", "--include-signed", "--json",
                                  store=store.root).stdout)
    assert set(report["bundles_removed"]) == set(bundles[:3]) and report["referrers_removed"] == 6
    assert json.loads(exportctl("fsck", "--json", store=store.root).stdout)["problems"] == []
    assert exportctl("gc", "--older-than", "soon", store=store.root, check=False).returncode == errors.CONFIG_ERROR


def test_gc_waits_for_a_running_build(tmp_path: Path) -> None:
    """A writer holding the store's lease writes a blob, then names it: gc, started meanwhile, keeps it."""
    store = Store.open(tmp_path / "store")
    fake_bundle(store)
    writer = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from exportctl.store.layout import Store
from exportctl.store.lease import lease
from tests.unit.test_signing import fake_bundle
store = Store.open(Path({str(store.root)!r}))
with lease(store.root, "build"):
    print("holding", flush=True)
    blob = store.put_bytes(b"fresh, not yet in a manifest", "application/octet-stream")
    time.sleep(8)  # longer than gc's start-up on a loaded machine
    fake_bundle(store, salt="fresh", artifact=(b"fresh, not yet in a manifest", blob.mediaType))
"""], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
    started = time.monotonic()
    done = exportctl("gc", "--json", store=store.root)
    assert writer.wait() == 0 and time.monotonic() - started > 3
    assert "waiting for the store lease" in done.stderr and json.loads(done.stdout)["blobs_removed"] == 0
    assert digest_bytes(b"fresh, not yet in a manifest") in {d for d, _ in blob_files(store)}


def test_fsck_finds_and_repairs_without_deleting_a_valid_blob(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    keygen(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    good, broken, corrupt = (fake_bundle(store, salt=s) for s in ("good", "broken", "corrupt"))
    sign_bundle(store, good, key=tmp_path / "k.pem", sigstore=False)
    litter(store)
    from exportctl.bundle.read import read_bundle

    store.blob_path(read_bundle(store, broken).cells[0].artifact).unlink()  # a dangling index row
    bad = store.blob_path(read_bundle(store, corrupt).cells[0].artifact)
    bad.chmod(0o644)
    bad.write_bytes(b"bit rot")
    valid = {d for d, p in blob_files(store) if p != bad}
    done = exportctl("fsck", "--json", store=store.root, check=False)
    assert done.returncode == errors.VERIFY_FAILED
    problems = json.loads(done.stdout)["problems"]
    assert any("is corrupt" in p for p in problems) and any(broken in p for p in problems)
    assert any("stale temp" in p for p in json.loads(done.stdout)["litter"])
    assert any("action cache entry" in p for p in problems)
    repaired = json.loads(exportctl("fsck", "--repair", "--json", store=store.root).stdout)
    assert repaired["ok"] and repaired["repaired"]
    assert valid <= {d for d, _ in blob_files(store)}  # never deletes a valid blob
    assert (store.root / "exportctl" / "quarantine" / bad.name).read_bytes() == b"bit rot"
    assert json.loads(exportctl("fsck", "--json", store=store.root).stdout)["problems"] == []
    assert [b["bundle"] for b in json.loads(exportctl("ls", "--json", store=store.root).stdout)] == [good]
    assert exportctl("verify", good, store=store.root).returncode == 0
    assert len(ref.load(store, good)) == 2


def test_a_stale_lease_is_named_and_removed(tmp_path: Path) -> None:
    """A lease note left by a killed process is removed with a message; the live holder is named while waited for."""
    import socket

    store = Store.open(tmp_path / "store")
    fake_bundle(store)
    notes = store.root / "exportctl" / "leases"
    notes.mkdir(parents=True, exist_ok=True)  # Store.open makes it; a note is what the test adds
    dead = dead_pid()
    (notes / f"{socket.gethostname()}:{dead}:build").touch()
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from exportctl.store.lease import lease
with lease(Path({str(store.root)!r}), "build"):
    print("holding", flush=True)
    time.sleep(8)  # longer than gc's start-up on a loaded machine
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    done = exportctl("gc", store=store.root)
    assert holder.wait() == 0
    assert f"removed a stale lease of process {dead}" in done.stderr, done.stderr
    assert f"held by {socket.gethostname()}:{holder.pid}:build" in done.stderr
    assert not any(notes.iterdir())
