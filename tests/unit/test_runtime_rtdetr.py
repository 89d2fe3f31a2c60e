"""RT-DETR detection: yolo_runtime's `decode_rtdetr` (against Ultralytics' RTDETRPredictor.postprocess where
torch and Ultralytics are installed), and the detect task's handling of an RT-DETR head: which columns are gated
raw, matching in pixels, metadata.json.

Runs on a bare host (numpy + pytest); the test that needs torch and Ultralytics skips itself there, and
tests/integration/test_runtime_in_toolchain.py runs this file again inside the ONNX toolchain environment, where
it must run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "runtimes" / "python"))
sys.path.insert(0, str(REPO))

from yolo_runtime import decode_rtdetr  # noqa: E402
from yolo_runtime.backends import normalizes_boxes  # noqa: E402

from exportctl import tasks  # noqa: E402
from exportctl.cell.metrics import group_metrics, tensor_checks, tensor_metrics  # noqa: E402
from exportctl.cell.validate import verdict  # noqa: E402
from exportctl.tasks.spec import MetadataFacts  # noqa: E402

TASK = tasks.registry()["detect"]
IMGSZ = 320
RTDETR = {"head": "RTDETRDecoder", "imgsz": IMGSZ}  # what reference.json says of an RT-DETR model


def rtdetr_head(seed: int = 0, nc: int = 80, confident: int = 12, batch: int = 1) -> np.ndarray:
    """A realistic [B, 300, 6] RT-DETR output: normalized cx, cy, w, h; scores sorted descending, a few confident
    rows and a long tail of near-equal low ones; the class index as a float."""
    rng = np.random.default_rng(seed)
    heads = []
    for _ in range(batch):
        xy, wh = rng.uniform(0.2, 0.8, (300, 2)), rng.uniform(0.05, 0.3, (300, 2))
        low = 1 / (1 + np.exp(-rng.normal(-5, 0.5, 300 - confident)))
        scores = -np.sort(-np.concatenate([rng.uniform(0.4, 0.95, confident), low]))
        classes = rng.integers(0, nc, 300).astype(np.float64)
        heads.append(np.column_stack([xy, wh, scores, classes]))
    return np.stack(heads).astype(np.float32)


def test_decode_rtdetr_thresholds_converts_to_xyxy_and_scales_to_pixels():
    rows = np.float32([[[0.5, 0.5, 0.2, 0.4, 0.9, 3], [0.25, 0.25, 0.1, 0.1, 0.2, 1], [0.1, 0.9, 0.2, 0.2, 0.3, 7]]])
    (d,) = decode_rtdetr(rows, imgsz=100, conf=0.25)
    np.testing.assert_allclose(d.boxes, [[40, 30, 60, 70], [0, 80, 20, 100]], atol=1e-5)
    assert d.scores.tolist() == pytest.approx([0.9, 0.3]) and d.classes.tolist() == [3, 7]
    assert d.boxes.dtype == np.float32 and d.classes.dtype == np.int64
    assert len(decode_rtdetr(rows, imgsz=100, conf=0.25, max_det=1)[0]) == 1
    assert len(decode_rtdetr(np.concatenate([rows, rows]), imgsz=100)) == 2
    with pytest.raises(ValueError, match=r"\[B, K, 6\]"):
        decode_rtdetr(np.zeros((1, 84, 300), np.float32), imgsz=100)


def test_decode_rtdetr_matches_ultralytics_rtdetr_predictor():  # needs torch and ultralytics
    torch = pytest.importorskip("torch")
    predict = pytest.importorskip("ultralytics.models.rtdetr.predict")
    head = rtdetr_head(seed=1, nc=5, batch=2)
    predictor = SimpleNamespace(args=SimpleNamespace(conf=0.25, classes=None, max_det=300),
                                batch=(["a.jpg", "b.jpg"],), model=SimpleNamespace(names={i: str(i) for i in range(5)}))
    originals = [np.zeros((IMGSZ, IMGSZ, 3), np.uint8)] * 2  # the input itself: pixels of the model's input
    results = predict.RTDETRPredictor.postprocess(predictor, torch.from_numpy(head),
                                                  torch.zeros(2, 3, IMGSZ, IMGSZ), originals)
    ours = decode_rtdetr(head, imgsz=IMGSZ, conf=0.25)
    assert [len(r.boxes) for r in results] == [len(d) for d in ours] == [12, 12]
    for r, d in zip(results, ours, strict=True):
        np.testing.assert_allclose(d.boxes, r.boxes.xyxy.numpy(), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(d.scores, r.boxes.conf.numpy())
        np.testing.assert_array_equal(d.classes, r.boxes.cls.numpy().astype(np.int64))


def check(ref: np.ndarray, cand: np.ndarray, precision: str = "fp32") -> tuple[list[str], list, str, dict]:
    """validate.py's verdict for an RT-DETR reference and candidate head."""
    tensor = {"output0": tensor_metrics(ref, cand)}
    groups = {"output0": TASK.tensor_groups("output0", list(ref.shape), RTDETR)}
    tensor["output0"]["groups"] = group_metrics(ref, cand, groups["output0"])
    measured = TASK.metrics({"output0": ref}, {"output0": cand}, TASK.thresholds, RTDETR)
    tol = TASK.tolerance(precision)
    hard, raw = tensor_checks(tensor, groups, tol)
    gates = raw + TASK.gates(measured, tol)
    found, status, _ = verdict(hard, gates)
    return found, gates, status.value, measured


def test_an_rtdetr_head_gates_its_sorted_scores_raw_and_its_boxes_by_matching():
    ref = rtdetr_head()
    assert [g.name for g in TASK.tensor_groups("output0", list(ref.shape), RTDETR)] == ["boxes", "scores", "classes"]
    found, gates, status, measured = check(ref, ref + np.float32(1e-6))
    assert status == "passed" and found == [], found
    assert [g.name for g in gates][:2] == ["output0.scores max_abs", "output0.scores cosine"]
    assert not any(g.name.startswith(("output0.boxes", "output0.classes")) for g in gates)
    assert measured["ref_boxes"] == 12 and measured["recall"] == measured["precision"] == 1.0


def test_two_low_rows_trading_places_pass_and_moved_boxes_or_halved_scores_fail():
    ref = rtdetr_head()
    swapped = ref.copy()
    swapped[0, [200, 201]] = ref[0, [201, 200]]  # near-equal tail scores: their order is the runtime's
    assert check(ref, swapped)[2] == "passed"
    moved = ref.copy()
    moved[0, :12, :2] += 0.05  # every detection 16 px off: the raw boxes are not gated, the matched ones are
    found, _, status, measured = check(ref, moved)
    assert status == "failed" and measured["recall"] < 1.0 and not any(v.startswith("output0.") for v in found)
    halved = ref.copy()
    halved[0, :, 4] *= 0.5
    found, _, status, _ = check(ref, halved)
    assert status == "failed" and any(v.startswith("output0.scores max_abs") for v in found), found


def test_an_rtdetr_head_is_decoded_without_nms_in_pixels():
    ref = rtdetr_head(seed=3)
    ref[0, 1, :4] = ref[0, 0, :4]  # one box twice (two classes of one query): kept twice, nothing is suppressed
    (d,) = decode_rtdetr(ref, imgsz=IMGSZ, conf=TASK.thresholds.conf)
    assert len(d) == 12 and d.boxes.max() > 1.0  # pixels, not normalized
    assert TASK.metrics({"output0": ref}, {"output0": ref}, TASK.thresholds, RTDETR)["ref_boxes"] == 12
    timed = TASK.decode([ref], TASK.thresholds)  # what profiling times: the same rows, at scale 1
    assert len(timed[0]) == 12 and timed[0].boxes.max() <= 1.0


def _facts(model: dict) -> MetadataFacts:
    return MetadataFacts(model_name="rtdetr-l", export_format="onnx", precision="fp32", imgsz=IMGSZ,
                         output_shapes=[[1, 300, 6]], input_dtype="float32", applies_nms=False, names={0: "a"},
                         export_config={}, conf=0.25, iou=0.45, created_at="1980-01-01T00:00:00Z", model=model)


def test_rtdetr_metadata_says_no_nms_and_normalized_xywh():
    post = TASK.metadata(_facts(RTDETR))["postprocessing"]
    assert post["apply_nms"] is False and post["normalized_coordinates"] is True
    assert post["coordinate_format"] == "xywh" and post["confidence_threshold"] == 0.25
    yolo = TASK.metadata(_facts({"head": "Detect", "imgsz": IMGSZ}))["postprocessing"]
    assert yolo["apply_nms"] is True and "normalized_coordinates" not in yolo


def test_litert_scales_back_yolo_boxes_but_not_rtdetr_ones():
    assert normalizes_boxes({"task": "detect", "end2end": False, "head": "Detect"})
    assert not normalizes_boxes({"task": "detect", "end2end": True, "head": "Detect"})
    assert not normalizes_boxes({"task": "detect", "end2end": False, "head": "RTDETRDecoder"})
    assert not normalizes_boxes({"task": "classify", "head": "Classify"})
