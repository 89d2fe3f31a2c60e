"""yolo_runtime (decode, NMS, letterbox, backends) and exportctl.cell.metrics, with hand-computed expectations.

Runs on a bare host (numpy + pytest). Tests that need OpenCV, ONNX Runtime, torch or Ultralytics skip themselves
there; tests/integration/test_runtime_in_toolchain.py runs this file again inside the ONNX toolchain environment,
where they all run (and must: it fails on any skip).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "runtimes" / "python"))
sys.path.insert(0, str(REPO))

from yolo_runtime import (  # noqa: E402
    Detections,
    YOLOInference,
    box_iou,
    decode_detections,
    decode_end2end,
    letterbox,
    load_image,
    nms,
    open_backend,
)

from exportctl.cell.metrics import group_metrics, tensor_checks, tensor_metrics  # noqa: E402
from exportctl.cell.validate import verdict  # noqa: E402
from exportctl.tasks.detect import TASK, detection_metrics, gates, tensor_groups  # noqa: E402


def dets(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections(
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32),
        np.asarray(classes, dtype=np.int64),
    )


def head_output() -> np.ndarray:
    """[1, 4+2, 4] detect output: columns are anchors, rows are x, y, w, h, score(class 0), score(class 1)."""
    return np.array(
        [
            [
                [50, 52, 51, 10],
                [50, 50, 50, 10],
                [20, 20, 20, 4],
                [20, 20, 20, 4],
                [0.9, 0.2, 0.6, 0.25],
                [0.1, 0.8, 0.0, 0.0],
            ]
        ],
        dtype=np.float32,
    )


def assert_plain_json(value: dict) -> None:
    """No numpy scalars (np.float64 would slip through json as a float subclass) and no NaN/inf."""
    for v in value.values():
        assert v is None or type(v) in (bool, int, float) or isinstance(v, list), (v, type(v))
    json.dumps(value, allow_nan=False)


# --- nms -------------------------------------------------------------------------------------------------


def test_nms_suppresses_overlap_and_keeps_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], dtype=np.float32)  # IoU(0,1) = 90/110
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.45).tolist() == [0, 2]
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.85).tolist() == [0, 1, 2]


def test_nms_suppresses_only_above_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=np.float32)  # IoU exactly 0.5
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.49).tolist() == [0]


def test_nms_ties_break_by_index():
    same = np.array([[0, 0, 10, 10]] * 3, dtype=np.float32)
    assert nms(same, np.array([0.5, 0.5, 0.5]), 0.45).tolist() == [0]
    apart = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], dtype=np.float32)
    assert nms(apart, np.array([0.5, 0.7, 0.5]), 0.45).tolist() == [1, 0, 2]


def test_nms_empty():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.45).tolist() == []


# --- decode_detections -----------------------------------------------------------------------------------


def test_decode_is_class_aware_and_filters_by_conf():
    (d,) = decode_detections(head_output(), conf=0.25, iou=0.45)
    # anchor 2 (class 0, IoU 380/420 with anchor 0) is suppressed; anchor 1 overlaps too but is class 1;
    # anchor 3 scores exactly conf and is dropped (strictly greater, as Ultralytics).
    np.testing.assert_array_equal(d.boxes, [[40, 40, 60, 60], [42, 40, 62, 60]])
    np.testing.assert_array_equal(d.scores, np.float32([0.9, 0.8]))
    assert d.classes.tolist() == [0, 1]
    assert (d.boxes.dtype, d.scores.dtype, d.classes.dtype) == (np.float32, np.float32, np.int64)


def test_decode_max_det_and_batch():
    batch = np.concatenate([head_output(), np.zeros_like(head_output())])
    first, second = decode_detections(batch, max_det=1)
    assert first.classes.tolist() == [0] and first.scores.tolist() == [np.float32(0.9)]
    assert len(second) == 0 and second.boxes.shape == (0, 4)


def test_decode_normalized_scales_boxes_by_imgsz():
    out = head_output()
    out[0, :4] /= 100
    (d,) = decode_detections(out, normalized=True, imgsz=100)
    np.testing.assert_allclose(d.boxes, [[40, 40, 60, 60], [42, 40, 62, 60]], rtol=1e-6)
    with pytest.raises(ValueError, match="imgsz"):
        decode_detections(out, normalized=True)


def test_decode_rejects_wrong_rank():
    with pytest.raises(ValueError, match="4\\+nc"):
        decode_detections(np.zeros((6, 10), dtype=np.float32))


# --- metrics ---------------------------------------------------------------------------------------------


def test_end_to_end_rows_are_only_thresholded():
    rows = np.float32([[[0, 0, 10, 10, 0.9, 2], [1, 0, 11, 10, 0.8, 2], [5, 5, 9, 9, 0.2, 0]],
                       [[0, 0, 0, 0, 0.0, 0], [0, 0, 0, 0, 0.0, 0], [0, 0, 0, 0, 0.0, 0]]])
    first, second = decode_end2end(rows, conf=0.25)
    np.testing.assert_array_equal(first.boxes, [[0, 0, 10, 10], [1, 0, 11, 10]])  # overlapping, both kept: no NMS
    assert first.classes.tolist() == [2, 2] and first.scores.tolist() == pytest.approx([0.9, 0.8])
    assert len(second) == 0
    assert len(decode_end2end(rows, conf=0.25, max_det=1)[0]) == 1
    with pytest.raises(ValueError, match="end-to-end output"):
        decode_end2end(np.zeros((1, 84, 10)).transpose(0, 2, 1)[:, :, :5])


def test_box_iou_values():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[50 / 150, 1.0, 0.0]])
    assert box_iou(np.array([[0, 0, 0, 0]]), np.array([[0, 0, 0, 0]])).tolist() == [[0.0]]
    assert box_iou(np.zeros((0, 4)), np.zeros((2, 4))).shape == (0, 2)


def test_tensor_metrics_values():
    m = tensor_metrics(np.float32([1, 2, 3]), np.float32([1, 2, 3.5]))
    assert m["shape_match"] and m["finite"]
    assert m["max_abs"] == 0.5 and m["mean_abs"] == pytest.approx(0.5 / 3)
    assert m["cosine"] == pytest.approx(15.5 / math.sqrt(14 * 17.25))
    assert_plain_json(m)


@pytest.mark.parametrize(
    ("ref", "cand", "cosine"),
    [([0, 0], [0, 0], 1.0), ([0, 0], [1, 2], 0.0), ([1, 2], [0, 0], 0.0), ([1, 2], [-1, -2], -1.0)],
)
def test_cosine_edge_cases(ref, cand, cosine):
    assert tensor_metrics(np.float32(ref), np.float32(cand))["cosine"] == pytest.approx(cosine)


def test_tensor_metrics_shape_mismatch_and_non_finite():
    m = tensor_metrics(np.zeros((1, 3)), np.zeros((1, 4)))
    assert m["shape_match"] is False and m["max_abs"] is m["mean_abs"] is m["cosine"] is None
    assert_plain_json(m)
    n = tensor_metrics(np.zeros(2), np.float32([0, np.nan]))
    assert n["finite"] is False and n["cosine"] is None
    assert_plain_json(n)


def test_detection_metrics_exact_match():
    d = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.6], [0, 3])
    m = detection_metrics([d], [d])
    assert m == {
        "ref_boxes": 2, "cand_boxes": 2, "matched": 2, "recall": 1.0, "precision": 1.0,
        "mean_iou": 1.0, "min_iou": 1.0, "max_score_delta": 0.0, "class_agreement": 1.0,
    }  # fmt: skip
    assert_plain_json(m)


def test_detection_metrics_shifted_box_and_class_flip():
    ref = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.6], [0, 3])
    cand = dets([[20, 20, 40, 40], [2, 0, 12, 10]], [0.6, 0.85], [1, 0])  # shifted box: IoU 80/120
    m = detection_metrics([ref], [cand])
    assert m["matched"] == 2
    assert m["min_iou"] == pytest.approx(2 / 3) and m["mean_iou"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["max_score_delta"] == pytest.approx(0.05, abs=1e-6)
    assert m["class_agreement"] == 0.5
    assert_plain_json(m)


def test_detection_metrics_greedy_by_reference_score():
    ref = dets([[1, 0, 11, 10], [0, 0, 10, 10]], [0.8, 0.9], [0, 0])
    cand = dets([[1, 0, 11, 10]], [0.8], [0])
    m = detection_metrics([ref], [cand])
    # The 0.9 reference box picks first and takes the only candidate (IoU 90/110) despite the exact twin.
    assert (m["matched"], m["recall"], m["precision"]) == (1, 0.5, 1.0)
    assert m["mean_iou"] == pytest.approx(9 / 11)


def test_detection_metrics_empty_sides():
    none, one = dets([], [], []), dets([[0, 0, 10, 10]], [0.9], [0])
    assert detection_metrics([none], [none])["recall"] == detection_metrics([none], [none])["precision"] == 1.0
    spurious = detection_metrics([none], [one])
    assert (spurious["recall"], spurious["precision"], spurious["mean_iou"]) == (1.0, 0.0, None)
    missed = detection_metrics([one], [none])
    assert (missed["recall"], missed["precision"], missed["class_agreement"]) == (0.0, 1.0, None)
    assert_plain_json(missed)
    with pytest.raises(ValueError, match="images"):
        detection_metrics([one], [])


# --- gates and verdict -----------------------------------------------------------------------------------

ALL_GATES = {
    "max_abs": 0.001, "score_max_abs": 0.001, "cosine_min": 0.999, "box_iou_min": 0.95, "score_delta_max": 0.01,
    "class_agreement_min": 0.99, "recall_min": 0.9, "precision_min": 0.9,
}  # fmt: skip


def check_tolerances(pairs: dict, detection: dict | None, tol: dict) -> tuple[list[str], list, str, str | None]:
    """The cell's verdict rule (validate.py): raw-tensor gates per group of rows, then the task's gates."""
    tensor, groups = {}, {}
    for name, (ref, cand) in pairs.items():
        tensor[name] = tensor_metrics(ref, cand)
        groups[name] = tensor_groups(name, list(np.shape(ref)), {})
        if tensor[name]["shape_match"] and tensor[name]["finite"]:
            tensor[name]["groups"] = group_metrics(np.asarray(ref), np.asarray(cand), groups[name])
    hard, raw = tensor_checks(tensor, groups, tol)
    all_gates = raw + gates(detection, tol)
    found, status, reason = verdict(hard, all_gates)
    return found, all_gates, status.value, reason


def test_tolerance_violation_strings():
    ref = np.float32([[0.0, 1.0, 2.0]])
    pairs = {"output9": (ref, ref + np.float32([[0.31, 0, 0]])), "output1": (ref, -ref)}
    detection = detection_metrics([dets([[0, 0, 10, 10]], [0.9], [0])], [dets([[2, 0, 12, 10]], [0.85], [1])])
    found, _, status, _ = check_tolerances(pairs, detection, ALL_GATES)
    assert status == "failed"
    assert found == [
        "output9.all max_abs 0.31 > 0.001",
        "output9.all cosine 0.990526 < 0.999",  # 5 / sqrt(5 * 5.0961)
        "output1.all max_abs 4 > 0.001",
        "output1.all cosine -1 < 0.999",
        "box mean_iou 0.666667 < 0.95",
        "max_score_delta 0.05 > 0.01",
        "class_agreement 0 < 0.99",
    ]


def test_tolerances_pass_and_ungated():
    ref = np.float32([1.0, 2.0])
    pairs = {"output9": (ref, ref + np.float32(0.5))}
    found, ran, status, _ = check_tolerances(pairs, None, {"max_abs": None, "cosine_min": 0.9})
    assert found == [] and status == "passed" and [g.name for g in ran] == ["output9.all cosine"]
    found, ran, status, reason = check_tolerances(pairs, None, {})
    assert (found, ran, status) == ([], [], "not-validated") and "nothing was gated" in reason


def test_shape_mismatch_and_non_finite_always_violate():
    pairs = {"output0": (np.zeros((1, 3)), np.zeros((1, 4))), "output1": (np.zeros(2), np.float32([np.inf, 0]))}
    assert check_tolerances(pairs, None, {})[0] == [
        "output0 shape [1, 4] != reference [1, 3]",
        "output1 has non-finite values (NaN or inf)",
    ]


def test_detection_gates_with_empty_sides():
    none, one = dets([], [], []), dets([[0, 0, 10, 10]], [0.9], [0])
    found, ran, status, reason = check_tolerances({}, detection_metrics([none], [none]), ALL_GATES)
    assert found == [] and status == "not-validated" and not any(g.ran for g in ran)
    assert "the reference has no detection on any image" in reason and "recall" in reason
    assert check_tolerances({}, detection_metrics([one], [none]), ALL_GATES)[0] == ["recall 0 < 0.9"]
    assert check_tolerances({}, detection_metrics([none], [one]), ALL_GATES)[0] == ["precision 0 < 0.9"]
    # the one box was missed: recall fails, and the IoU gate could not run (never a pass)
    found, _, status, _ = check_tolerances({}, detection_metrics([one], [none]), {"box_iou_min": 0.95})
    assert found == [] and status == "not-validated"


def detector_head(seed: int = 0, nc: int = 3, anchors: int = 400) -> np.ndarray:
    """A realistic [1, 4 + nc, A] head: box rows in pixels (tens to hundreds), sigmoid score rows mostly ~0."""
    rng = np.random.default_rng(seed)
    boxes = np.concatenate([rng.uniform(0, 640, (2, anchors)), rng.uniform(8, 200, (2, anchors))])
    scores = 1 / (1 + np.exp(-rng.normal(-6, 2, (nc, anchors))))
    scores[:, :5] = 0.9  # a few confident anchors
    return np.concatenate([boxes, scores])[None].astype(np.float32)


def decoded(ref: np.ndarray, cand: np.ndarray) -> dict:
    return TASK.metrics({"output0": ref}, {"output0": cand}, TASK.thresholds, {})


def test_a_score_only_perturbation_fails_the_raw_gates():
    ref = detector_head()
    halved, swapped = ref.copy(), ref.copy()
    halved[:, 4:] *= 0.5  # class scores halved, boxes untouched
    swapped[:, [4, 5]] = ref[:, [5, 4]]  # two classes' scores exchanged
    for cand in (halved, swapped):
        assert tensor_metrics(ref, cand)["cosine"] > 0.9999  # the whole tensor hides it: pixels dominate
    cases = [("fp32", halved), ("fp32", swapped), ("fp16", halved), ("fp16", swapped), ("int8", swapped)]
    for precision, cand in cases:
        found, _, status, _ = check_tolerances({"output0": (ref, cand)}, decoded(ref, cand), TASK.tolerance(precision))
        assert status == "failed", precision
        assert any(v.startswith("output0.scores ") for v in found), (precision, found)
        assert not any(v.startswith("output0.boxes ") for v in found), (precision, found)
    zeroed = ref.copy()
    zeroed[:, 4:] = 0
    found = check_tolerances({"output0": (ref, zeroed)}, decoded(ref, zeroed), TASK.tolerance("int8"))[0]
    assert found[0] == "output0.scores cosine 0 < 0.99" and "recall 0 < 0.9" in found


def test_an_unperturbed_head_passes_every_raw_gate():
    ref = detector_head()
    found, ran, status, _ = check_tolerances({"output0": (ref, ref.copy())}, decoded(ref, ref), TASK.tolerance("fp32"))
    assert status == "passed" and found == [] and len(ran) == 4 + 5 and all(g.ok for g in ran)


# --- backends and inference (host-runnable parts) --------------------------------------------------------


def test_open_backend_is_looked_up_by_format_name(tmp_path):
    with pytest.raises(ValueError, match=r"supported: coreml, litert, onnx, openvino, tensorrt, torchscript"):
        open_backend(tmp_path / "model.pdmodel", "paddle")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        open_backend(tmp_path / "missing.onnx", "onnx")


def test_inference_needs_square_imgsz(tmp_path):
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"input_shape": [480, 640, 3], "class_names": []}))
    with pytest.raises(ValueError, match="square"):
        YOLOInference(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="no imgsz"):
        YOLOInference(tmp_path / "elsewhere" / "model.onnx")


# --- needs OpenCV / ONNX Runtime / torch: skipped on the bare host ---------------------------------------


def test_letterbox_matches_ultralytics_rounding():  # needs cv2
    pytest.importorskip("cv2")
    img = np.zeros((30, 64, 3), dtype=np.uint8)
    img[..., 2] = 255  # pure red in BGR
    x = letterbox(img, 32)  # scale 0.5 -> 32x15 content, dh 8.5 -> 8 rows on top, 9 at the bottom
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    pad = np.float32(114) / np.float32(255)
    assert (x[0, :, :8] == pad).all() and (x[0, :, 23:] == pad).all()
    assert (x[0, 0, 8:23] == 1.0).all() and (x[0, 1:, 8:23] == 0.0).all()  # RGB order
    np.testing.assert_array_equal(letterbox(img, 32), x)
    with pytest.raises(ValueError, match="multiple of stride"):
        letterbox(img, 100)


@pytest.mark.parametrize("imgsz", [160, 320, 640])
def test_letterbox_matches_ultralytics_letterbox_bit_for_bit(imgsz):  # needs cv2 and ultralytics
    pytest.importorskip("cv2")
    augment = pytest.importorskip("ultralytics.data.augment")
    rng = np.random.default_rng(imgsz)
    for h, w in ((30, 64), (480, 640), (640, 480), (333, 517), (1080, 1920), (100, 100), (17, 900), (641, 639)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        theirs = augment.LetterBox(new_shape=(imgsz, imgsz), auto=False, scaleup=True, center=True)(image=img)
        ours = np.rint(letterbox(img, imgsz)[0] * 255).astype(np.uint8).transpose(1, 2, 0)[..., ::-1]  # back to BGR
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{h}x{w} at {imgsz}")
        assert np.array_equal(letterbox(img, imgsz)[0], (ours[..., ::-1].transpose(2, 0, 1) / np.float32(255)))


def test_load_image_missing_names_path(tmp_path):  # needs cv2
    pytest.importorskip("cv2")
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_image(tmp_path / "nope.jpg")


def test_onnx_backend_runs_float16_model(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["images", "images"], ["output0"])],
        "double",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT16, [1, 3, 2, 2])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT16, [1, 3, 2, 2])],
    )
    # Pin the IR version: the onnx package's default can be newer than what the installed ORT can load.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "m.onnx")
    backend = open_backend(tmp_path / "m.onnx", "onnx")
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    (out,) = backend.run(x)
    assert backend.outputs == ["output0"]
    np.testing.assert_array_equal(out, 2 * x)


def _save_constant_torchscript(path: Path, value: np.ndarray) -> None:
    torch = pytest.importorskip("torch")

    class Constant(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("value", torch.from_numpy(value))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
            return self.value + 0 * x.sum(), [x + 1]

    torch.jit.script(Constant()).save(str(path))


def test_torchscript_backend_flattens_outputs(tmp_path):
    _save_constant_torchscript(tmp_path / "m.torchscript", head_output())
    backend = open_backend(tmp_path / "m.torchscript", "torchscript")
    x = np.zeros((1, 3, 4, 4), dtype=np.float32)
    head, plus_one = backend.run(x)
    assert backend.outputs == ["output0", "output1"]
    np.testing.assert_array_equal(head, head_output())
    np.testing.assert_array_equal(plus_one, x + 1)


def test_yolo_inference_end_to_end(tmp_path):  # needs cv2 and torch
    cv2 = pytest.importorskip("cv2")
    _save_constant_torchscript(tmp_path / "model.torchscript", head_output())
    (tmp_path / "metadata.json").write_text(json.dumps({"input_shape": [64, 64, 3], "class_names": ["cat", "dog"],
                                                         "export_format": "torchscript"}))
    cv2.imwrite(str(tmp_path / "img.png"), np.full((48, 64, 3), 200, dtype=np.uint8))
    model = YOLOInference(tmp_path / "model.torchscript")
    d = model.predict(tmp_path / "img.png")
    assert [model.class_name(c) for c in d.classes] == ["cat", "dog"] and model.class_name(7) == "7"
    np.testing.assert_array_equal(d.boxes, [[40, 40, 60, 60], [42, 40, 62, 60]])
