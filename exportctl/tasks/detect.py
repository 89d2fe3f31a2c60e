"""Object detection (YOLOv8/11/26 detect heads, and RT-DETR's decoder): boxes, scores and classes.

Validation decodes the reference's and the candidate's head with the same thresholds and matches the boxes
(IoU, score delta, class agreement, recall/precision); tolerances gate those and the raw tensor errors. On a
labelled set, box mAP50-95 and mAP50 as `yolo val` computes them, gated on their drop from the reference's.

RT-DETR (head RTDETRDecoder, as reference.json records) emits `[B, 300, 6]`: the top (query, class) pairs by score,
rows cx, cy, w, h (normalized to the input), score, class. They are decoded by `decode_rtdetr` (no NMS). Only the
score column is gated raw: it is sorted, so two near-equal rows swapping places between runtimes leave it (nearly)
unchanged, while the box and class columns of swapped rows differ wholesale; boxes are gated through the matched
detections, in pixels like every detector's. Measured (rtdetr-l demo, imgsz 320, ONNX fp32): score column max_abs
9.4e-6 (fp32's 0.002 leaves 200x headroom); box and class columns up to 0.69 and 10 apart (tail rows traded places).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exportctl.tasks.common import (
    BOX_MAX_ABS,
    RAW_COSINE,
    SCORE_MAX_ABS,
    base_metadata,
    instance_postprocessing,
    letterbox_input,
)
from exportctl.tasks.instances import BOX_KEYS, InstancesLike, instance_gates, match, summary
from exportctl.tasks.spec import (
    Accuracy,
    Gate,
    LabelledImage,
    MetadataFacts,
    RunModel,
    TaskSpec,
    TensorGroup,
    Thresholds,
)

THRESHOLDS = Thresholds(conf=0.25, iou=0.45, match_iou=0.5)

TOLERANCE_KEYS = (
    BOX_MAX_ABS,
    SCORE_MAX_ABS,
    RAW_COSINE,
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


HEAD = "output0"  # the detect head's output: [B, 4 + nc, anchors] (RT-DETR: [B, 300, 6])
RTDETR_HEAD = "RTDETRDecoder"  # the class of RT-DETR's last layer, as reference.json's "head" names it


def is_rtdetr(model: Mapping[str, Any]) -> bool:
    return model.get("head") == RTDETR_HEAD


def decode_head(output: Any, thresholds: Thresholds, model: Mapping[str, Any], conf: float | None = None,
                iou: float | None = None, max_det: int = 300) -> Any:
    """The head's detections in input pixels, by the decoder its head needs (`conf`, `iou`: thresholds' unless
    given)."""
    from yolo_runtime import decode_detections, decode_rtdetr

    conf = thresholds.conf if conf is None else conf
    if is_rtdetr(model):
        return decode_rtdetr(output, imgsz=int(model["imgsz"]), conf=conf, max_det=max_det)
    return decode_detections(output, conf=conf, iou=thresholds.iou if iou is None else iou, max_det=max_det)


def metrics(ref_outputs: Mapping[str, Any], cand_outputs: Mapping[str, Any], thresholds: Thresholds,
            model: Mapping[str, Any]) -> dict[str, Any]:
    """Decode both heads with the same thresholds, then match their boxes."""
    ref = decode_head(ref_outputs[HEAD], thresholds, model)
    cand = decode_head(cand_outputs[HEAD], thresholds, model)
    return detection_metrics(ref, cand, match_iou=thresholds.match_iou)


def tensor_groups(name: str, shape: list[int], model: Mapping[str, Any]) -> list[TensorGroup]:
    """Box rows (xywh, input pixels) and class-score rows (sigmoid probabilities) of the head; RT-DETR's columns,
    of which only the (sorted) scores are gated (the module's docstring says why)."""
    if name != HEAD or len(shape) != 3:
        return [TensorGroup("all", 0, 0, None, "max_abs")]
    if is_rtdetr(model):  # "": no tolerance key, so reported and not gated
        return [TensorGroup("boxes", 2, 0, 4, "", ""), TensorGroup("scores", 2, 4, 5, "score_max_abs"),
                TensorGroup("classes", 2, 5, 6, "", "")]
    return [TensorGroup("boxes", 1, 0, 4, "max_abs"), TensorGroup("scores", 1, 4, None, "score_max_abs")]


def gates(detection: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[Gate]:
    """The detection gates the tolerances set (`instances.instance_gates`)."""
    return instance_gates(detection, tol)


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
    from yolo_runtime import letterbox, load_image

    matcher = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))  # all match_predictions reads of a validator
    stats = DetMetrics(names=dict(names))
    for sample in samples:
        img = load_image(sample.image)
        h, w = img.shape[:2]
        head = run(letterbox(img, imgsz))[0]
        det = decode_head(head, THRESHOLDS, _shaped(head, imgsz), conf=MAP_CONF, iou=MAP_IOU, max_det=MAP_MAX_DET)[0]
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


def _shaped(head: Any, imgsz: int) -> dict[str, Any]:
    """The model description `decode_head` needs, read from the head's shape where no reference.json is at hand: a
    YOLO head's last axis is its anchor count (>= 21 even at imgsz 32), RT-DETR's the 6 columns of a row."""
    return {"head": RTDETR_HEAD if head.shape[-1] == 6 else "", "imgsz": imgsz}


def decode(outputs: list[Any], thresholds: Thresholds) -> Any:
    """What a deployment runs after the model: the head decoded and suppressed (profiling times it: RT-DETR's boxes
    are then scaled by 1, the same work as by the input size)."""
    return decode_head(outputs[0], thresholds, _shaped(outputs[0], 1))


def metadata(facts: MetadataFacts) -> dict[str, Any]:
    """The export guide's `metadata.json` for one detection artifact."""
    if is_rtdetr(facts.model):  # one-to-one queries: nothing to suppress; boxes are normalized centres and sizes
        post = {**instance_postprocessing(facts, "xywh"), "apply_nms": False, "normalized_coordinates": True}
        return {**base_metadata(facts, "detection"), "anchor_based": False, "postprocessing": post}
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
    accuracy=Accuracy(metrics=("map50_95", "map50"), default_max_drop=MAX_DROP, measure=box_map),
    decode=decode,
)
