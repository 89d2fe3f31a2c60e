"""Model families beyond YOLO11: a YOLO26 demo (end-to-end head, no DFL) exports and validates like any detector,
and the bundle records the task read from the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportctl import tasks
from tests.conftest import build_json, exportctl

pytestmark = pytest.mark.slow

YOLO26_DEMO = """name: yolo26-demo
checkpoint: {demo: {arch: yolo26n.yaml, seed: 0}}
input: {imgsz: 320}
formats: {onnx: {precisions: [fp32]}}
"""


def test_a_yolo26_demo_passes_onnx_fp32(tmp_path: Path) -> None:
    recipe = tmp_path / "yolo26.yaml"
    recipe.write_text(YOLO26_DEMO)
    code, summary = build_json(recipe, tmp_path / "store")
    assert code == 0 and summary["task"] == tasks.default_task().name
    (cell,) = summary["cells"]
    assert cell["status"] == "passed", cell["violations"]
    detection = cell["validation"][tasks.default_task().metrics_key]
    assert detection["ref_boxes"] > 10 and detection["recall"] == 1.0 and detection["precision"] == 1.0
    assert detection["mean_iou"] > 0.999
    shown = json.loads(exportctl("show", summary["bundle"], "--json", store=tmp_path / "store").stdout)
    assert [c["task"] for c in shown["cells"]] == [tasks.default_task().name]
