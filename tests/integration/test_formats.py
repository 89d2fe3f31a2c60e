"""Every format x precision (recipes/full-matrix.yaml) on the trained test detector, end to end.

Each cell is validated in its own runtime, or (CoreML off macOS) checked structurally and marked so, never
passed; two clean builds give the same bytes per cell, and partial builds merge into the full build's digest.
Build A (the session's `full_matrix`, tests/conftest.py) and build B (three `--only` builds, then `merge`) run
side by side: cells are single-threaded, so the processes share the cores instead of queueing. The detector's
regeneration runs in the background from the start of the session (tests/regenerations.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from exportctl import errors, tasks
from exportctl.env.locks import platform_tag
from exportctl.env.uvenv import ensure_env
from exportctl.recipe.model import Precision
from tests.conftest import DETECTOR, FULL_MATRIX, ROOT, MatrixBuild, build_json, exportctl, full_matrix_recipe
from tests.fixtures import regenerated
from tests.fixtures.shapes import write_scenes
from tests.regenerations import Regenerations

pytestmark = pytest.mark.slow

FORMATS = {"onnx": ("fp32", "fp16"), "torchscript": ("fp32",), "openvino": ("fp32", "fp16", "int8"),
           "litert": ("fp32", "w8a32", "int8", "w8a16"), "coreml": ("fp32", "fp16", "int8")}
PARTS = (("onnx", "torchscript", "openvino"), ("litert",), ("coreml",))


@pytest.fixture(scope="session")
def matrix(full_matrix: MatrixBuild) -> dict:
    """Build A (the session's full build, in the background) and build B (three `--only` builds, then `merge`) side
    by side."""
    base, recipe = full_matrix.recipe.parent, full_matrix.recipe
    store_b = base / "store-b"
    parts = []
    for group in PARTS:
        _, part = build_json(recipe, store_b, *(f"--only={fmt}" for fmt in group))
        parts.append(part)
    merged = json.loads(exportctl("merge", *(p["bundle"] for p in parts), "--json", store=store_b).stdout)
    a = full_matrix.result()
    return {"recipe": recipe, "scenes": full_matrix.scenes, "store": full_matrix.store, "store_b": store_b,
            "a": a, "parts": parts, "merged": merged}


def _show(store: Path, digest: str) -> dict:
    return json.loads(exportctl("show", digest, "--json", store=store).stdout)


def test_every_cell_is_validated_in_its_runtime_or_honestly_marked(matrix: dict) -> None:
    cells = {c["cell"]: c for c in matrix["a"]["cells"]}
    assert set(cells) == {f"{f}/{p}" for f, ps in FORMATS.items() for p in ps}
    assert matrix["a"]["exit_code"] == errors.OK
    for name, cell in cells.items():
        v = cell["validation"]
        if name.startswith("coreml/"):  # converted on Linux, predicted only on macOS
            assert cell["status"] == "not-validated" and "requires macOS" in v["reason"], v
            assert v["structure"] and all(c["ok"] for c in v["structure"]), v["structure"]
            assert "accuracy" not in v  # its runtime cannot run here: nothing measured, nothing claimed
        else:
            assert cell["status"] == "passed" and not v["violations"], (name, v["violations"])
            assert v["detection"]["ref_boxes"] >= 20, "the trained detector must find shapes to compare"
            assert v["tensor"]["output0"]["histogram"]["counts"] and v["tensor"]["output0"]["histogram"]["edges"]
            _check_accuracy(name, v)
    text = exportctl("show", matrix["a"]["bundle"], store=matrix["store"]).stdout
    assert "not-validated" in text and "requires macOS" in text and "map50_95=" in text
    measured = json.loads(_layer(matrix["store"], matrix["a"]["bundle"], "reference/accuracy.json").read_text())
    assert measured["dataset"]["images"] == 48 and set(measured["metrics"]) == {"map50_95", "map50"}


def test_every_runnable_cell_reports_its_latency_and_coreml_says_why_not(matrix: dict) -> None:
    run = _show(matrix["store"], matrix["a"]["bundle"])["runs"][0]  # the full build's own
    for cell in run["cells"]:
        if cell["cell"].startswith("coreml/"):
            assert "profile" not in cell and "requires macOS" in cell["profile_skipped"], cell
            continue
        timed = cell["profile"]["threads"]
        assert timed["1"]["threads"] == 1 and timed["all"]["threads"] == len(os.sched_getaffinity(0)), cell
        assert all(0 < t["inference_ms"]["p50"] <= t["total_ms"]["p50"] for t in timed.values()), cell


def _check_accuracy(name: str, v: dict) -> None:
    """Every measured cell has the PyTorch reference's box mAP on the labelled set, its own, the drop and its gate."""
    acc = v["accuracy"]
    assert acc["dataset"]["images"] == 48 and acc["dataset"]["digest"].startswith("sha256:")
    gates = {g["gate"]: g for g in v["gates"]}
    for metric in ("map50_95", "map50"):
        m = acc["metrics"][metric]
        assert m["reference"] > (0.8 if metric == "map50_95" else 0.95), (name, m)  # the trained detector
        assert m["drop"] == pytest.approx(m["reference"] - m["artifact"]) and m["ok"], (name, m)
        assert gates[f"accuracy.{metric}"]["limit"] == m["max_drop"] and gates[f"accuracy.{metric}"]["ok"]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_is_byte_reproducible_across_two_clean_builds(matrix: dict, fmt: str) -> None:
    a = {c["cell"]: c["artifact"] for c in matrix["a"]["cells"] if c["cell"].startswith(f"{fmt}/")}
    b = {c["cell"]: c["artifact"] for p in matrix["parts"] for c in p["cells"] if c["cell"].startswith(f"{fmt}/")}
    assert len(a) == len(FORMATS[fmt]) and a == b


def test_partial_builds_merge_into_the_full_builds_digest(matrix: dict) -> None:
    assert all(len(p["cells"]) < len(matrix["a"]["cells"]) for p in matrix["parts"])
    assert matrix["merged"]["bundle"] == matrix["a"]["bundle"]
    shown = _show(matrix["store_b"], matrix["merged"]["bundle"])
    assert {c["platform"] for c in shown["cells"]} == {platform_tag()}
    assert shown["runs"][-1]["merged_from"] == [p["bundle"] for p in matrix["parts"]]
    # the merged bundle shows each cell's facts (latency included) from the part that built it
    built = {c["cell"]: c for c in shown["runs"][-1]["cells"]}
    assert set(built) == {c["cell"] for c in matrix["a"]["cells"]}
    assert all(("profile" in c) != n.startswith("coreml/") and c["part"] in shown["runs"][-1]["merged_from"]
               for n, c in built.items()), built


def test_quantized_cells_gate_on_task_metrics_and_the_bundle_records_calibration(matrix: dict) -> None:
    config = json.loads(exportctl("cat", json.loads(exportctl("cat", matrix["a"]["bundle"], store=matrix["store"])
                                                    .stdout)["config"]["digest"], store=matrix["store"]).stdout)
    calibration = config["exportctl"]["calibration"]
    assert calibration["source"] == "calibration" and calibration["count"] == 300
    for cell in matrix["a"]["cells"]:
        precision = Precision(cell["cell"].split("/")[1])
        if cell["status"] != "passed" or precision not in (Precision.int8, Precision.w8a16, Precision.w8a32):
            continue
        v = cell["validation"]
        assert v["tolerance"] == tasks.default_task().tolerance(precision.value)  # the detect keys only
        det = v["detection"]
        assert det["recall"] >= v["tolerance"]["recall_min"] and det["class_agreement"] >= 0.95, (cell["cell"], det)


def test_blank_calibration_fails_its_gate_with_exit_2(matrix: dict, tmp_path: Path) -> None:
    write_scenes(tmp_path / "blank", 64, seed=0, size=160, blank=True)
    text = FULL_MATRIX.read_text().replace("images: ../tests/fixtures/scenes/calibration\n  count: 300",
                                           f"images: {tmp_path / 'blank'}")
    recipe = full_matrix_recipe(tmp_path, matrix["scenes"], text)
    done = exportctl("build", recipe, "--only", "openvino/int8", "--json", store=matrix["store"], check=False)
    assert done.returncode == errors.VALIDATION_FAILED, done.stderr
    assert "openvino/int8" in done.stderr and "recall" in done.stderr
    # the accuracy on the labelled set collapses too, and its gate names the metric
    assert "accuracy.map50_95" in done.stderr and "accuracy.map50 " in done.stderr
    (cell,) = json.loads(done.stdout)["cells"]
    drop = cell["validation"]["accuracy"]["metrics"]["map50_95"]
    assert drop["ok"] is False and drop["drop"] > drop["max_drop"] > 0


def test_coreml_nms_pipeline_is_fp32_and_checked_structurally(matrix: dict, tmp_path: Path) -> None:
    text = FULL_MATRIX.read_text()
    text = text[: text.index("formats:")] + "formats:\n  coreml:\n    precisions: [fp32]\n    options: {nms: true}\n" \
        + text[text.index("validation:"):]
    code, summary = build_json(full_matrix_recipe(tmp_path, matrix["scenes"], text), matrix["store"])
    assert code == errors.OK
    (cell,) = summary["cells"]
    checks = {c["check"]: c for c in cell["validation"]["structure"]}
    assert cell["status"] == "not-validated" and all(c["ok"] for c in checks.values()), checks
    assert "confidence/coordinates" in checks["outputs"]["detail"] and "quantize=32" in checks["precision"]["detail"]
    # metadata.json describes the pipeline it measured: suppressed outputs, nothing left for consumers to suppress
    facts = cell["validation"]["artifact"]  # Ultralytics' NMS stage pads confidence to at least 80 classes
    (confidence, coordinates) = facts["output_shapes"]
    assert confidence[0] == -1 and confidence[1] >= 3 and coordinates == [-1, 4], facts
    assert facts["input_dtype"] == "uint8" and facts["applies_nms"] is True
    meta = json.loads(_layer(matrix["store"], summary["bundle"], "coreml-fp32/metadata.json").read_text())
    assert meta["postprocessing"]["apply_nms"] is False and meta["output_shape"] == facts["output_shapes"]
    assert meta["input_dtype"] == "uint8"


@pytest.mark.regenerates("detector.pt")
def test_the_committed_detector_regenerates_byte_for_byte(regenerations: Regenerations) -> None:
    committed = hashlib.sha256(DETECTOR.read_bytes()).hexdigest()
    regen = regenerations.result("detector.pt")
    assert regen.digest in regenerated.accepted("detector.pt", committed), (regenerated.this_cpu(), regen.log[-2000:])
    assert f'sha256: "{committed}"' in FULL_MATRIX.read_text()
    held_out = json.loads(regen.log.strip().splitlines()[-1])["held_out"]
    assert held_out["recall"] >= 0.95 and held_out["precision"] >= 0.95


TELEMETRY_PROBE = """
import sys
from pathlib import Path
if sys.argv[1] == "off":
    from exportctl.formats.openvino import telemetry_off
    telemetry_off()
import torch, openvino as ov
ov.convert_model(torch.nn.Conv2d(3, 4, 3).eval(), example_input=torch.zeros(1, 3, 8, 8))
import nncf  # imports its own telemetry client too
print(sorted(p.name for p in (Path.home() / "intel").glob("*")))
"""


def test_openvino_telemetry_is_declined_by_its_consent_file(tmp_path: Path) -> None:
    """OPENVINO_TELEMETRY_OPT_OUT alone is ignored (a client id is made); the consent file the cell writes works."""
    python = ensure_env("openvino")[0] / "bin" / "python"
    seen = {}
    for mode in ("env-only", "off"):
        home = tmp_path / mode
        home.mkdir()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "OPENVINO_TELEMETRY_OPT_OUT": "1",
               "PYTHONPATH": f"{ROOT}:{ROOT / 'exportctl' / 'cell' / 'site'}", "YOLO_OFFLINE": "1"}
        done = subprocess.run([str(python), "-c", TELEMETRY_PROBE, mode], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        seen[mode] = done.stdout.strip().splitlines()[-1]
    assert "openvino_ga_cid" in seen["env-only"], seen
    assert seen["off"] == "['openvino_telemetry']", seen
    assert (tmp_path / "off" / "intel" / "openvino_telemetry").read_text() == "0"


COREML_STRUCTURE_PROBE = """
import json, sys
from exportctl.formats.coreml import describe, structure
from exportctl.formats.spec import StructureExpectation
path, expected = sys.argv[1], json.loads(sys.argv[2])
expected["names"] = {int(k): v for k, v in expected["names"].items()}
checks = structure(path, StructureExpectation(**expected))
print(json.dumps({"checks": [c.to_json() for c in checks], "facts": describe(path).to_json()}))
"""


def _layer(store: Path, bundle: str, title: str) -> Path:
    layer = next(la for la in _show(store, bundle)["layers"] if la["title"] == title)
    return store / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]


def _coreml_structure(matrix: dict, tmp_path: Path, **expected: object) -> dict:
    import tarfile

    with tarfile.open(_layer(matrix["store"], matrix["a"]["bundle"], "coreml-fp32/model.mlpackage")) as tar:
        tar.extractall(tmp_path / "model.mlpackage", filter="data")
    python = ensure_env("coreml")[0] / "bin" / "python"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": f"{ROOT}:{ROOT / 'runtimes' / 'python'}"}
    done = subprocess.run([str(python), "-c", COREML_STRUCTURE_PROBE, str(tmp_path / "model.mlpackage"),
                           json.dumps(expected)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_coreml_structural_gate_fails_a_model_that_is_not_the_expected_one(matrix: dict, tmp_path: Path) -> None:
    reference = json.loads(_layer(matrix["store"], matrix["a"]["bundle"], "reference/reference.json").read_text())
    right = {"imgsz": reference["imgsz"], "names": reference["names"], "output_shapes": reference["output_shapes"],
             "task": matrix["a"]["task"], "precision": "fp32"}
    seen = _coreml_structure(matrix, tmp_path / "right", **right)
    assert all(c["ok"] for c in seen["checks"]), seen
    assert seen["facts"] == {"output_shapes": reference["output_shapes"], "input_dtype": "uint8",
                             "applies_nms": False}
    wrong = {"imgsz": 320, "names": {"0": "cat"}, "output_shapes": [[1, 84, 8400]], "task": "segment",
             "precision": "fp16"}
    failed = {c["check"] for c in _coreml_structure(matrix, tmp_path / "wrong", **wrong)["checks"] if not c["ok"]}
    assert failed == {"input", "outputs", "metadata", "precision"}
