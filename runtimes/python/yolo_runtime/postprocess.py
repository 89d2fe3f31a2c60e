"""Decoding of YOLOv8/11/26 detect-head output and a deterministic pure-numpy NMS (shared by every task with boxes).

Pure numpy (no cv2, no torch) so the same code decodes outputs of every format, in every toolchain, and
reference and candidate detections differ only by what the models computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Class offset for class-aware NMS: larger than any image side, so boxes of different classes never overlap.
MAX_WH = 7680


@dataclass(frozen=True)
class Detections:
    """Detections for one image; boxes are xyxy in the model's input-pixel (letterboxed) coordinates."""

    boxes: np.ndarray  # float32 [N, 4]
    scores: np.ndarray  # float32 [N]
    classes: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.scores)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU `[N, M]` of xyxy boxes, in float64; a zero-area union counts as IoU 0 rather than NaN."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    iou: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        iou: Callable[[np.ndarray, np.ndarray], np.ndarray] = box_iou) -> np.ndarray:
    """Greedy NMS; returns kept indices, highest score first. `iou`: pairwise overlap of two box sets (default
    xyxy IoU; `probiou` for rotated xywhr boxes).

    Suppresses when IoU > threshold (torchvision's rule). Equal scores are ordered by index with a stable
    sort, so the same input always keeps the same boxes, which torchvision does not guarantee.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[iou(boxes[best][None], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def select(pred: np.ndarray, nc: int, conf: float, iou: float, max_det: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's `[4 + nc + extra, A]` head output -> (kept anchor indices, xyxy boxes, scores, classes).

    Mirrors Ultralytics' `non_max_suppression` (best class > conf, class-aware NMS via coordinate offsets, top
    `max_det`); the rows after the class scores (mask coefficients, keypoints) ride along by anchor index.
    """
    cls_scores = pred[4 : 4 + nc].T  # [A, nc]
    classes = cls_scores.argmax(axis=1)
    scores = cls_scores[np.arange(len(cls_scores)), classes]
    anchors = np.flatnonzero(scores > conf)
    xywh, scores, classes = pred[:4, anchors].T, scores[anchors], classes[anchors].astype(np.int64)
    half = xywh[:, 2:] / 2
    boxes = np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)
    keep = nms(boxes + (classes[:, None] * MAX_WH), scores, iou)[:max_det]
    return anchors[keep], boxes[keep].astype(np.float32), scores[keep].astype(np.float32), classes[keep]


def decode_detections(
    output: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    normalized: bool = False,
    imgsz: int | None = None,
) -> list[Detections]:
    """Turn a `[B, 4 + nc, A]` detect-head output (xywh centres, sigmoid class scores) into per-image detections.

    Mirrors Ultralytics' `non_max_suppression` (`select`). `normalized` is for exports (LiteRT) that emit [0, 1]
    box coordinates.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim != 3 or out.shape[1] < 5:
        raise ValueError(f"expected detect output [B, 4+nc, A], got shape {out.shape}")
    if normalized:
        if imgsz is None:
            raise ValueError("normalized=True needs imgsz to scale boxes back to pixels")
        out = out.copy()
        out[:, :4] *= imgsz
    results = []
    for pred in out:
        _, boxes, scores, classes = select(pred, out.shape[1] - 4, conf, iou, max_det)
        results.append(Detections(boxes, scores, classes))
    return results


def decode_end2end(output: np.ndarray, conf: float = 0.25, max_det: int = 300) -> list[Detections]:
    """Turn an end-to-end head's `[B, N, 6 + extra]` output (rows x1, y1, x2, y2, score, class; YOLO26/YOLOv10
    exported with `nms=False`) into per-image detections: already suppressed, so only the score threshold applies,
    as Ultralytics' predictor does for end-to-end models."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim != 3 or out.shape[2] < 6:
        raise ValueError(f"expected end-to-end output [B, N, 6], got shape {out.shape}")
    results = []
    for pred in out:
        kept = pred[pred[:, 4] > conf][:max_det]
        results.append(Detections(kept[:, :4].copy(), kept[:, 4].copy(), kept[:, 5].astype(np.int64)))
    return results


def decode_rtdetr(output: np.ndarray, imgsz: int, conf: float = 0.25, max_det: int = 300) -> list[Detections]:
    """Turn an RT-DETR decoder's `[B, K, 6]` output (rows cx, cy, w, h, score, class; boxes normalized to [0, 1] of
    the input, rows already the top-K (query, class) pairs by score) into per-image detections in input pixels.

    Mirrors Ultralytics' `RTDETRPredictor.postprocess`: no NMS (the decoder's queries are one-to-one), score >
    conf, xywh -> xyxy, scaled by the input size (`imgsz`: the model's square input side).
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim != 3 or out.shape[2] != 6:
        raise ValueError(f"expected RT-DETR output [B, K, 6], got shape {out.shape}")
    results = []
    for pred in out:
        kept = pred[pred[:, 4] > conf][:max_det]
        half = kept[:, 2:4] / 2
        boxes = np.concatenate([kept[:, :2] - half, kept[:, :2] + half], axis=1) * np.float32(imgsz)
        results.append(Detections(boxes.astype(np.float32), kept[:, 4].copy(), kept[:, 5].astype(np.int64)))
    return results
