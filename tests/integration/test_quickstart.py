"""The spine's acceptance, end to end with real exports, real runtimes and the real sandbox."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from exportctl import errors
from tests.conftest import QUICKSTART, build_json, check_golden, exportctl

pytestmark = pytest.mark.slow


def test_two_empty_stores_give_the_same_bundle_digest(quickstart_builds):
    """Built with -j 1 and a latency profile, and with -j 2 and --no-profile: one digest."""
    a, b = quickstart_builds["a"], quickstart_builds["b"]
    assert a["exit_code"] == errors.OK, a
    assert a["bundle"].startswith("sha256:")
    assert a["bundle"] == b["bundle"]
    assert {c["cell"] for c in a["cells"]} == {"onnx/fp32", "torchscript/fp32"}
    assert not any(c["cached"] for c in a["cells"] + b["cells"])
    unprofiled = json.loads(exportctl("show", b["bundle"], "--json", store=quickstart_builds["other_store"]).stdout)
    for cell in unprofiled["runs"][0]["cells"]:
        assert "profile" not in cell and cell["profile_skipped"] == "not measured: build --no-profile", cell


def test_run_record_keeps_each_cells_phases(quickstart_builds):
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    run = json.loads(exportctl("show", digest, "--json", store=store).stdout)["runs"][0]
    assert run["jobs"] == 1 and run["memory_budget_mib"] > 0
    for cell in run["cells"]:
        phases = cell["phases"]
        assert set(phases) == {"sandbox start", "imports", "export", "validate", "profile", "finish"}, phases
        assert phases["export"] > 0 and phases["profile"] > 0 and cell["peak_rss_mib"] > 0
        assert sum(phases.values()) <= cell["seconds"] + 0.5  # the host's time covers the cell's
    assert set(run["reference"]["phases"]) == {"sandbox start", "imports", "reference"}


def test_each_cell_reports_its_latency_at_one_thread_and_all_cores(quickstart_builds):
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    run = json.loads(exportctl("show", digest, "--json", store=store).stdout)["runs"][0]
    for cell in run["cells"]:
        profile = cell["profile"]
        assert (profile["warmup"], profile["runs"], profile["seconds"]) == (3, 100, 2.0), profile
        assert set(profile["threads"]) == {"1", "all"}
        assert profile["threads"]["1"]["threads"] == 1 and profile["threads"]["all"]["threads"] == len(
            os.sched_getaffinity(0))
        for timed in profile["threads"].values():
            assert 10 <= timed["runs"] <= 100  # stopped by the count or by the 2 s budget, never below 10 runs
            for stage in ("preprocess", "inference", "postprocess", "total"):
                ms = timed[f"{stage}_ms"]
                assert 0 < ms["p50"] <= ms["p90"] <= ms["p99"], (cell["cell"], stage, ms)
            assert timed["inference_ms"]["p50"] < timed["total_ms"]["p50"]
            # images/s = 1 / mean; half the runs take at least the median, so the mean is at least half of it
            assert 0 < timed["throughput_ips"] <= 2000 / timed["total_ms"]["p50"]
    flat = " ".join(exportctl("show", digest, store=store).stdout.split())  # rich wraps to the terminal's width
    assert "latency on the build machine" in flat and "infer" in flat
    audited = json.loads(exportctl("audit", digest, "--json", store=store).stdout)
    for cell in audited["cells"]:
        assert set(cell["latency"]) == {"1", "all"} and cell["latency"]["1"]["p50_ms"] > 0, cell


def test_rebuild_reruns_no_cell_and_plan_says_cached(quickstart_builds):
    store = quickstart_builds["store"]
    plan = json.loads(exportctl("plan", QUICKSTART, "--json", store=store).stdout)
    assert all(c["cached"] for c in plan["cells"]), plan
    code, again = build_json(QUICKSTART, store)
    assert code == 0 and again["bundle"] == quickstart_builds["a"]["bundle"]
    assert all(c["cached"] for c in again["cells"]), again
    runs = json.loads(exportctl("show", again["bundle"], "--json", store=store).stdout)["runs"]
    assert runs[-1]["reference"]["cached"] and all(c["cached"] for c in runs[-1]["cells"])


def test_show_reports_validation_numbers(quickstart_builds):
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    shown = json.loads(exportctl("show", digest[:19], "--json", store=store).stdout)
    for cell in shown["cells"]:
        v = cell["validation"]
        assert v["status"] == "passed" and not v["violations"]
        assert 0 <= v["tensor"]["output0"]["max_abs"] < 0.25
        assert v["tensor"]["output0"]["cosine"] > 0.99999
        assert v["detection"]["ref_boxes"] > 0, "the demo checkpoint must produce boxes to compare"
        assert v["detection"]["mean_iou"] > 0.95 and v["detection"]["class_agreement"] == 1.0
        gates = {g["gate"]: g for g in v["gates"]}  # every gate the cell owns ran and held
        assert {"output0.boxes max_abs", "output0.scores max_abs", "output0.scores cosine", "recall"} <= set(gates)
        assert all(g["ran"] and g["ok"] for g in gates.values()), gates
        assert v["artifact"] == {"output_shapes": [[1, 84, 2100]], "input_dtype": "float32", "applies_nms": False}
    text = exportctl("show", digest, store=store).stdout
    assert "max_abs=" in text and "onnx/fp32" in text and "gates 9/9 ok" in text


def test_manifest_shape_matches_golden(quickstart_builds, update_golden):
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    manifest = json.loads(exportctl("cat", digest, store=store).stdout)
    shape = {"artifactType": manifest["artifactType"], "config": manifest["config"]["mediaType"],
             "layers": [[la["mediaType"], la["annotations"]] for la in manifest["layers"]],
             "annotations": sorted(manifest["annotations"])}
    check_golden("quickstart-manifest-shape.json", json.dumps(shape, indent=2, sort_keys=True) + "\n", update_golden)


def test_verify_names_the_flipped_blob(quickstart_builds, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(quickstart_builds["store"], store)
    digest = quickstart_builds["a"]["bundle"]
    assert exportctl("verify", digest, store=store).returncode == 0
    manifest = json.loads(exportctl("cat", digest, store=store).stdout)
    for desc in [manifest["config"], *manifest["layers"]]:
        blob = store / "blobs" / "sha256" / desc["digest"].split(":")[1]
        original = blob.read_bytes()
        os.chmod(blob, 0o644)
        blob.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])
        done = exportctl("verify", digest, store=store, check=False)
        blob.write_bytes(original)
        assert done.returncode == errors.VERIFY_FAILED, done.stderr
        assert desc["digest"] in done.stderr


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="Debian's skopeo is not installed")
def test_export_is_a_layout_skopeo_reads(quickstart_builds, tmp_path):
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    dest = tmp_path / "layout"
    exportctl("export", digest, dest, store=store)
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{dest}"], capture_output=True, check=True).stdout
    assert raw == (store / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    assert exportctl("export", digest, dest, store=store, check=False).returncode == errors.STORE_ERROR


def test_impossibly_tight_tolerance_exits_2_and_stores_results(quickstart_builds, tmp_path):
    recipe = tmp_path / "tight.yaml"
    recipe.write_text(QUICKSTART.read_text().replace("input:", "validation:\n  tolerances:\n"
                                                     "    fp32: {max_abs: 1.0e-12}\ninput:"))
    store = quickstart_builds["store"]
    done = exportctl("build", recipe, store=store, check=False)
    assert done.returncode == errors.VALIDATION_FAILED, done.stderr
    assert "max_abs" in done.stderr and "> 1e-12" in done.stderr
    digest = next(w for w in done.stdout.split() if w.startswith("sha256:"))
    shown = json.loads(exportctl("show", digest, "--json", store=store).stdout)
    assert {c["status"] for c in shown["cells"]} == {"failed"}


def test_demo_checkpoint_as_a_pinned_path(quickstart_builds, tmp_path):
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    checkpoint = json.loads(exportctl("show", digest, "--json", store=store).stdout)["checkpoint"]
    (tmp_path / "model.pt").write_bytes(_blob(store, checkpoint))
    recipe = tmp_path / "pinned.yaml"
    recipe.write_text(f"name: pinned\ncheckpoint: {{path: model.pt, sha256: '{checkpoint}'}}\n"
                      "input: {imgsz: 320}\nformats: {onnx: {}}\n")
    plan = json.loads(exportctl("plan", recipe, "--json", store=store).stdout)
    assert plan["checkpoint"] == checkpoint


def _blob(store: Path, digest: str) -> bytes:
    return (store / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def test_artifacts_keep_ultralytics_metadata_with_the_fixed_clock(quickstart_builds):
    """ONNX metadata_props and TorchScript's config.txt stay (AutoBackend reads them); their dates are
    SOURCE_DATE_EPOCH's, not the build's wall clock."""
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    layers = {la["title"]: la for la in json.loads(exportctl("show", digest, "--json", store=store).stdout)["layers"]}
    fixed = b"1980-01-01T00:00:00+00:00"
    onnx_bytes = _blob(store, layers["onnx-fp32/model.onnx"]["digest"])
    assert b"names" in onnx_bytes and b"stride" in onnx_bytes and fixed in onnx_bytes
    with zipfile.ZipFile(io.BytesIO(_blob(store, layers["torchscript-fp32/model.torchscript"]["digest"]))) as z:
        config = next(n for n in z.namelist() if n.endswith("extra/config.txt"))
        meta = json.loads(z.read(config))
    assert meta["date"] == fixed.decode() and meta["imgsz"] == [320, 320] and meta["task"] == "detect"
    guide = json.loads(_blob(store, layers["onnx-fp32/metadata.json"]["digest"]))
    assert guide["created_at"] == "1980-01-01T00:00:00Z" and guide["input_shape"] == [320, 320, 3]
    assert guide["num_classes"] == len(guide["class_names"]) == 80 and guide["output_shape"] == [[1, 84, 2100]]


def test_degraded_isolation_is_recorded_and_never_served_to_isolated_builds(quickstart_builds, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(quickstart_builds["store"], store)
    code, unshared = build_json(QUICKSTART, store, "--sandbox", "unshare")
    assert code == 0 and not any(c["cached"] for c in unshared["cells"]), "an isolated result answered"
    assert unshared["bundle"] != quickstart_builds["a"]["bundle"]
    shown = json.loads(exportctl("show", unshared["bundle"], "--json", store=store).stdout)
    assert "network cut, filesystem not isolated" in shown["isolation_degraded"]
    code, isolated = build_json(QUICKSTART, store)
    assert isolated["bundle"] == quickstart_builds["a"]["bundle"] and all(c["cached"] for c in isolated["cells"])


def test_an_unchanged_rebuild_answers_from_the_journal_and_no_change_slips_past_it(quickstart_builds, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(quickstart_builds["store"], store)
    digest = quickstart_builds["a"]["bundle"]

    def build(recipe: Path = QUICKSTART, *extra: str, env: dict[str, str] | None = None) -> tuple[bool, dict]:
        done = exportctl("build", recipe, "--json", *extra, store=store, env=env)
        return "unchanged:" in done.stderr, json.loads(done.stdout)

    build()  # answered already if the fixture's build was journaled; journaled now either way
    fast, answered = build()
    assert fast and answered["bundle"] == digest and all(c["cached"] for c in answered["cells"])
    runs = json.loads(exportctl("show", digest, "--json", store=store).stdout)["runs"]
    assert runs[-1]["unchanged_since_run"] >= 1 and runs[-1]["reference"]["cached"]
    assert all(c["cached"] for c in runs[-1]["cells"]) and len(runs) == len(set(r["started"] for r in runs))
    fast, planned = build(QUICKSTART, "--require-isolation")  # other options: planned, a no-op from the cache
    assert not fast and planned == answered  # the answer is what the full no-op says, to the byte
    fast, _ = build(env={"EXPORTCTL_NOOP_PROBE": "1"})
    assert not fast, "a changed environment variable was answered from the journal"
    manifest = store / "blobs" / "sha256" / digest.split(":")[1]
    manifest.unlink()
    fast, again = build()
    assert not fast and again["bundle"] == digest and manifest.is_file(), "an incomplete bundle was served"

    recipe = tmp_path / "quickstart.yaml"
    shutil.copy(QUICKSTART, recipe)
    time.sleep(2.1)  # a path changed within noop.RACY_NS of a build's start is never journaled
    build(recipe)
    fast, _ = build(recipe)
    assert fast
    with recipe.open("a") as f:
        f.write("# a comment changes no cell\n")
    fast, edited = build(recipe)
    assert not fast and edited["bundle"] == digest and all(c["cached"] for c in edited["cells"])
