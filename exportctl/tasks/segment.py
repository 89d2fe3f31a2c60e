"""Instance segmentation (YOLOv8/11/26 -seg heads): boxes as detection, plus one mask per instance.

Validation decodes both sides' boxes with the same thresholds and matches them (`instances`), then compares the
masks of matched instances: each made from the mask coefficients and the prototypes the way Ultralytics does,
at the input resolution (`yolo_runtime.decode_segments`), and compared by IoU (mean and worst). Raw outputs are
gated per meaning: box rows, class-score rows, mask-coefficient rows and the prototypes.
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

HEAD, PROTOS = "output0", "output1"  # [B, 4 + nc + nm, anchors], [B, nm, mh, mw]

TOLERANCE_KEYS = (
    BOX_MAX_ABS,
    SCORE_MAX_ABS,
    ToleranceKey("mask_max_abs", "largest absolute difference of the raw mask coefficients, and of the prototypes",
                 gt=0),
    RAW_COSINE,
    ToleranceKey("mask_cosine_min", "cosine similarity of the raw mask coefficients, and of the prototypes", ge=-1,
                 le=1),
    *BOX_KEYS,
    ToleranceKey("mask_mean_iou_min", "mean IoU of matched instances' masks (input resolution)", ge=0, le=1),
    ToleranceKey("mask_worst_iou_min", "smallest IoU of a matched instance's masks", ge=0, le=1),
)
# Measured on the trained test segmenter (tests/fixtures/segment.pt, 16 scenes, 33 instances): fp32 cells match
# every mask exactly (IoU 1.0) with raw errors <= 0.0009 px (boxes) and 1.7e-5 (mask rows); fp16 cells keep mask
# IoU >= 0.967 (mean 0.998), boxes move by <= 0.96 px and mask rows by 0.013. Quantized cells: LiteRT int8 is the
# worst (mask IoU mean 0.936, worst 0.799; box IoU mean 0.886), w8a16 and OpenVINO int8 keep mean mask IoU 0.986;
# their raw mask coefficients have cosine 0.906-0.916 over all anchors (background anchors carry arbitrary
# coefficients, which per-tensor int8 scales blur), protos 0.992: mask rows get their own cosine bound.
_INT8_LIKE = {"cosine_min": 0.99, "mask_cosine_min": 0.85, "box_iou_min": 0.8, "score_delta_max": 0.2,
              "class_agreement_min": 0.95, "recall_min": 0.9, "precision_min": 0.9, "mask_mean_iou_min": 0.85,
              "mask_worst_iou_min": 0.6}
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs": 0.25, "score_max_abs": 0.002, "mask_max_abs": 0.01, "cosine_min": 0.99999,
             "mask_cosine_min": 0.99999, "box_iou_min": 0.95, "score_delta_max": 0.05, "class_agreement_min": 1.0,
             "recall_min": 0.95, "precision_min": 0.95, "mask_mean_iou_min": 0.98, "mask_worst_iou_min": 0.9},
    "fp16": {"max_abs": 2.0, "score_max_abs": 0.02, "mask_max_abs": 0.1, "cosine_min": 0.999, "mask_cosine_min": 0.999,
             "box_iou_min": 0.9, "score_delta_max": 0.05, "class_agreement_min": 0.95, "recall_min": 0.9,
             "precision_min": 0.9, "mask_mean_iou_min": 0.95, "mask_worst_iou_min": 0.8},
    "int8": _INT8_LIKE,
    "w8a16": _INT8_LIKE,
    "w8a32": _INT8_LIKE,
}


def segmentation_metrics(ref: list[Any], cand: list[Any], match_iou: float) -> dict[str, Any]:
    """Boxes matched as detection; then the IoU of each matched pair's masks (lists of `yolo_runtime.Segments`)."""
    from yolo_runtime import box_iou, mask_iou

    pairs = match(ref, cand, match_iou, box_iou)
    ious = [mask_iou(ref[p.image].masks[p.ref], cand[p.image].masks[p.cand]) for p in pairs]
    return {**summary(ref, cand, pairs),
            "mask_mean_iou": sum(ious) / len(ious) if ious else None,
            "mask_worst_iou": min(ious) if ious else None}


def metrics(ref_outputs: Mapping[str, Any], cand_outputs: Mapping[str, Any], thresholds: Thresholds,
            model: Mapping[str, Any]) -> dict[str, Any]:
    """Decode both sides' boxes and masks (at the reference's input size) with the same thresholds, then match."""
    from yolo_runtime import decode_segments

    def decode(outputs: Mapping[str, Any]) -> Any:
        return decode_segments(outputs[HEAD], outputs[PROTOS], int(model["imgsz"]), conf=thresholds.conf,
                               iou=thresholds.iou)

    return segmentation_metrics(decode(ref_outputs), decode(cand_outputs), thresholds.match_iou)


def tensor_groups(name: str, shape: list[int], model: Mapping[str, Any]) -> list[TensorGroup]:
    """Box rows (input pixels), class-score rows (probabilities), mask-coefficient rows; the prototypes whole."""
    if name == PROTOS:
        return [TensorGroup("protos", 0, 0, None, "mask_max_abs", "mask_cosine_min")]
    nc = len(model.get("names", {}))
    if name != HEAD or len(shape) != 3 or not nc:
        return [TensorGroup("all", 0, 0, None, "max_abs")]
    return [TensorGroup("boxes", 1, 0, 4, "max_abs"), TensorGroup("scores", 1, 4, 4 + nc, "score_max_abs"),
            TensorGroup("mask coefficients", 1, 4 + nc, None, "mask_max_abs", "mask_cosine_min")]


_GATES = (*BOX_GATES, ("mask mean_iou", "mask_mean_iou", "mask_mean_iou_min", False),
          ("mask worst_iou", "mask_worst_iou", "mask_worst_iou_min", False))


def gates(measured: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[Gate]:
    return instance_gates(measured, tol, _GATES)


def metadata(facts: MetadataFacts) -> dict[str, Any]:
    """The export guide's segmentation fields: the prototypes' resolution and count as the artifact outputs them."""
    protos = next((s for s in facts.output_shapes if len(s) == 4), [0, 0, 0, 0])
    return {**base_metadata(facts, "segmentation"), "anchor_based": False,
            "mask_resolution": protos[2:], "num_masks": protos[1],
            "postprocessing": {**instance_postprocessing(facts), "mask_format": "coefficients x prototypes",
                               "mask_upsample": "bilinear", "mask_threshold": 0.0, "mask_crop": "box"}}


TASK = TaskSpec(
    name="segment",
    default=False,
    reference_outputs=2,
    thresholds=Thresholds(conf=0.25, iou=0.45, match_iou=0.5),
    tolerance_keys=TOLERANCE_KEYS,
    default_tolerances=DEFAULT_TOLERANCES,
    preprocess=letterbox_input,
    metrics=metrics,
    gates=gates,
    tensor_groups=tensor_groups,
    metadata=metadata,
    metrics_key="segmentation",
    arch_marker="-seg",
)
