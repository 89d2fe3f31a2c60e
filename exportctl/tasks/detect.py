"""Object detection (YOLOv8/11 detect heads): boxes, scores and classes after NMS.

Validation decodes the reference's and the candidate's head with the same thresholds and matches the boxes
(IoU, score delta, class agreement, recall/precision); tolerances gate those and the raw tensor errors. On a
labelled set, box mAP50-95 and mAP50 as `yolo val` computes them, gated on their drop from the reference's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from exportctl.tasks.spec import (
    Accuracy,
    Gate,
    LabelledImage,
    MetadataFacts,
    RunModel,
    TaskSpec,
    TensorGroup,
    Thresholds,
    ToleranceKey,
)

THRESHOLDS = Thresholds(conf=0.25, iou=0.45, match_iou=0.5)

TOLERANCE_KEYS = (
    ToleranceKey("max_abs", "largest absolute difference of the raw box rows (input pixels)", gt=0),
    ToleranceKey("score_max_abs", "largest absolute difference of the raw class-score rows (probability)", gt=0),
    ToleranceKey("cosine_min", "cosine similarity of the raw box rows, and of the raw score rows", ge=-1, le=1),
    ToleranceKey("box_iou_min", "mean IoU of matched boxes", ge=0, le=1),
    ToleranceKey("score_delta_max", "largest score difference of matched boxes", ge=0),
    ToleranceKey("class_agreement_min", "share of matched boxes with the same class", ge=0, le=1),
    ToleranceKey("recall_min", "share of reference boxes matched", ge=0, le=1),
    ToleranceKey("precision_min", "share of candidate boxes matched", ge=0, le=1),
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


class DetectionsLike(Protocol):
    """Anything shaped like `yolo_runtime.Detections`."""

    boxes: Any  # [N, 4] xyxy
    scores: Any  # [N]
    classes: Any  # [N]


def detection_metrics(ref: list[DetectionsLike], cand: list[DetectionsLike], match_iou: float = 0.5) -> dict[str, Any]:
    """Match reference to candidate detections per image and summarise the agreement.

    Matching is greedy and class-agnostic: reference boxes in descending score order each take the
    unmatched candidate box of highest IoU (>= `match_iou`). Class-agnostic so that a class flip shows up
    in `class_agreement` instead of as a missed box. With no boxes on a side there is nothing to miss
    (recall 1.0) or nothing spurious (precision 1.0); the other side's ratio still exposes the gap.
    """
    import numpy as np
    from yolo_runtime import box_iou

    if len(ref) != len(cand):
        raise ValueError(f"reference has {len(ref)} images but candidate has {len(cand)}")
    ious: list[float] = []
    deltas: list[float] = []
    same_class: list[bool] = []
    n_ref = n_cand = 0
    for r, c in zip(ref, cand, strict=True):
        n_ref, n_cand = n_ref + len(r.scores), n_cand + len(c.scores)
        iou = box_iou(r.boxes, c.boxes)
        taken = np.zeros(len(c.scores), dtype=bool)
        for i in np.argsort(-np.asarray(r.scores, dtype=np.float64), kind="stable"):
            row = np.where(taken, -1.0, iou[i])
            j = int(row.argmax()) if row.size else -1
            if j < 0 or row[j] < match_iou:
                continue
            taken[j] = True
            ious.append(float(row[j]))
            deltas.append(abs(float(r.scores[i]) - float(c.scores[j])))
            same_class.append(int(r.classes[i]) == int(c.classes[j]))
    matched = len(ious)
    return {
        "ref_boxes": n_ref,
        "cand_boxes": n_cand,
        "matched": matched,
        "recall": matched / n_ref if n_ref else 1.0,
        "precision": matched / n_cand if n_cand else 1.0,
        "mean_iou": sum(ious) / matched if matched else None,
        "min_iou": min(ious) if matched else None,
        "max_score_delta": max(deltas) if matched else None,
        "class_agreement": sum(same_class) / matched if matched else None,
    }


HEAD = "output0"  # the detect head's output: [B, 4 + nc, anchors]


def metrics(ref_outputs: Mapping[str, Any], cand_outputs: Mapping[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    """Decode both heads with the same thresholds, then match their boxes."""
    from yolo_runtime import decode_detections

    ref = decode_detections(ref_outputs[HEAD], conf=thresholds.conf, iou=thresholds.iou)
    cand = decode_detections(cand_outputs[HEAD], conf=thresholds.conf, iou=thresholds.iou)
    return detection_metrics(ref, cand, match_iou=thresholds.match_iou)


def tensor_groups(name: str, shape: list[int]) -> list[TensorGroup]:
    """Box rows (xywh, input pixels) and class-score rows (sigmoid probabilities) of the head."""
    if name != HEAD or len(shape) != 3:
        return [TensorGroup("all", 0, 0, None, "max_abs")]
    return [TensorGroup("boxes", 1, 0, 4, "max_abs"), TensorGroup("scores", 1, 4, None, "score_max_abs")]


# (gate name, metric, tolerance key, upper bound?)
_GATES = (("box mean_iou", "mean_iou", "box_iou_min", False),
          ("max_score_delta", "max_score_delta", "score_delta_max", True),
          ("class_agreement", "class_agreement", "class_agreement_min", False),
          ("recall", "recall", "recall_min", False),
          ("precision", "precision", "precision_min", False))


def gates(detection: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[Gate]:
    """The detection gates the tolerances set. With no box on either side nothing can be compared: the gates do
    not run (the cell is then not validated); with boxes on one side only, recall or precision fails."""
    if detection is None:
        return [Gate(name, None, limit, upper, "the outputs' shapes differ") for name, _, key, upper in _GATES
                if (limit := tol.get(key)) is not None]
    empty = detection["ref_boxes"] == 0 and detection["cand_boxes"] == 0
    found = []
    for name, metric, key, upper in _GATES:
        limit = tol.get(key)
        if limit is None:
            continue
        value = None if empty else detection[metric]
        why = "the reference has no detection on any image" if detection["ref_boxes"] == 0 else "no box matched"
        found.append(Gate(name, value, limit, upper, why if value is None else ""))
    return found


def violations(detection: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[str]:
    """The detection gates that ran and failed, as users read them."""
    return [g.violation() for g in gates(detection, tol) if g.ran and not g.ok]


# `yolo val`'s settings: mAP integrates precision over every confidence, so (nearly) every candidate is kept.
MAP_CONF, MAP_IOU, MAP_MAX_DET = 0.001, 0.7, 300
# Largest mAP drop from the PyTorch reference on the labelled set (absolute). Measured on the trained test detector
# and recipes/data/shapes-val (48 scenes, 97 boxes; reference mAP50-95 0.8743, mAP50 0.9930): every fp32 cell drops
# 0.0; fp16 up to 0.0050 (ONNX, computed in half; OpenVINO keeps f32 compute: 0.0); weight-only and w8a16 up to
# 0.0154 (LiteRT w8a32); static int8 0.0026 (OpenVINO, head kept float) and 0.0905 in mAP50-95 but 0.0 in mAP50
# (LiteRT: its one int8 output tensor quantizes the box coordinates too: boxes still found, less tight; mean IoU
# 0.896). A blank-image calibration (OpenVINO int8) loses nearly everything. int8's mAP50-95 bound leaves LiteRT
# ~30% headroom; every other bound at least 2x.
_MAP_WEIGHT_ONLY = {"map50_95": 0.05, "map50": 0.05}
MAX_DROP: dict[str, dict[str, float]] = {
    "fp32": {"map50_95": 0.002, "map50": 0.002},
    "fp16": {"map50_95": 0.01, "map50": 0.01},
    "int8": {"map50_95": 0.12, "map50": 0.05},
    "w8a16": _MAP_WEIGHT_ONLY, "w8a32": _MAP_WEIGHT_ONLY,
}


def box_map(run: RunModel, samples: Sequence[LabelledImage], imgsz: int, names: Mapping[int, str]) -> dict[str, float]:
    """Box mAP50-95 and mAP50 as `yolo val` computes them: Ultralytics' own matching at ten IoU thresholds
    (`BaseValidator.match_predictions`) and `DetMetrics` (ap_per_class), on detections that yolo_runtime decodes
    from the model's head and scales back to each image (Ultralytics' `scale_boxes`)."""
    from types import SimpleNamespace

    import numpy as np
    import torch
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils import ops
    from ultralytics.utils.metrics import DetMetrics, box_iou
    from yolo_runtime import decode_detections, letterbox, load_image

    matcher = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))  # all match_predictions reads of a validator
    stats = DetMetrics(names=dict(names))
    for sample in samples:
        img = load_image(sample.image)
        h, w = img.shape[:2]
        det = decode_detections(run(letterbox(img, imgsz))[0], conf=MAP_CONF, iou=MAP_IOU, max_det=MAP_MAX_DET)[0]
        pred = ops.scale_boxes((imgsz, imgsz), torch.from_numpy(det.boxes.astype(np.float32)), (h, w))
        target_cls = np.array([row[0] for row in sample.labels], dtype=np.float32)
        target = torch.tensor([_box(row, w, h) for row in sample.labels], dtype=torch.float32).reshape(-1, 4)
        tp = np.zeros((len(det), len(matcher.iouv)), dtype=bool)
        if len(target_cls) and len(det):
            tp = BaseValidator.match_predictions(matcher, torch.from_numpy(det.classes.astype(np.float32)),
                                                 torch.from_numpy(target_cls), box_iou(target, pred)).numpy()
        stats.update_stats({"tp": tp, "conf": det.scores, "pred_cls": det.classes.astype(np.float32),
                            "target_cls": target_cls, "target_img": np.unique(target_cls),
                            "im_name": sample.image.name})
    stats.process()
    return {"map50_95": float(stats.box.map), "map50": float(stats.box.map50)}


def _box(row: tuple[float, ...], w: int, h: int) -> list[float]:
    """A label row's xyxy box in pixels: `class cx cy w h`, or a polygon's bounds (`class x1 y1 x2 y2 ...`)."""
    if len(row) == 5:
        cx, cy, bw, bh = row[1:]
        return [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
    xs, ys = row[1::2], row[2::2]
    return [min(xs) * w, min(ys) * h, max(xs) * w, max(ys) * h]


def decode(outputs: list[Any], thresholds: Thresholds) -> Any:
    """What a deployment runs after the model: the head decoded and suppressed."""
    from yolo_runtime import decode_detections

    return decode_detections(outputs[0], conf=thresholds.conf, iou=thresholds.iou)


def preprocess(image: Path, imgsz: int) -> Any:
    """Letterboxed RGB NCHW float32 in [0, 1], as Ultralytics' inference and users' code feed the model."""
    from yolo_runtime import letterbox, load_image

    return letterbox(load_image(image), imgsz)


def metadata(facts: MetadataFacts) -> dict[str, Any]:
    """The export guide's `metadata.json` for one detection artifact."""
    class_names = [facts.names[i] for i in sorted(facts.names)]
    return {
        "framework": "ultralytics",
        "model_name": facts.model_name,
        "export_format": facts.export_format,
        "precision": facts.precision,
        "task_type": "detection",
        "input_shape": [facts.imgsz, facts.imgsz, 3],
        "input_dtype": facts.input_dtype,
        "output_shape": facts.output_shapes,
        "class_names": class_names,
        "num_classes": len(class_names),
        "anchor_based": False,
        "created_at": facts.created_at,
        "export_config": facts.export_config,
        "preprocessing": {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "color_space": "RGB",
                          "resize_mode": "letterbox", "normalize": True},
        # apply_nms: whether the consumer must suppress (the raw head), i.e. the artifact has no NMS stage inside
        "postprocessing": {"apply_nms": not facts.applies_nms, "confidence_threshold": facts.conf,
                           "iou_threshold": facts.iou, "coordinate_format": "xyxy"},
    }


TASK = TaskSpec(
    name="detect",
    default=True,
    reference_outputs=1,
    thresholds=THRESHOLDS,
    tolerance_keys=TOLERANCE_KEYS,
    default_tolerances=DEFAULT_TOLERANCES,
    preprocess=preprocess,
    metrics=metrics,
    gates=gates,
    tensor_groups=tensor_groups,
    metadata=metadata,
    metrics_key="detection",
    accuracy=Accuracy(metrics=("map50_95", "map50"), default_max_drop=MAX_DROP, measure=box_map),
    decode=decode,
)
