"""Model families beyond YOLO11: YOLO26 (end-to-end head, no DFL), YOLOv10 and RT-DETR demos export and validate
like any detector, and the bundle records the task read from the checkpoint. The trained YOLO26 test detector
(tests/fixtures/detector26.pt) passes ONNX and TorchScript fp32 with real detections and mAP on the labelled set,
and regenerates byte for byte (in the background from the start of the session: tests/regenerations.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from exportctl import tasks
from tests.conftest import DATASET, NO_PROFILE, ROOT, build_json, exportctl
from tests.fixtures import regenerated
from tests.fixtures.shapes import write_scenes
from tests.regenerations import Regenerations

pytestmark = pytest.mark.slow

DEMO = """name: demo
checkpoint: {demo: {arch: ARCH, seed: 0}}
input: {imgsz: 320}
formats: {onnx: {precisions: [fp32]}}
"""


# one-to-one heads; YOLO26 without DFL; RT-DETR's transformer decoder (normalized xywh rows, no NMS) in every fp32
# runtime but LiteRT's (82 s more here; passed by hand: README "Tasks and model families")
@pytest.mark.parametrize(("arch", "formats"), [("yolo26n.yaml", ["onnx"]), ("yolov10n.yaml", ["onnx"]),
                                               ("rtdetr-l.yaml", ["onnx", "torchscript", "openvino"])])
def test_a_demo_of_a_newer_family_passes_fp32(tmp_path: Path, arch: str, formats: list[str]) -> None:
    recipe = tmp_path / "demo.yaml"
    recipe.write_text(DEMO.replace("ARCH", arch).replace("{onnx: {precisions: [fp32]}}",
                                                         str({f: {"precisions": ["fp32"]} for f in formats})))
    code, summary = build_json(recipe, tmp_path / "store", NO_PROFILE)
    assert code == 0 and summary["task"] == tasks.default_task().name
    assert [c["cell"] for c in summary["cells"]] == [f"{f}/fp32" for f in formats]
    for cell in summary["cells"]:
        assert cell["status"] == "passed", (cell["cell"], cell["violations"])
        detection = cell["validation"][tasks.default_task().metrics_key]
        assert detection["ref_boxes"] > 10 and detection["recall"] == 1.0 and detection["precision"] == 1.0
        assert detection["mean_iou"] > 0.999
    shown = json.loads(exportctl("show", summary["bundle"], "--json", store=tmp_path / "store").stdout)
    assert [c["task"] for c in shown["cells"]] == [tasks.default_task().name] * len(formats)


DETECTOR26 = ROOT / "tests" / "fixtures" / "detector26.pt"
# pinned: a build of another file is refused
DETECTOR26_SHA256 = "0f865243414c36c1e3d8a6719d9cfb353bced9e3d9dbc6cdedbeb5440e90df4d"
TRAINED = f"""name: trained-yolo26
checkpoint: {{path: {DETECTOR26}, sha256: "{DETECTOR26_SHA256}"}}
input: {{imgsz: 160}}
formats: {{onnx: {{precisions: [fp32]}}, torchscript: {{precisions: [fp32]}}}}
validation:
  dataset: {DATASET}
  images:
"""


@pytest.fixture(scope="module")
def trained26(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The trained YOLO26 built on 16 unseen scenes (recipes/full-matrix.yaml's)."""
    base = tmp_path_factory.mktemp("trained26")
    scenes = write_scenes(base / "scenes", 16, seed=2, size=160)
    recipe = base / "trained26.yaml"
    recipe.write_text(TRAINED + "".join(f"    - {path}\n" for path in scenes))
    code, summary = build_json(recipe, base / "store", NO_PROFILE, check=False)
    return {"code": code, "summary": summary}


def test_a_trained_yolo26_detector_passes_onnx_and_torchscript_fp32(trained26: dict) -> None:
    summary = trained26["summary"]
    assert trained26["code"] == 0 and summary["task"] == "detect", summary
    cells = {c["cell"]: c for c in summary["cells"]}
    assert set(cells) == {"onnx/fp32", "torchscript/fp32"}
    for name, cell in cells.items():
        v = cell["validation"]
        assert cell["status"] == "passed" and all(g["ran"] and g["ok"] for g in v["gates"]), (name, v)
        detection = v[tasks.default_task().metrics_key]
        # 16 scenes of 1-3 shapes: the model finds them (a random head finds noise, a dead one nothing)
        assert detection["ref_boxes"] >= 20 and detection["recall"] == 1.0 and detection["precision"] == 1.0, v
        for metric, floor in (("map50", 0.9), ("map50_95", 0.7)):  # labelled set: it detects the true shapes
            m = v["accuracy"]["metrics"][metric]
            assert m["reference"] > floor and m["ok"], (name, metric, m)


@pytest.mark.regenerates("detector26.pt")
def test_the_committed_yolo26_detector_regenerates_byte_for_byte(regenerations: Regenerations) -> None:
    committed = hashlib.sha256(DETECTOR26.read_bytes()).hexdigest()
    assert committed == DETECTOR26_SHA256
    regen = regenerations.result("detector26.pt")
    assert regen.digest in regenerated.accepted("detector26.pt", committed), (regenerated.this_cpu(), regen.log[-2000:])
