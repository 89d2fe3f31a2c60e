"""The labelled set (`validation.dataset`): the committed set regenerates byte for byte, its content is in the keys
of the reference and of every cell, bad sets are refused at plan time (exit 3, naming the field and the file), and
the in-cell pieces (accuracy comparison, error histogram) compute what validation.json promises."""

from __future__ import annotations

import dataclasses
import filecmp
import json
from pathlib import Path

import numpy as np
import pytest

from exportctl import errors, tasks
from exportctl.cell import accuracy
from exportctl.cell.metrics import ERROR_EDGES, error_histogram, tensor_metrics
from exportctl.cell.protocol import CellRequest, Dataset
from exportctl.plan.matrix import make_plan
from exportctl.recipe.load import parse_recipe
from tests.conftest import ROOT, exportctl
from tests.fixtures.shapes import DATASET, write_dataset

DETECTOR = ROOT / "tests" / "fixtures" / "detector.pt"
FORMATS = "formats:\n  onnx: {precisions: [fp32, fp16]}\n  openvino: {precisions: [fp32]}\n"


def _text(validation: str = "") -> str:
    return (f"name: t\ncheckpoint: {{path: {DETECTOR}}}\ninput: {{imgsz: 160}}\n{FORMATS}"
            + (f"validation:\n{validation}" if validation else ""))


def _plan(tmp_path: Path, validation: str = ""):
    return make_plan(parse_recipe(_text(validation), base_dir=tmp_path))


def test_the_committed_set_regenerates_byte_for_byte(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    ours = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DATASET).as_posix() for p in DATASET.rglob("*") if p.is_file())
    assert ours == committed and len(ours) == 2 * 48 + 1
    _, mismatch, errors_ = filecmp.cmpfiles(tmp_path, DATASET, ours, shallow=False)
    assert mismatch == [] and errors_ == []
    assert "dataset: data/shapes-val/data.yaml" in (ROOT / "recipes" / "full-matrix.yaml").read_text()


def test_the_sets_content_is_in_the_reference_and_every_cell_key(tmp_path: Path) -> None:
    write_dataset(tmp_path / "ds", count=4, size=32)
    plain, labelled = _plan(tmp_path), _plan(tmp_path, "  dataset: ds/data.yaml\n")
    assert labelled.dataset is not None and len(labelled.dataset.images) == 4
    assert labelled.reference.dataset == labelled.dataset.request()
    assert labelled.reference_key != plain.reference_key
    assert all(a.key != b.key for a, b in zip(plain.cells, labelled.cells, strict=True))
    for cell in labelled.cells:  # every cell measures on the set, with its precision's bounds
        assert cell.request.dataset == labelled.dataset.request()
        bound = {"fp32": 0.002, "fp16": 0.01}[cell.precision.value]
        assert cell.request.validation and cell.request.validation.max_drop == {"map50_95": bound, "map50": bound}
    assert sorted(labelled.dataset.mounts())[:2] == ["dataset/images/00000.bmp", "dataset/images/00001.bmp"]
    assert "dataset/labels/00003.txt" in labelled.dataset.mounts()
    # a label byte, a class name, or the count: another set, other keys
    label = tmp_path / "ds" / "labels" / "val" / "0000.txt"
    label.write_text(label.read_text().replace("0.", "0.0", 1))
    relabelled = _plan(tmp_path, "  dataset: ds/data.yaml\n")
    assert relabelled.reference_key != labelled.reference_key
    assert all(a.key != b.key for a, b in zip(labelled.cells, relabelled.cells, strict=True))
    fewer = _plan(tmp_path, "  dataset: {data: ds/data.yaml, count: 3}\n")
    assert fewer.dataset is not None and fewer.dataset.digest != relabelled.dataset.digest  # type: ignore[union-attr]
    # the recipe's own bounds replace the task's defaults for that precision only
    tight = _plan(tmp_path, "  dataset: ds/data.yaml\n  max_drop: {fp16: {map50: 0.0, map50_95: null}}\n")
    by_name = {c.name: c.request.validation.max_drop for c in tight.cells}  # type: ignore[union-attr]
    assert by_name["onnx/fp16"] == {"map50_95": None, "map50": 0.0}
    assert by_name["onnx/fp32"] == {"map50_95": 0.002, "map50": 0.002}
    # the request round-trips through request.json
    cell = tight.cells[0].request
    assert CellRequest.from_json(json.loads(json.dumps(cell.to_json()))) == cell
    assert "max_drop" not in plain.cells[0].request.to_json()["validation"]  # unset stays out of old keys


BAD = [
    ("  dataset: nope/data.yaml\n", None, ["validation.dataset.data", "is not a data yaml file"]),
    ("  dataset: ds/data.yaml\n", lambda d: (d / "data.yaml").write_text("path: .\nnames: [a]\n"),
     ["validation.dataset.data", "has no 'val' split"]),
    ("  dataset: ds/data.yaml\n", lambda d: (d / "data.yaml").write_text("path: gone\nval: images/val\nnames: [a]\n"),
     ["validation.dataset.data", "never downloads"]),
    ("  dataset: ds/data.yaml\n", lambda d: (d / "data.yaml").write_text("path: .\nval: images/val\n"),
     ["validation.dataset.data", "has no 'names'"]),
    ("  dataset: ds/data.yaml\n", lambda d: (d / "data.yaml").write_text("val: [images/val\n"),
     ["validation.dataset.data", "cannot read"]),
    ("  dataset: ds/data.yaml\n", lambda d: (d / "labels" / "val" / "0001.txt").write_text("0 0.5 0.5 0.1 0.1\n7 0.5 "
                                                                                            "0.5 0.1 0.1\n"),
     ["validation.dataset.data", "0001.txt:2", "class 7 is not one of the data yaml's 3 names"]),
    ("  dataset: ds/data.yaml\n", lambda d: (d / "labels" / "val" / "0002.txt").write_text("0 a b c d\n"),
     ["validation.dataset.data", "0002.txt:1", "not numbers"]),
    ("  dataset: ds/data.yaml\n", lambda d: (d / "labels" / "val" / "0002.txt").write_text("0 0.5 0.5\n"),
     ["0002.txt:1", "at least 4 finite numbers"]),
    ("  dataset: ds/data.yaml\n", lambda d: [p.unlink() for p in (d / "labels" / "val").iterdir()],
     ["validation.dataset.data", "no label file for any of its 4 images", "labels"]),
    ("  dataset: {data: ds/data.yaml, count: 9}\n", None, ["validation.dataset.count", "asks for 9 images"]),
    ("  dataset: {data: ds/data.yaml, cuont: 2}\n", None, ["validation.dataset.cuont", "did you mean 'count'"]),
    ("  dataset: ds/data.yaml\n  max_drop: {int8: {map5095: 0.1}}\n", None,
     ["validation.max_drop.int8.map5095", "unknown metric", "did you mean 'map50_95'"]),
    ("  dataset: ds/data.yaml\n  max_drop: {int8: {map50: -0.1}}\n", None,
     ["validation.max_drop.int8.map50", "greater than or equal to 0"]),
    ("  max_drop: {int8: {map50: 0.1}}\n", None, ["validation.max_drop", "names none"]),
]


@pytest.mark.parametrize(("validation", "damage", "expected"), BAD, ids=[
    "missing-yaml", "no-val", "missing-split", "no-names", "bad-yaml", "unknown-class", "not-numbers",
    "short-row", "no-labels", "count-too-large", "unknown-key", "unknown-metric", "negative-bound",
    "bound-without-set"])
def test_a_bad_set_exits_3_naming_the_field_and_file(tmp_path: Path, validation: str, damage, expected) -> None:
    write_dataset(tmp_path / "ds", count=4, size=32)
    if damage is not None:
        damage(tmp_path / "ds")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(_text(validation))
    done = exportctl("plan", recipe, "--json", store=tmp_path / "store", check=False)
    assert done.returncode == errors.CONFIG_ERROR, done.stderr
    flat = " ".join(done.stderr.split())
    for fragment in expected:
        assert fragment in flat, f"{fragment!r} not in: {flat}"
    assert "Traceback" not in done.stderr


def test_a_task_without_an_accuracy_metric_refuses_the_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dataset(tmp_path / "ds", count=2, size=32)
    detect = tasks.default_task()
    monkeypatch.setattr(tasks, "registry", lambda: {detect.name: dataclasses.replace(detect, accuracy=None)})
    with pytest.raises(errors.RecipeError) as refused:
        _plan(tmp_path, "  dataset: ds/data.yaml\n")
    assert "validation.dataset" in str(refused.value) and "no accuracy metric" in str(refused.value)
    assert _plan(tmp_path).dataset is None  # without the set, the same task plans


def test_drops_are_compared_and_gated_per_metric(tmp_path: Path) -> None:
    record = Dataset(count=2, digest="sha256:" + "1" * 64, names={"0": "a"})
    labelled = accuracy.LabelledSet(record, ())
    (tmp_path / accuracy.ACCURACY_FILE).write_text(json.dumps(
        {"dataset": {"digest": record.digest, "images": 2}, "metrics": {"map50_95": 0.8, "map50": 0.95}}))
    result, gates = accuracy.compare(tmp_path, labelled, {"map50_95": 0.74, "map50": 0.95},
                                     {"map50_95": 0.05, "map50": None})
    m = result["metrics"]
    assert m["map50_95"]["drop"] == pytest.approx(0.06) and m["map50_95"]["ok"] is False
    assert m["map50"] == {"reference": 0.95, "artifact": 0.95, "drop": 0.0, "max_drop": None, "ok": True}
    (gate,) = gates  # an unset bound is reported, not gated
    assert gate.name == "accuracy.map50_95" and gate.ran and not gate.ok
    assert gate.violation() == "accuracy.map50_95 0.06 > 0.05"
    _, unmeasured = accuracy.compare(tmp_path, labelled, None, {"map50_95": 0.05}, why="the outputs' shapes differ")
    assert not unmeasured[0].ran and unmeasured[0].why == "the outputs' shapes differ"
    other = accuracy.LabelledSet(dataclasses.replace(record, digest="sha256:" + "2" * 64), ())
    with pytest.raises(RuntimeError, match="another labelled set"):
        accuracy.compare(tmp_path, other, {"map50_95": 0.8, "map50": 0.9}, {})


def test_the_error_histogram_has_fixed_log_edges_and_clamps_its_ends() -> None:
    assert len(ERROR_EDGES) == 25 and ERROR_EDGES[0] == 1e-9 and ERROR_EDGES[-1] == 1e3 and ERROR_EDGES[18] == 1.0
    hist = error_histogram(np.array([0.0, 1e-12, 1e-9, 2e-9, 0.5, 1.0, 999.0, 5e3]))
    assert hist["edges"] == list(ERROR_EDGES) and sum(hist["counts"]) == 8
    assert hist["counts"][0] == 4 and hist["counts"][17] == 1 and hist["counts"][18] == 1 and hist["counts"][-1] == 2
    ref = np.zeros((1, 7, 5), np.float32)
    assert "histogram" not in tensor_metrics(ref, ref)  # groups keep their numbers; the whole output has the spread
    assert tensor_metrics(ref, ref + 2e-4, histogram=True)["histogram"]["counts"][10] == 35
