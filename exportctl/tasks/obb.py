"""Oriented bounding boxes (YOLOv8/11/26 -obb heads): rotated boxes (xywhr), scores and classes after NMS.

Validation decodes both sides with the same thresholds (`yolo_runtime.decode_rotated`: class-aware NMS by
Ultralytics' probabilistic IoU), matches the boxes by that IoU (`instances`) and compares the matched boxes'
rotations modulo pi (a box turned by pi is the same box). Raw outputs are gated per meaning: box rows, class-score
rows and the angle row.
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

HEAD = "output0"  # [B, 4 + nc + 1, anchors]: xywh, class scores, rotation (radians)

TOLERANCE_KEYS = (
    BOX_MAX_ABS,
    SCORE_MAX_ABS,
    ToleranceKey("angle_max_abs", "largest absolute difference of the raw angle row (radians)", gt=0),
    RAW_COSINE,
    *BOX_KEYS,
    ToleranceKey("angle_error_max", "largest rotation difference of matched boxes, modulo pi (radians)", ge=0),
)
# Measured on the trained test OBB model (tests/fixtures/obb.pt, 16 scenes, 25 boxes): fp32 cells turn boxes by
# <= 5e-7 rad (raw angle row 4e-6), fp16 by <= 0.001 rad (raw 0.004; box rows 0.71 px). Statically quantized cells
# (OpenVINO int8, LiteRT int8 / w8a16) recall 0.92-0.96 with classes 0.957, move scores by up to 0.245 (score-row
# cosine 0.987) and turn one box by up to 0.37 rad (mean 0.05); LiteRT w8a32 stays within 0.014 rad. The int8-like
# bounds sit just outside those (score delta 0.3, cosine 0.98, angle 0.5 rad): one more missed box in ten, a class
# flip in twenty or a box turned by 30 degrees fails.
_INT8_LIKE = {"cosine_min": 0.98, "box_iou_min": 0.8, "score_delta_max": 0.3, "class_agreement_min": 0.95,
              "recall_min": 0.9, "precision_min": 0.9, "angle_error_max": 0.5}
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs": 0.25, "score_max_abs": 0.002, "angle_max_abs": 0.002, "cosine_min": 0.99999,
             "box_iou_min": 0.95, "score_delta_max": 0.05, "class_agreement_min": 1.0, "recall_min": 0.95,
             "precision_min": 0.95, "angle_error_max": 0.01},
    "fp16": {"max_abs": 2.0, "score_max_abs": 0.02, "angle_max_abs": 0.02, "cosine_min": 0.999, "box_iou_min": 0.9,
             "score_delta_max": 0.05, "class_agreement_min": 0.95, "recall_min": 0.9, "precision_min": 0.9,
             "angle_error_max": 0.03},
    "int8": _INT8_LIKE,
    "w8a16": _INT8_LIKE,
    "w8a32": _INT8_LIKE,
}


def rotated_metrics(ref: list[Any], cand: list[Any], match_iou: float) -> dict[str, Any]:
    """Rotated boxes matched by probiou; then the matched pairs' rotation error (lists of
    `yolo_runtime.RotatedDetections`). `mean_iou`/`min_iou` are probiou."""
    from yolo_runtime import angle_error, probiou

    pairs = match(ref, cand, match_iou, probiou)
    errors = [float(angle_error(ref[p.image].boxes[p.ref, 4], cand[p.image].boxes[p.cand, 4])) for p in pairs]
    return {**summary(ref, cand, pairs),
            "angle_error_mean": sum(errors) / len(errors) if errors else None,
            "angle_error_max": max(errors) if errors else None}


def metrics(ref_outputs: Mapping[str, Any], cand_outputs: Mapping[str, Any], thresholds: Thresholds,
            model: Mapping[str, Any]) -> dict[str, Any]:
    from yolo_runtime import decode_rotated

    ref = decode_rotated(ref_outputs[HEAD], conf=thresholds.conf, iou=thresholds.iou)
    cand = decode_rotated(cand_outputs[HEAD], conf=thresholds.conf, iou=thresholds.iou)
    return rotated_metrics(ref, cand, thresholds.match_iou)


def tensor_groups(name: str, shape: list[int], model: Mapping[str, Any]) -> list[TensorGroup]:
    """Box rows (xywh, input pixels), class-score rows (probabilities) and the angle row (radians)."""
    if name != HEAD or len(shape) != 3 or shape[1] < 6:
        return [TensorGroup("all", 0, 0, None, "max_abs")]
    return [TensorGroup("boxes", 1, 0, 4, "max_abs"), TensorGroup("scores", 1, 4, shape[1] - 1, "score_max_abs"),
            TensorGroup("angles", 1, shape[1] - 1, None, "angle_max_abs")]


_GATES = (*BOX_GATES, ("angle_error_max", "angle_error_max", "angle_error_max", True))


def gates(measured: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[Gate]:
    return instance_gates(measured, tol, _GATES)


def metadata(facts: MetadataFacts) -> dict[str, Any]:
    """The export guide's common fields, and the rotated-box convention (Ultralytics'): centre, size, rotation."""
    return {**base_metadata(facts, "obb"), "anchor_based": False,
            "postprocessing": {**instance_postprocessing(facts, coordinate_format="xywhr"),
                               "angle_unit": "radians",
                               "angle_range": "[0, pi) after w >= h (raw head: [-pi/4, 3pi/4))",
                               "angle_convention": "w side from the x axis towards y (y down)",
                               "iou_type": "probiou"}}


TASK = TaskSpec(
    name="obb",
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
    metrics_key="obb",
    arch_marker="-obb",
)
