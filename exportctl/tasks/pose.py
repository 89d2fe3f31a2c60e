"""Pose estimation (YOLOv8/11/26 -pose heads): boxes as detection, plus K keypoints per instance.

Validation decodes both sides with the same thresholds (`yolo_runtime.decode_poses`), matches the boxes
(`instances`), then compares each matched instance's keypoints: the mean pixel distance over the keypoints the
reference sees, the object keypoint similarity (COCO's sigmas for 17-keypoint models, uniform otherwise; the
reference box's area as scale) and whether both sides see the same keypoints. Raw outputs are gated per meaning:
box rows, class-score rows and keypoint rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exportctl.tasks.common import (
    BOX_MAX_ABS,
    RAW_COSINE,
    SCORE_MAX_ABS,
    base_metadata,
    instance_postprocessing,
    letterbox_input,
)
from exportctl.tasks.instances import BOX_GATES, BOX_KEYS, instance_gates, match, summary
from exportctl.tasks.spec import Gate, MetadataFacts, TaskSpec, TensorGroup, Thresholds, ToleranceKey

HEAD = "output0"  # [B, 4 + nc + K * D, anchors]
# COCO's person skeleton (1-based keypoint pairs, as its annotations and the export guide write it)
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
                 [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
COCO_KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle"]

TOLERANCE_KEYS = (
    BOX_MAX_ABS,
    SCORE_MAX_ABS,
    ToleranceKey("keypoint_max_abs", "largest absolute difference of the raw keypoint rows (pixels, visibility)",
                 gt=0),
    RAW_COSINE,
    *BOX_KEYS,
    ToleranceKey("keypoint_error_max", "largest mean keypoint distance of a matched instance (input pixels)", ge=0),
    ToleranceKey("oks_min", "mean object keypoint similarity of matched instances", ge=0, le=1),
    ToleranceKey("visibility_agreement_min", "share of matched keypoints both sides see, or both miss", ge=0, le=1),
)
# Measured on the trained test pose model (tests/fixtures/pose.pt, 16 scenes, 23 triangles of 26-53 px): fp32 cells
# move keypoints by <= 3e-5 px (raw keypoint rows 0.0005), fp16 by <= 0.047 px (raw 0.17; box rows 0.33 px), OKS
# 1.0 in both. Quantized cells: the worst instance's mean keypoint error is 2.9-4.3 px (OpenVINO int8 the most),
# OKS >= 0.958 per instance and >= 0.991 on average, visibility agreement 1.0, raw keypoint cosine >= 0.9985.
_INT8_LIKE = {"cosine_min": 0.99, "box_iou_min": 0.8, "score_delta_max": 0.2, "class_agreement_min": 0.95,
              "recall_min": 0.9, "precision_min": 0.9, "keypoint_error_max": 8.0, "oks_min": 0.95,
              "visibility_agreement_min": 0.95}
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs": 0.25, "score_max_abs": 0.002, "keypoint_max_abs": 0.25, "cosine_min": 0.99999,
             "box_iou_min": 0.95, "score_delta_max": 0.05, "class_agreement_min": 1.0, "recall_min": 0.95,
             "precision_min": 0.95, "keypoint_error_max": 0.25, "oks_min": 0.99, "visibility_agreement_min": 1.0},
    "fp16": {"max_abs": 1.0, "score_max_abs": 0.02, "keypoint_max_abs": 1.0, "cosine_min": 0.999, "box_iou_min": 0.9,
             "score_delta_max": 0.05, "class_agreement_min": 0.95, "recall_min": 0.9, "precision_min": 0.9,
             "keypoint_error_max": 1.0, "oks_min": 0.99, "visibility_agreement_min": 0.99},
    "int8": _INT8_LIKE,
    "w8a16": _INT8_LIKE,
    "w8a32": _INT8_LIKE,
}


def pose_metrics(ref: list[Any], cand: list[Any], match_iou: float) -> dict[str, Any]:
    """Boxes matched as detection; then each matched pair's keypoints (lists of `yolo_runtime.Poses`)."""
    import numpy as np
    from yolo_runtime import box_iou, oks, visible

    pairs = match(ref, cand, match_iou, box_iou)
    errors, similarities, same, seen = [], [], 0, 0
    for p in pairs:
        r, c = ref[p.image].keypoints[p.ref], cand[p.image].keypoints[p.cand]
        mask = visible(r)
        distance = np.linalg.norm(r[:, :2].astype(np.float64) - c[:, :2], axis=1)
        errors.append(float(distance[mask].mean()) if mask.any() else 0.0)
        similarities.append(oks(r, c, ref[p.image].boxes[p.ref]))
        same, seen = same + int((mask == visible(c)).sum()), seen + len(mask)
    return {**summary(ref, cand, pairs),
            "keypoint_error_mean": sum(errors) / len(errors) if errors else None,
            "keypoint_error_max": max(errors) if errors else None,
            "oks_mean": sum(similarities) / len(similarities) if similarities else None,
            "oks_min": min(similarities) if similarities else None,
            "visibility_agreement": same / seen if seen else None}


def _kpt_shape(model: Mapping[str, Any]) -> tuple[int, int]:
    k, d = model.get("kpt_shape") or (17, 3)  # Ultralytics' default (COCO persons) when the reference names none
    return int(k), int(d)


def metrics(ref_outputs: Mapping[str, Any], cand_outputs: Mapping[str, Any], thresholds: Thresholds,
            model: Mapping[str, Any]) -> dict[str, Any]:
    """Decode both sides' boxes and keypoints with the same thresholds, then match and compare."""
    from yolo_runtime import decode_poses

    shape = _kpt_shape(model)
    ref = decode_poses(ref_outputs[HEAD], shape, conf=thresholds.conf, iou=thresholds.iou)
    cand = decode_poses(cand_outputs[HEAD], shape, conf=thresholds.conf, iou=thresholds.iou)
    return pose_metrics(ref, cand, thresholds.match_iou)


def tensor_groups(name: str, shape: list[int], model: Mapping[str, Any]) -> list[TensorGroup]:
    """Box rows (input pixels), class-score rows (probabilities), keypoint rows (pixels and visibilities)."""
    k, d = _kpt_shape(model)
    if name != HEAD or len(shape) != 3 or shape[1] < 5 + k * d:
        return [TensorGroup("all", 0, 0, None, "max_abs")]
    start = shape[1] - k * d
    return [TensorGroup("boxes", 1, 0, 4, "max_abs"), TensorGroup("scores", 1, 4, start, "score_max_abs"),
            TensorGroup("keypoints", 1, start, None, "keypoint_max_abs")]


_GATES = (*BOX_GATES, ("keypoint_error_max", "keypoint_error_max", "keypoint_error_max", True),
          ("oks mean", "oks_mean", "oks_min", False),
          ("visibility_agreement", "visibility_agreement", "visibility_agreement_min", False))


def gates(measured: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[Gate]:
    return instance_gates(measured, tol, _GATES)


def metadata(facts: MetadataFacts) -> dict[str, Any]:
    """The export guide's pose fields: keypoint count (from the artifact's output rows), names and skeleton.

    Names come from the checkpoint (`kpt_names`, recorded by Ultralytics' pose trainer), else COCO's for a
    17-keypoint model; the skeleton is COCO's for 17 keypoints and unknown ([]) otherwise, since checkpoints do not
    record one.
    """
    k, d = _kpt_shape(facts.model)
    head = next((s for s in facts.output_shapes if len(s) == 3), None)
    measured = (head[1] - 4 - len(facts.names)) // d if head else k
    recorded = facts.model.get("kpt_names") or {}
    names = next(iter(recorded.values()), None) or (COCO_KEYPOINTS if measured == len(COCO_KEYPOINTS) else [])
    return {**base_metadata(facts, "pose"), "anchor_based": False,
            "num_keypoints": measured, "keypoint_dims": d, "keypoint_names": list(names),
            "skeleton": COCO_SKELETON if measured == len(COCO_KEYPOINTS) else [],
            "postprocessing": {**instance_postprocessing(facts), "keypoint_format": "xy" + ("v" if d == 3 else ""),
                               "visibility_threshold": 0.5 if d == 3 else None}}


TASK = TaskSpec(
    name="pose",
    default=False,
    reference_outputs=1,
    thresholds=Thresholds(conf=0.25, iou=0.45, match_iou=0.5),
    tolerance_keys=TOLERANCE_KEYS,
    default_tolerances=DEFAULT_TOLERANCES,
    preprocess=letterbox_input,
    metrics=metrics,
    gates=gates,
    tensor_groups=tensor_groups,
    metadata=metadata,
    metrics_key="pose",
    arch_marker="-pose",
)
