"""Decoding of a pose head's output: detections with their keypoints, and how far two sets of keypoints are apart.

Pure numpy. A pose export's `[B, 4 + nc + K * D, A]` output holds per anchor the box, the class scores and K
keypoints of D values each (x, y in input pixels, and a visibility probability when D is 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .postprocess import Detections, select

# COCO's per-keypoint OKS constants for its 17 person keypoints (pycocotools; Ultralytics' OKS_SIGMA)
COCO_SIGMAS = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87,
                        0.89, 0.89]) / 10.0
AREA_SCALE = 0.53  # a box's area times this stands in for the object's segment area (Ultralytics' pose validator)


@dataclass(frozen=True)
class Poses(Detections):
    """Detections with K keypoints each: float32 [N, K, D] (x, y[, visibility])."""

    keypoints: np.ndarray


def decode_poses(output: np.ndarray, kpt_shape: tuple[int, int], conf: float = 0.25, iou: float = 0.45,
                 max_det: int = 300) -> list[Poses]:
    """Per-image detections (as `decode_detections`) with their keypoints; `kpt_shape` is (K, D) as the model (and
    its exported metadata) records it."""
    out = np.asarray(output, dtype=np.float32)
    k, d = (int(v) for v in kpt_shape)
    if out.ndim != 3 or out.shape[1] < 5 + k * d:
        raise ValueError(f"expected pose output [B, 4+nc+{k}*{d}, A], got shape {out.shape}")
    nc = out.shape[1] - 4 - k * d
    results = []
    for pred in out:
        keep, boxes, scores, classes = select(pred, nc, conf, iou, max_det)
        results.append(Poses(boxes, scores, classes, pred[4 + nc :, keep].T.reshape(-1, k, d).copy()))
    return results


def sigmas(k: int) -> np.ndarray:
    """OKS constants: COCO's for 17-keypoint (person) models, uniform 1/K otherwise (as Ultralytics does)."""
    return COCO_SIGMAS if k == len(COCO_SIGMAS) else np.full(k, 1.0 / k)


def visible(keypoints: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Which keypoints the model sees (visibility > threshold); every one when the model predicts no visibility."""
    return keypoints[..., 2] > threshold if keypoints.shape[-1] == 3 else np.ones(keypoints.shape[:-1], bool)


def oks(ref: np.ndarray, cand: np.ndarray, ref_box: np.ndarray) -> float:
    """Object keypoint similarity of one instance's keypoints `cand` [K, D] to `ref` [K, D] over the reference's
    visible keypoints, scaled by the reference box's area (1.0 when the reference sees none)."""
    mask = visible(ref)
    if not mask.any():
        return 1.0
    area = float((ref_box[2] - ref_box[0]) * (ref_box[3] - ref_box[1])) * AREA_SCALE
    d2 = ((ref[:, :2].astype(np.float64) - cand[:, :2]) ** 2).sum(1)
    e = d2 / ((2 * sigmas(len(ref))) ** 2 * (area + 1e-9) * 2)
    return float(np.exp(-e)[mask].mean())
