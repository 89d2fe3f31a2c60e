"""Issue 11's acceptance on real quickstart builds: concurrent builds into one store, SIGKILLs at random
instants of build, pull, sign and gc, a build on a full disk, and signing refused for a failed build.

Every store starts as a copy of the session's quickstart store (its actions cached), so each case costs
seconds, not the minutes of a cold build; kills that land inside a cell come from dropping one cell's
cache entry before some of the builds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.maintenance.fsck import check
from exportctl.store.layout import Store
from tests.conftest import QUICKSTART, build_json, exportctl
from tests.unit.test_signing import snapshot

pytestmark = pytest.mark.slow


def _seeded(quickstart_builds: dict, dest: Path) -> Path:
    shutil.copytree(quickstart_builds["store"], dest)
    return dest


def _variant(tmp_path: Path, name: str, text: str | None = None) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text((text or QUICKSTART.read_text()).replace("name: quickstart", f"name: {name}"))
    return path


def _fsck(store: Path) -> dict:
    return check(Store.open(store, create=False), repair=False, say=lambda _: None)


def _popen(store: Path, *args: str | Path) -> subprocess.Popen[str]:
    argv = [str(a) for a in args]
    if argv[0] == "build":
        argv += ["--backend", "local"]
    return subprocess.Popen([sys.executable, "-m", "exportctl", *argv, "--json"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "EXPORTCTL_STORE": str(store)})


def test_concurrent_builds_into_one_store(quickstart_builds: dict, tmp_path: Path) -> None:
    store = _seeded(quickstart_builds, tmp_path / "store")
    other = _variant(tmp_path, "quickstart-b")
    recipes = [QUICKSTART, other, QUICKSTART, other, QUICKSTART, other]
    started = time.monotonic()
    procs = [_popen(store, "build", r) for r in recipes]
    outputs = [p.communicate() for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    print(f"{len(procs)} concurrent builds: {time.monotonic() - started:.1f}s")
    for code, _, stderr in results:
        assert code == 0, stderr
    digests = [json.loads(stdout)["bundle"] for _, stdout, _ in results]
    assert set(digests[0::2]) == {quickstart_builds["a"]["bundle"]} and len(set(digests[1::2])) == 1
    report = _fsck(store)
    assert report["problems"] == [] and report["litter"] == [] and report["bundles"] == 2
    runs = sorted(p.name for p in (store / "exportctl" / "runs" / digests[1][7:]).iterdir())
    assert runs == ["1.json", "2.json", "3.json"]  # one record per build: none lost, none doubled


def _blob_names(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "blobs" / "sha256").iterdir())


@pytest.mark.registry
def test_sigkill_at_random_instants_of_build_pull_sign_and_gc(quickstart_builds: dict, plain_registry,
                                                               tmp_path: Path) -> None:
    """>= 50 SIGKILLs, >= 10 in each command: fsck clean after each; reruns give the clean store's digest.

    `pull` fetches the signed quickstart bundle from a real docker-registry into a fresh store each time; after
    its kill the same pull runs again there and must leave exactly what a clean pull leaves."""
    rng = random.Random(11)
    store = _seeded(quickstart_builds, tmp_path / "store")
    clean = quickstart_builds["a"]["bundle"]
    exportctl("keygen", tmp_path / "k.pem")
    exportctl("sign", clean, "--key", tmp_path / "k.pem", store=store)  # the pull brings referrers too
    ref = f"{plain_registry.host}/hardening/quickstart:v1"
    exportctl("push", clean, ref, store=store)
    plan = json.loads(exportctl("plan", QUICKSTART, "--json", store=store).stdout)
    onnx_key = next(c["key"] for c in plan["cells"] if c["cell"] == "onnx/fp32")
    args_of = {"build": ("build", QUICKSTART), "pull": ("pull", ref),
               "sign": ("sign", clean, "--key", tmp_path / "k.pem"), "gc": ("gc",)}
    pulls = itertools.count()

    def target(op: str) -> Path:
        if op != "pull":
            return store
        fresh = tmp_path / f"pulled-{next(pulls)}"
        Store.open(fresh)  # an empty store, as a user's first pull creates it
        return fresh

    # Kill windows from how long each command takes here, now (a quiet machine finishes far sooner than a
    # loaded one): the instant is drawn inside the command's own run time, so nearly every run is killed.
    windows, clean_pull = {}, Path()
    for op, args in args_of.items():
        where, begun = target(op), time.monotonic()
        done = _popen(where, *args)
        done.communicate()
        windows[op] = max(0.5, time.monotonic() - begun)
        assert done.returncode == 0, (op, done.returncode)
        if op == "pull":
            clean_pull = where
    pulled_blobs, pulled_index = _blob_names(clean_pull), (clean_pull / "index.json").read_bytes()
    clean_report = _fsck(clean_pull)  # referrers: the signature, the provenance and the ML-BOM
    assert clean_report["bundles"] == 1 and clean_report["referrers"] == 3 and clean_report["litter"] == []
    kills, runs, mid_pull, started = dict.fromkeys(args_of, 0), 0, 0, time.monotonic()
    while sum(kills.values()) < 50 or min(kills.values()) < 10:
        runs += 1
        assert runs < 250, f"processes keep finishing before the kill (windows {windows}, kills {kills})"
        op = tuple(args_of)[runs % 4]
        if op == "build" and runs % 12 == 0:  # this build runs a cell: the kill may land inside it
            (store / "exportctl" / "actions" / f"{onnx_key[7:]}.json").unlink(missing_ok=True)
            shutil.rmtree(store / "exportctl" / "noop", ignore_errors=True)  # else answered unchanged: no cell
        where = target(op)
        proc = _popen(where, *args_of[op])
        time.sleep(rng.uniform(0.05, 0.95) * windows[op])
        killed = proc.poll() is None
        if killed:
            proc.kill()
            kills[op] += 1
        proc.communicate()
        report = _fsck(where)
        assert report["problems"] == [], (op, report["problems"])
        if op == "pull":  # the same pull again completes and leaves what a clean pull leaves, and no litter
            mid_pull += int(killed and bool(report["litter"] or _blob_names(where)))  # it had begun writing
            again = exportctl("pull", ref, "--json", store=where)
            assert json.loads(again.stdout)["bundle"] == clean
            report = _fsck(where)
            assert report["problems"] == [] and report["litter"] == [], report
            assert _blob_names(where) == pulled_blobs and (where / "index.json").read_bytes() == pulled_index
            shutil.rmtree(where)
        if runs % 15 == 0:
            code, rerun = build_json(QUICKSTART, store)
            assert code == 0 and rerun["bundle"] == clean
    code, rerun = build_json(QUICKSTART, store)
    assert code == 0 and rerun["bundle"] == clean
    assert exportctl("verify", clean, store=store).returncode == 0
    report = _fsck(store)
    assert report["problems"] == [] and report["litter"] == []  # the last build swept the killed ones' temps
    print(f"SIGKILLs {kills} ({sum(kills.values())}; {mid_pull} pulls killed after writing began) in {runs} "
          f"runs, windows { {op: round(w, 2) for op, w in windows.items()} }, {time.monotonic() - started:.0f}s")


def test_build_refuses_to_sign_a_failed_build(quickstart_builds: dict, tmp_path: Path) -> None:
    store = _seeded(quickstart_builds, tmp_path / "store")
    exportctl("keygen", tmp_path / "k.pem")
    tight = _variant(tmp_path, "tight", QUICKSTART.read_text().split("  torchscript:")[0]
                     + "validation:\n  tolerances:\n    fp32: {max_abs: 0.0000001}\n")
    done = exportctl("build", tight, "--sign-key", tmp_path / "k.pem", store=store, check=False)
    assert done.returncode == errors.VALIDATION_FAILED and "--sign-failed" in done.stderr, done.stderr
    digest = json.loads(exportctl("ls", "--json", store=store).stdout)
    failed = next(b["bundle"] for b in digest if b["name"] == "tight")
    assert json.loads(exportctl("audit", failed, "--json", store=store).stdout)["signatures"] == []
    done = exportctl("build", tight, "--sign-key", tmp_path / "k.pem", "--sign-failed", store=store, check=False)
    assert done.returncode == errors.VALIDATION_FAILED
    assert json.loads(exportctl("audit", failed, "--json", store=store).stdout)["signatures"]


def test_build_on_a_full_disk_exits_6_and_changes_nothing(quickstart_builds: dict, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the disk-full test mounts a tmpfs: run the slow tier as root")
    used = sum(p.stat().st_size for p in Path(quickstart_builds["store"]).rglob("*") if p.is_file())
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used + (3 << 20)}", "tmpfs", str(mount)], check=True)
    try:
        store = _seeded(quickstart_builds, mount / "store")
        variant = _variant(tmp_path, "opset18", QUICKSTART.read_text().replace("opset: 17", "opset: 18"))
        before = snapshot(store)
        done = exportctl("build", variant, "--json", store=store, check=False)
        assert done.returncode == errors.STORE_ERROR, done.stderr
        assert str(store) in done.stderr and "needs more than" in done.stderr and "Traceback" not in done.stderr
        assert json.loads(done.stdout)["exit_code"] == errors.STORE_ERROR
        assert snapshot(store) == before
    finally:
        subprocess.run(["umount", str(mount)], check=True)
