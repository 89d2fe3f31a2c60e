"""yolo_runtime's decoders of every task beyond detection, and the task specs' metrics and gates, with hand-computed
expectations.

Runs on a bare host (numpy + pytest). Tests that need OpenCV, torch or Ultralytics skip themselves there;
tests/integration/test_runtime_in_toolchain.py runs this file again inside the ONNX toolchain environment, where
they all run (and must: it fails on any skip), against Ultralytics' own implementations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "runtimes" / "python"))
sys.path.insert(0, str(REPO))

from yolo_runtime import Classification, center_crop, decode_classes  # noqa: E402

from exportctl import tasks  # noqa: E402
from exportctl.cell.metrics import group_metrics, tensor_checks, tensor_metrics  # noqa: E402
from exportctl.cell.validate import verdict  # noqa: E402

CLASSIFY = tasks.registry()["classify"]


def raw_gates(task: tasks.TaskSpec, ref: dict[str, np.ndarray], cand: dict[str, np.ndarray], precision: str,
              model: dict) -> list:
    """The raw-tensor gates validate.py computes, per output and group of rows."""
    tensor, groups = {}, {}
    for name, r in ref.items():
        tensor[name] = tensor_metrics(r, cand[name])
        groups[name] = task.tensor_groups(name, list(r.shape), model)
        tensor[name]["groups"] = group_metrics(r, cand[name], groups[name])
    return tensor_checks(tensor, groups, task.tolerance(precision))[1]


# --- classify ----------------------------------------------------------------------------------------------------


def test_classes_rank_by_probability_ties_by_index():
    (c,) = decode_classes(np.array([[0.1, 0.3, 0.3, 0.05, 0.05, 0.1, 0.1]], dtype=np.float32))
    assert c.ranked.tolist() == [1, 2, 0, 5, 6, 3, 4]
    assert c.top1 == 1 and c.top5 == [1, 2, 0, 5, 6] and c.top1conf == pytest.approx(0.3)
    assert len(decode_classes(np.zeros((3, 4), np.float32))) == 3
    with pytest.raises(ValueError, match=r"\[B, nc\]"):
        decode_classes(np.zeros((1, 4, 2), np.float32))


def test_classification_metrics_count_flips_overlap_and_probability_change():
    ref = [Classification(np.array(p, np.float32)) for p in
           ([0.5, 0.2, 0.1, 0.1, 0.05, 0.05], [0.1, 0.6, 0.1, 0.1, 0.05, 0.05])]
    same = CLASSIFY.metrics({"output0": np.stack([r.probs for r in ref])},
                            {"output0": np.stack([r.probs for r in ref])}, CLASSIFY.thresholds, {})
    assert same["top1_agreement"] == same["top5_overlap"] == 1.0 and same["max_prob_delta"] == 0.0
    assert same["min_ref_margin"] == pytest.approx(0.3)
    # image 0: top-1 flips to class 1 and class 5 enters the top 5 in place of class 4
    cand = np.array([[0.2, 0.5, 0.1, 0.1, 0.02, 0.08], [0.1, 0.6, 0.1, 0.1, 0.05, 0.05]], np.float32)
    m = CLASSIFY.metrics({"output0": np.stack([r.probs for r in ref])}, {"output0": cand}, CLASSIFY.thresholds, {})
    assert m["top1_agreement"] == 0.5 and m["max_prob_delta"] == pytest.approx(0.3)
    assert m["top5_overlap"] == pytest.approx((4 / 5 + 1) / 2) and m["min_top5_overlap"] == pytest.approx(0.8)
    gates = CLASSIFY.gates(m, CLASSIFY.tolerance("fp32"))
    failed = {g.name for g in gates if not g.ok}
    assert failed == {"top1_agreement", "top5_overlap", "max_prob_delta"}
    violations, status, _ = verdict([], gates)
    assert status.value == "failed" and any(v.startswith("top1_agreement 0.5 < 1") for v in violations)


def test_top5_overlap_counts_a_quantized_candidates_ties_for_the_reference():
    """int8 softmax outputs round every small probability to the same step: their order is no disagreement."""
    ref = np.array([[0.9, 0.04, 0.03, 0.02, 0.008, 0.002]], np.float32)
    tied = np.array([[1, 0, 0, 0, 0, 0]], np.float32)  # any five of the six sort first
    assert CLASSIFY.metrics({"output0": ref}, {"output0": tied}, CLASSIFY.thresholds, {})["top5_overlap"] == 1.0
    above = np.array([[0.99609375, 0, 0, 0, 0, 0.00390625]], np.float32)  # class 5 is really above 1-4: one is out
    assert CLASSIFY.metrics({"output0": ref}, {"output0": above}, CLASSIFY.thresholds, {})["top5_overlap"] == 0.8
    moved = np.array([[0.9, 0, 0, 0.03, 0.03, 0.04]], np.float32)  # 5 and 4 are really above the reference's 1, 2
    m = CLASSIFY.metrics({"output0": ref}, {"output0": moved}, CLASSIFY.thresholds, {})
    assert m["top5_overlap"] == pytest.approx(4 / 5)  # {0, 3, 4, 5} certain, one of the tied {1, 2}


def test_classify_gates_cannot_run_without_comparable_outputs():
    gates = CLASSIFY.gates(None, CLASSIFY.tolerance("int8"))
    assert gates and not any(g.ran for g in gates) and all("shapes differ" in g.why for g in gates)


def test_a_probability_only_perturbation_fails_the_classify_raw_gates():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    swapped = probs[:, ::-1].copy()  # same values, other classes
    assert all(g.ok for g in raw_gates(CLASSIFY, {"output0": probs}, {"output0": probs}, "fp32", {}))
    failed = [g for g in raw_gates(CLASSIFY, {"output0": probs}, {"output0": swapped}, "fp32", {}) if not g.ok]
    assert {g.name for g in failed} == {"output0.scores max_abs", "output0.scores cosine"}


@pytest.mark.parametrize("shape", [(128, 128), (90, 200), (301, 77), (64, 64)])
def test_center_crop_matches_ultralytics_bit_for_bit(shape):  # needs cv2 and ultralytics
    pytest.importorskip("cv2")
    augment = pytest.importorskip("ultralytics.data.augment")
    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = center_crop(img, 96)
    theirs = augment.CenterCrop(96)(img)  # BGR HWC uint8
    expected = np.ascontiguousarray(theirs[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / np.float32(255)
    assert ours.shape == (1, 3, 96, 96) and ours.dtype == np.float32
    assert np.array_equal(ours, expected)


# --- segment -----------------------------------------------------------------------------------------------------

SEGMENT = tasks.registry()["segment"]


def segment_outputs(seed: int = 0, nc: int = 2, nm: int = 4, anchors: int = 40, imgsz: int = 32
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A [1, 4+nc+nm, A] head (a few confident anchors, boxes inside the image) and [1, nm, imgsz/4, imgsz/4]
    prototypes."""
    rng = np.random.default_rng(seed)
    head = np.zeros((1, 4 + nc + nm, anchors), np.float32)
    head[0, 0:2] = rng.uniform(8, imgsz - 8, (2, anchors))
    head[0, 2:4] = rng.uniform(6, 14, (2, anchors))
    head[0, 4 : 4 + nc] = rng.uniform(0, 0.3, (nc, anchors))
    head[0, 4, :5] = [0.9, 0.8, 0.7, 0.6, 0.5]
    head[0, 4 + nc :] = rng.normal(size=(nm, anchors))
    return head, rng.normal(size=(1, nm, imgsz // 4, imgsz // 4)).astype(np.float32)


def test_segments_are_boxes_with_cropped_masks_at_input_resolution():
    from yolo_runtime import decode_detections, decode_segments

    head, protos = segment_outputs()
    (seg,) = decode_segments(head, protos, 32)
    (det,) = decode_detections(head[:, : 4 + 2])  # the same boxes as a detector with the mask rows removed
    assert np.array_equal(seg.boxes, det.boxes) and np.array_equal(seg.classes, det.classes)
    assert seg.masks.shape == (len(seg), 32, 32) and seg.masks.dtype == bool
    for box, mask in zip(seg.boxes, seg.masks, strict=True):  # nothing outside the box
        ys, xs = np.nonzero(mask)
        assert (xs >= np.floor(box[0])).all() and (xs < box[2]).all() and (ys >= np.floor(box[1])).all()
    with pytest.raises(ValueError, match="segment outputs"):
        decode_segments(head, protos[0], 32)


def test_masks_match_ultralytics_process_mask():  # needs torch and ultralytics
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("ultralytics.utils.ops")
    from yolo_runtime import process_masks

    rng = np.random.default_rng(1)
    protos = rng.normal(size=(8, 40, 40)).astype(np.float32)
    coefficients = rng.normal(size=(5, 8)).astype(np.float32)
    boxes = np.array([[3.2, 7.9, 90.1, 120.0], [0, 0, 160, 160], [50.5, 60.5, 51.5, 61.5], [10, 10, 9, 9],
                      [100.2, 3.7, 159.9, 80.4]], np.float32)
    theirs = ops.process_mask(torch.from_numpy(protos), torch.from_numpy(coefficients), torch.from_numpy(boxes),
                              (160, 160), upsample=True).numpy().astype(bool)
    ours = process_masks(protos, coefficients, boxes, (160, 160))
    assert ours.shape == theirs.shape
    assert (ours != theirs).sum() <= 2, "float32 rounding may flip a pixel sitting exactly on the 0 threshold"


def test_mask_iou_and_segmentation_metrics():
    from yolo_runtime import decode_segments, mask_iou

    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    head, protos = segment_outputs()
    model = {"imgsz": 32, "names": {"0": "a", "1": "b"}}
    same = SEGMENT.metrics({"output0": head, "output1": protos}, {"output0": head, "output1": protos},
                           SEGMENT.thresholds, model)
    assert same["recall"] == 1.0 and same["mask_mean_iou"] == same["mask_worst_iou"] == 1.0
    flipped = protos.copy()
    flipped[0, 0] *= -1  # one prototype inverted: the boxes stay, the masks change
    m = SEGMENT.metrics({"output0": head, "output1": protos}, {"output0": head, "output1": flipped},
                        SEGMENT.thresholds, model)
    assert m["recall"] == 1.0 and m["mask_worst_iou"] < 0.9
    failed = {g.name for g in SEGMENT.gates(m, SEGMENT.tolerance("fp32")) if not g.ok}
    assert "mask worst_iou" in failed and "box mean_iou" not in failed
    assert len(decode_segments(head, protos, 32)[0]) == m["ref_boxes"]


def test_segment_raw_groups_split_boxes_scores_coefficients_and_protos():
    head, protos = segment_outputs()
    model = {"names": {"0": "a", "1": "b"}}
    groups = {g.name: (g.start, g.stop) for g in SEGMENT.tensor_groups("output0", list(head.shape), model)}
    assert groups == {"boxes": (0, 4), "scores": (4, 6), "mask coefficients": (6, None)}
    assert [g.name for g in SEGMENT.tensor_groups("output1", list(protos.shape), model)] == ["protos"]
    scored = head.copy()
    scored[0, 4:6] *= 0.5  # class scores halved, nothing else
    failed = {g.name for g in raw_gates(SEGMENT, {"output0": head, "output1": protos},
                                        {"output0": scored, "output1": protos}, "fp32", model) if not g.ok}
    assert failed == {"output0.scores max_abs"}  # halved scores keep their direction: cosine 1


# --- pose --------------------------------------------------------------------------------------------------------

POSE = tasks.registry()["pose"]


def pose_output(seed: int = 0, k: int = 3, anchors: int = 30) -> np.ndarray:
    """A [1, 4+1+k*3, A] pose head: one class, k keypoints (x, y, visibility) near each box."""
    rng = np.random.default_rng(seed)
    head = np.zeros((1, 5 + 3 * k, anchors), np.float32)
    head[0, 0:2] = rng.uniform(20, 140, (2, anchors))
    head[0, 2:4] = rng.uniform(10, 30, (2, anchors))
    head[0, 4] = rng.uniform(0, 0.2, anchors)
    head[0, 4, [0, 7, 15]] = [0.9, 0.8, 0.7]
    for i in range(k):
        head[0, 5 + 3 * i] = head[0, 0] + rng.uniform(-5, 5, anchors)
        head[0, 6 + 3 * i] = head[0, 1] + rng.uniform(-5, 5, anchors)
        head[0, 7 + 3 * i] = rng.uniform(0.6, 1.0, anchors)
    return head


def test_poses_carry_their_keypoints_and_oks_matches_ultralytics():
    from yolo_runtime import decode_poses, oks

    head = pose_output()
    (poses,) = decode_poses(head, (3, 3))
    assert len(poses) == 3 and poses.keypoints.shape == (3, 3, 3)
    assert np.allclose(poses.keypoints[0].reshape(-1), head[0, 5:, 0])
    assert oks(poses.keypoints[0], poses.keypoints[0], poses.boxes[0]) == 1.0
    moved = poses.keypoints[0].copy()
    moved[:, :2] += 2.0
    value = oks(poses.keypoints[0], moved, poses.boxes[0])
    assert 0 < value < 1
    metrics = pytest.importorskip("ultralytics.utils.metrics")
    torch = pytest.importorskip("torch")
    area = float(np.prod(poses.boxes[0, 2:] - poses.boxes[0, :2])) * 0.53
    theirs = metrics.kpt_iou(torch.from_numpy(poses.keypoints[0][None]).double(),
                             torch.from_numpy(moved[None]).double(), torch.tensor([area], dtype=torch.float64),
                             torch.ones(3, dtype=torch.float64) / 3)
    assert value == pytest.approx(float(theirs[0, 0]), rel=1e-6)


def test_pose_metrics_and_gates_see_moved_and_hidden_keypoints():
    head = pose_output()
    model = {"kpt_shape": [3, 3], "names": {"0": "triangle"}}
    same = POSE.metrics({"output0": head}, {"output0": head}, POSE.thresholds, model)
    assert same["keypoint_error_max"] == 0.0 and same["oks_min"] == 1.0 and same["visibility_agreement"] == 1.0
    cand = head.copy()
    cand[0, 5] += 3.0  # the first keypoint's x moves 3 px everywhere
    cand[0, 13] = 0.1  # the third keypoint is hidden everywhere
    m = POSE.metrics({"output0": head}, {"output0": cand}, POSE.thresholds, model)
    assert m["recall"] == 1.0 and m["keypoint_error_max"] == pytest.approx(1.0, abs=1e-4)  # 3 px / 3 keypoints
    assert m["visibility_agreement"] == pytest.approx(2 / 3)
    failed = {g.name for g in POSE.gates(m, POSE.tolerance("fp32")) if not g.ok}
    assert {"keypoint_error_max", "visibility_agreement"} <= failed and "box mean_iou" not in failed
    groups = {g.name: (g.start, g.stop) for g in POSE.tensor_groups("output0", list(head.shape), model)}
    assert groups == {"boxes": (0, 4), "scores": (4, 5), "keypoints": (5, None)}
    raw = {g.name for g in raw_gates(POSE, {"output0": head}, {"output0": cand}, "fp32", model) if not g.ok}
    assert raw == {"output0.keypoints max_abs", "output0.keypoints cosine"}  # boxes and scores untouched


# --- obb ---------------------------------------------------------------------------------------------------------

OBB = tasks.registry()["obb"]


def test_probiou_matches_ultralytics_and_is_one_for_equal_boxes():
    from yolo_runtime import probiou

    a = np.array([[50, 50, 40, 10, 0.3], [80, 80, 20, 20, 1.0]], np.float64)
    b = np.array([[50, 50, 40, 10, 0.3 + np.pi], [52, 49, 38, 11, 0.35], [10, 10, 5, 5, 0.0]], np.float64)
    ours = probiou(a, b)
    assert ours.shape == (2, 3) and ours[0, 0] == pytest.approx(1.0, abs=1e-3) and ours[0, 2] < 0.01
    metrics = pytest.importorskip("ultralytics.utils.metrics")
    torch = pytest.importorskip("torch")
    theirs = metrics.batch_probiou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert np.allclose(ours, theirs, atol=1e-6)


def test_rotated_boxes_are_regularized_and_angles_compare_modulo_pi():
    from yolo_runtime import angle_error, corners, decode_rotated

    head = np.zeros((1, 4 + 2 + 1, 3), np.float32)
    head[0, :4, 0] = [50, 50, 10, 40]  # taller than wide: w/h swap, angle + pi/2
    head[0, :4, 1] = [100, 100, 30, 10]
    head[0, 4, 0], head[0, 5, 1], head[0, 4, 2] = 0.9, 0.8, 0.1
    head[0, 6] = [0.1, -0.5, 0.0]
    (det,) = decode_rotated(head)
    assert len(det) == 2 and det.classes.tolist() == [0, 1]
    assert det.boxes[0].tolist() == pytest.approx([50, 50, 40, 10, 0.1 + np.pi / 2], abs=1e-5)
    assert det.boxes[1, 4] == pytest.approx(np.pi - 0.5, abs=1e-5)
    assert angle_error(0.05, np.pi - 0.05) == pytest.approx(0.1) and angle_error(1.0, 1.0 + np.pi) == pytest.approx(0)
    square = corners(np.array([[0, 0, 2, 2, 0]]))[0]
    assert np.allclose(square, [[1, 1], [1, -1], [-1, -1], [-1, 1]])
    ops = pytest.importorskip("ultralytics.utils.ops")
    torch = pytest.importorskip("torch")
    boxes = np.array([[50, 50, 40, 10, 0.3], [5, 7, 3, 9, 2.0]], np.float32)
    assert np.allclose(corners(boxes), ops.xywhr2xyxyxyxy(torch.from_numpy(boxes)).numpy(), atol=1e-4)


def test_obb_metrics_and_gates_see_a_turned_box():
    head = np.zeros((1, 4 + 2 + 1, 4), np.float32)
    head[0, :4] = [[30, 90, 60, 120], [30, 40, 90, 120], [40, 60, 30, 20], [12, 20, 10, 8]]
    head[0, 4] = [0.9, 0.1, 0.7, 0.0]
    head[0, 5] = [0.1, 0.8, 0.1, 0.0]
    head[0, 6] = [0.2, 1.0, 2.0, 0.0]
    same = OBB.metrics({"output0": head}, {"output0": head}, OBB.thresholds, {})
    assert same["recall"] == 1.0 and same["angle_error_max"] == 0.0
    turned = head.copy()
    turned[0, 6, 0] += 0.05
    m = OBB.metrics({"output0": head}, {"output0": turned}, OBB.thresholds, {})
    assert m["recall"] == 1.0 and m["angle_error_max"] == pytest.approx(0.05, abs=1e-5)
    failed = {g.name for g in OBB.gates(m, OBB.tolerance("fp32")) if not g.ok}
    assert "angle_error_max" in failed
    raw = {g.name for g in raw_gates(OBB, {"output0": head}, {"output0": turned}, "fp32", {}) if not g.ok}
    assert raw == {"output0.angles max_abs", "output0.angles cosine"}  # boxes and scores untouched
