"""Decoding of an OBB head's output: rotated boxes (xywhr), their probabilistic IoU and NMS, Ultralytics' way.

Pure numpy. An OBB export's `[B, 4 + nc + 1, A]` output holds per anchor the box centre and size (xywh, input
pixels), the class scores and the rotation r (radians, the box's w side from the x axis towards y, y down).
Decoded boxes follow Ultralytics' convention: w >= h and r in [0, pi).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .postprocess import MAX_WH, nms


@dataclass(frozen=True)
class RotatedDetections:
    """Rotated detections for one image, in the model's input-pixel (letterboxed) coordinates."""

    boxes: np.ndarray  # float32 [N, 5] cx, cy, w, h, r
    scores: np.ndarray  # float32 [N]
    classes: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.scores)


def regularize(boxes: np.ndarray) -> np.ndarray:
    """xywhr with w >= h (the sides swapped and r turned by pi/2 where needed) and r in [0, pi)."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 5).copy()
    swap = out[:, 2] < out[:, 3]
    out[swap, 2], out[swap, 3] = out[swap, 3], out[swap, 2].copy()
    out[swap, 4] += np.pi / 2
    out[:, 4] %= np.pi
    return out


def _covariance(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, c) of each box's Gaussian covariance [[a, c], [c, b]]."""
    w2, h2 = boxes[:, 2] ** 2 / 12, boxes[:, 3] ** 2 / 12
    cos, sin = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    return w2 * cos**2 + h2 * sin**2, w2 * sin**2 + h2 * cos**2, (w2 - h2) * cos * sin


def probiou(a: np.ndarray, b: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Pairwise probabilistic IoU `[N, M]` of xywhr boxes (1 - the Hellinger distance of their Gaussians): Ultralytics'
    `batch_probiou`, which its OBB NMS and metrics use."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 5)
    a1, b1, c1 = (v[:, None] for v in _covariance(a))
    a2, b2, c2 = (v[None] for v in _covariance(b))
    dx, dy = a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1]
    det = (a1 + a2) * (b1 + b2) - (c1 + c2) ** 2
    t1 = ((a1 + a2) * dy**2 + (b1 + b2) * dx**2) / (det + eps) * 0.25
    t2 = ((c1 + c2) * (-dx) * dy) / (det + eps) * 0.5
    t3 = np.log(det / (4 * np.sqrt(np.clip(a1 * b1 - c1**2, 0, None) * np.clip(a2 * b2 - c2**2, 0, None)) + eps)
                + eps) * 0.5
    bd = np.clip(t1 + t2 + t3, eps, 100.0)
    result: np.ndarray = 1 - np.sqrt(1.0 - np.exp(-bd) + eps)
    return result


def corners(boxes: np.ndarray) -> np.ndarray:
    """The four corners `[N, 4, 2]` of xywhr boxes (Ultralytics' `xywhr2xyxyxyxy` order)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    cos, sin = np.cos(b[:, 4]), np.sin(b[:, 4])
    v1 = np.stack([b[:, 2] / 2 * cos, b[:, 2] / 2 * sin], 1)
    v2 = np.stack([-b[:, 3] / 2 * sin, b[:, 3] / 2 * cos], 1)
    c = b[:, :2]
    return np.stack([c + v1 + v2, c + v1 - v2, c - v1 - v2, c - v1 + v2], 1)


def angle_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| modulo pi, in [0, pi/2]: a rotated box turned by pi is the same box."""
    d = np.mod(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), np.pi)
    return np.minimum(d, np.pi - d)


def decode_rotated(output: np.ndarray, conf: float = 0.25, iou: float = 0.45,
                   max_det: int = 300) -> list[RotatedDetections]:
    """Per-image rotated detections: best class > conf, class-aware greedy NMS by probiou, top `max_det`."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim != 3 or out.shape[1] < 6:
        raise ValueError(f"expected obb output [B, 4+nc+1, A], got shape {out.shape}")
    nc = out.shape[1] - 5
    results = []
    for pred in out:
        cls_scores = pred[4 : 4 + nc].T
        classes = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(cls_scores)), classes]
        anchors = np.flatnonzero(scores > conf)
        boxes = np.concatenate([pred[:4, anchors].T, pred[-1:, anchors].T], axis=1).astype(np.float64)
        scores, classes = scores[anchors], classes[anchors].astype(np.int64)
        offset = boxes.copy()
        offset[:, :2] += classes[:, None] * MAX_WH
        keep = nms(offset, scores, iou, iou=probiou)[:max_det]
        results.append(RotatedDetections(regularize(boxes[keep]).astype(np.float32), scores[keep].astype(np.float32),
                                         classes[keep]))
    return results
