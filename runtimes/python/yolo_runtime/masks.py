"""Decoding of a segment head's outputs: detections with their instance masks, the way Ultralytics makes them.

Pure numpy. A segment export has two outputs: `[B, 4 + nc + nm, A]` (boxes, class scores, nm mask coefficients per
anchor) and `[B, nm, mh, mw]` prototypes. After NMS, each kept detection's mask is its coefficients times the
prototypes, upsampled bilinearly to the input size (PyTorch's `align_corners=False` rule), binarised at 0 and
cropped to its box: Ultralytics' `process_mask(..., upsample=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .postprocess import Detections, select


@dataclass(frozen=True)
class Segments(Detections):
    """Detections with one binary mask each, at the model's input resolution."""

    masks: np.ndarray  # bool [N, H, W]


def _resize_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Bilinear resampling of one axis to `size`, as torch.nn.functional.interpolate(align_corners=False)."""
    n = x.shape[axis]
    src = np.maximum((np.arange(size, dtype=np.float64) + 0.5) * (n / size) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = (src - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = size
    w = w.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def upsample(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Float masks `[N, mh, mw]` resized to `[N, *shape]` bilinearly (align_corners=False)."""
    return _resize_axis(_resize_axis(masks.astype(np.float32), shape[0], 1), shape[1], 2)


def crop(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Zero every pixel outside each mask's xyxy box (pixel centres' left/top edge inside [x1, x2), [y1, y2))."""
    _, h, w = masks.shape
    cols, rows = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    x1, y1, x2, y2 = (boxes[:, i, None] for i in range(4))
    inside_x = (cols[None] >= x1) & (cols[None] < x2)  # [N, w]
    inside_y = (rows[None] >= y1) & (rows[None] < y2)  # [N, h]
    return masks & inside_y[:, :, None] & inside_x[:, None, :]


def process_masks(protos: np.ndarray, coefficients: np.ndarray, boxes: np.ndarray,
                  shape: tuple[int, int]) -> np.ndarray:
    """Binary masks `[N, *shape]` of N detections from one image's prototypes `[nm, mh, mw]`."""
    if not len(coefficients):
        return np.zeros((0, *shape), dtype=bool)
    nm, mh, mw = protos.shape
    logits = (coefficients.astype(np.float32) @ protos.astype(np.float32).reshape(nm, -1)).reshape(-1, mh, mw)
    return crop(upsample(logits, shape) > 0, np.asarray(boxes, dtype=np.float32))


def decode_segments(output: np.ndarray, protos: np.ndarray, imgsz: int | tuple[int, int], conf: float = 0.25,
                    iou: float = 0.45, max_det: int = 300) -> list[Segments]:
    """Per-image detections (as `decode_detections`) with their masks at the input size `imgsz`."""
    out, protos = np.asarray(output, dtype=np.float32), np.asarray(protos, dtype=np.float32)
    if out.ndim != 3 or protos.ndim != 4 or len(out) != len(protos):
        raise ValueError(f"expected segment outputs [B, 4+nc+nm, A] and [B, nm, mh, mw], got {out.shape}, "
                         f"{protos.shape}")
    nm = protos.shape[1]
    shape = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    results = []
    for pred, proto in zip(out, protos, strict=True):
        keep, boxes, scores, classes = select(pred, out.shape[1] - 4 - nm, conf, iou, max_det)
        masks = process_masks(proto, pred[out.shape[1] - nm :, keep].T, boxes, shape)
        results.append(Segments(boxes, scores, classes, masks))
    return results


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two binary masks; two empty masks agree completely (1.0)."""
    union = int(np.logical_or(a, b).sum())
    return int(np.logical_and(a, b).sum()) / union if union else 1.0
