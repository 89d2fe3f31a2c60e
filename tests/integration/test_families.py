"""Model families beyond YOLO11: YOLO26 (end-to-end head, no DFL) and YOLOv10 demos export and validate like any
detector, and the bundle records the task read from the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportctl import tasks
from tests.conftest import build_json, exportctl

pytestmark = pytest.mark.slow

DEMO = """name: demo
checkpoint: {demo: {arch: ARCH, seed: 0}}
input: {imgsz: 320}
formats: {onnx: {precisions: [fp32]}}
"""


@pytest.mark.parametrize("arch", ["yolo26n.yaml", "yolov10n.yaml"])  # one-to-one heads; YOLO26 without DFL
def test_a_demo_of_a_newer_family_passes_onnx_fp32(tmp_path: Path, arch: str) -> None:
    recipe = tmp_path / "demo.yaml"
    recipe.write_text(DEMO.replace("ARCH", arch))
    code, summary = build_json(recipe, tmp_path / "store")
    assert code == 0 and summary["task"] == tasks.default_task().name
    (cell,) = summary["cells"]
    assert cell["status"] == "passed", cell["violations"]
    detection = cell["validation"][tasks.default_task().metrics_key]
    assert detection["ref_boxes"] > 10 and detection["recall"] == 1.0 and detection["precision"] == 1.0
    assert detection["mean_iou"] > 0.999
    shown = json.loads(exportctl("show", summary["bundle"], "--json", store=tmp_path / "store").stdout)
    assert [c["task"] for c in shown["cells"]] == [tasks.default_task().name]
