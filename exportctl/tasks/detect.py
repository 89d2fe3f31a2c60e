"""Object detection (YOLOv8/11 detect heads): boxes, scores and classes after NMS.

Validation decodes the reference's and the candidate's head with the same thresholds and matches the boxes
(IoU, score delta, class agreement, recall/precision); tolerances gate those and the raw tensor errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exportctl.tasks.common import base_metadata, instance_postprocessing, letterbox_input
from exportctl.tasks.instances import BOX_KEYS, InstancesLike, instance_gates, match, summary
from exportctl.tasks.spec import Gate, MetadataFacts, TaskSpec, TensorGroup, Thresholds, ToleranceKey

THRESHOLDS = Thresholds(conf=0.25, iou=0.45, match_iou=0.5)

TOLERANCE_KEYS = (
    ToleranceKey("max_abs", "largest absolute difference of the raw box rows (input pixels)", gt=0),
    ToleranceKey("score_max_abs", "largest absolute difference of the raw class-score rows (probability)", gt=0),
    ToleranceKey("cosine_min", "cosine similarity of the raw box rows, and of the raw score rows", ge=-1, le=1),
    *BOX_KEYS,
)
# Export guide defaults (box IoU > 0.95, score delta < 0.05, classes match) plus raw-tensor bounds.
# max_abs is in output units: box coordinates are input pixels. fp32 exports differ from the unfused PyTorch
# model by 0.02-0.05 px on the demo checkpoint (Conv+BN fusion reorders float math); 0.25 px leaves 5x headroom
# and is still far below anything visible.
# Quantized cells gate on task metrics against the fp32 reference. Measured on the trained test detector (16 scenes,
# 31 boxes; OpenVINO int8, LiteRT w8a32/int8/w8a16): recall 1.0, precision >= 0.969, classes 1.0, mean IoU >= 0.897,
# max score delta <= 0.122, raw cosine >= 0.99975; a blank-image calibration gives recall 0. One missed box in ten
# fails, as does any class flip in twenty; max_abs is not gated (low-score anchors move by tens of pixels).
# Per row group (same detector, imgsz 160): fp32 cells differ by <= 0.0005 px on box rows and <= 1.5e-6 on score
# rows; fp16 by <= 0.34 px and <= 0.0014 (score cosine 0.9999998); quantized cells' score rows keep cosine >= 0.9976
# (LiteRT int8; max abs 0.25, so score_max_abs is not gated there). score_max_abs 0.002 (fp32) and 0.02 (fp16)
# leave >10x headroom and fail a halved or swapped score row, which the whole-tensor cosine (0.99999+) cannot see.
_INT8_LIKE = {"cosine_min": 0.99, "box_iou_min": 0.8, "score_delta_max": 0.2, "class_agreement_min": 0.95,
              "recall_min": 0.9, "precision_min": 0.9}
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs": 0.25, "score_max_abs": 0.002, "cosine_min": 0.99999, "box_iou_min": 0.95,
             "score_delta_max": 0.05, "class_agreement_min": 1.0, "recall_min": 0.95, "precision_min": 0.95},
    "fp16": {"max_abs": 1.0, "score_max_abs": 0.02, "cosine_min": 0.999, "box_iou_min": 0.9,
             "score_delta_max": 0.05, "class_agreement_min": 0.95, "recall_min": 0.9, "precision_min": 0.9},
    "int8": _INT8_LIKE,
    "w8a16": _INT8_LIKE,
    "w8a32": _INT8_LIKE,
}


def detection_metrics(ref: list[InstancesLike], cand: list[InstancesLike], match_iou: float = 0.5) -> dict[str, Any]:
    """Match reference to candidate detections per image (`instances.match`) and summarise the agreement."""
    from yolo_runtime import box_iou

    return summary(ref, cand, match(ref, cand, match_iou, box_iou))


HEAD = "output0"  # the detect head's output: [B, 4 + nc, anchors]


def metrics(ref_outputs: Mapping[str, Any], cand_outputs: Mapping[str, Any], thresholds: Thresholds,
            model: Mapping[str, Any]) -> dict[str, Any]:
    """Decode both heads with the same thresholds, then match their boxes."""
    from yolo_runtime import decode_detections

    ref = decode_detections(ref_outputs[HEAD], conf=thresholds.conf, iou=thresholds.iou)
    cand = decode_detections(cand_outputs[HEAD], conf=thresholds.conf, iou=thresholds.iou)
    return detection_metrics(ref, cand, match_iou=thresholds.match_iou)


def tensor_groups(name: str, shape: list[int], model: Mapping[str, Any]) -> list[TensorGroup]:
    """Box rows (xywh, input pixels) and class-score rows (sigmoid probabilities) of the head."""
    if name != HEAD or len(shape) != 3:
        return [TensorGroup("all", 0, 0, None, "max_abs")]
    return [TensorGroup("boxes", 1, 0, 4, "max_abs"), TensorGroup("scores", 1, 4, None, "score_max_abs")]


def gates(detection: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[Gate]:
    """The detection gates the tolerances set (`instances.instance_gates`)."""
    return instance_gates(detection, tol)


def violations(detection: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[str]:
    """The detection gates that ran and failed, as users read them."""
    return [g.violation() for g in gates(detection, tol) if g.ran and not g.ok]


def metadata(facts: MetadataFacts) -> dict[str, Any]:
    """The export guide's `metadata.json` for one detection artifact."""
    return {**base_metadata(facts, "detection"), "anchor_based": False,
            "postprocessing": instance_postprocessing(facts)}


TASK = TaskSpec(
    name="detect",
    default=True,
    reference_outputs=1,
    thresholds=THRESHOLDS,
    tolerance_keys=TOLERANCE_KEYS,
    default_tolerances=DEFAULT_TOLERANCES,
    preprocess=letterbox_input,
    metrics=metrics,
    gates=gates,
    tensor_groups=tensor_groups,
    metadata=metadata,
    metrics_key="detection",
)
