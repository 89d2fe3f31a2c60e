"""How far an exported (candidate) model's outputs are from the PyTorch reference's, and whether that is too far.

Runs inside toolchain environments, so it depends on numpy and the standard library only. Every value
returned is a plain Python bool/int/float/None: results are written as canonical JSON (`allow_nan=False`),
so undefined quantities are None rather than NaN.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class DetectionsLike(Protocol):
    """Anything shaped like `yolo_runtime.Detections`; kept structural so this module imports nothing else."""

    boxes: np.ndarray  # [N, 4] xyxy
    scores: np.ndarray  # [N]
    classes: np.ndarray  # [N]


def tensor_metrics(ref: np.ndarray, cand: np.ndarray) -> dict[str, Any]:
    """Elementwise error and cosine similarity of two raw output tensors, computed in float64.

    Differences in shape or non-finite values make the numeric keys meaningless, so they are None and the
    `shape_match` / `finite` flags say why.
    """
    ref64, cand64 = np.asarray(ref, dtype=np.float64), np.asarray(cand, dtype=np.float64)
    out: dict[str, Any] = {
        "shape_match": ref64.shape == cand64.shape,
        "finite": bool(np.isfinite(ref64).all() and np.isfinite(cand64).all()),
        "ref_shape": list(ref64.shape),
        "cand_shape": list(cand64.shape),
        "max_abs": None,
        "mean_abs": None,
        "cosine": None,
    }
    if not (out["shape_match"] and out["finite"]):
        return out
    a, b = ref64.ravel(), cand64.ravel()
    diff = np.abs(a - b)
    out["max_abs"] = float(diff.max()) if diff.size else 0.0
    out["mean_abs"] = float(diff.mean()) if diff.size else 0.0
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        out["cosine"] = 1.0 if na == nb else 0.0  # both silent: identical; one silent: unrelated
    else:
        out["cosine"] = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU `[N, M]` of xyxy boxes; a zero-area union counts as IoU 0 rather than NaN."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def detection_metrics(ref: list[DetectionsLike], cand: list[DetectionsLike], match_iou: float = 0.5) -> dict[str, Any]:
    """Match reference to candidate detections per image and summarise the agreement.

    Matching is greedy and class-agnostic: reference boxes in descending score order each take the
    unmatched candidate box of highest IoU (>= `match_iou`). Class-agnostic so that a class flip shows up
    in `class_agreement` instead of as a missed box. With no boxes on a side there is nothing to miss
    (recall 1.0) or nothing spurious (precision 1.0); the other side's ratio still exposes the gap.
    """
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


def check_tolerances(
    tensor: dict[str, dict[str, Any]], detection: dict[str, Any] | None, tol: dict[str, float | None]
) -> list[str]:
    """Human-readable tolerance violations; an empty list means the candidate passes.

    A tolerance that is missing or None is not gated. Shape mismatches and non-finite outputs always fail,
    since no tolerance can make them comparable. Detection gates whose metric is None (nothing matched)
    are skipped: the missing boxes are reported through `recall_min`/`precision_min` instead.
    """
    violations: list[str] = []
    for name, m in tensor.items():
        if not m["shape_match"]:
            violations.append(f"{name} shape {m['cand_shape']} != reference {m['ref_shape']}")
            continue
        if not m.get("finite", True):
            violations.append(f"{name} has non-finite values (NaN or inf)")
            continue
        if tol.get("max_abs") is not None and m["max_abs"] > tol["max_abs"]:
            violations.append(f"{name} max_abs {m['max_abs']:.4g} > {tol['max_abs']:g}")
        if tol.get("cosine_min") is not None and m["cosine"] < tol["cosine_min"]:
            violations.append(f"{name} cosine {m['cosine']:.6g} < {tol['cosine_min']:g}")
    if detection is None or (detection["ref_boxes"] == 0 and detection["cand_boxes"] == 0):
        return violations
    iou_min = tol.get("box_iou_min")
    if iou_min is not None and detection["mean_iou"] is not None and detection["mean_iou"] < iou_min:
        violations.append(
            f"box mean_iou {detection['mean_iou']:.4g} < {iou_min:g} (min_iou {detection['min_iou']:.4g})"
        )
    delta_max = tol.get("score_delta_max")
    if delta_max is not None and detection["max_score_delta"] is not None and detection["max_score_delta"] > delta_max:
        violations.append(f"max_score_delta {detection['max_score_delta']:.4g} > {delta_max:g}")
    for key in ("class_agreement", "recall", "precision"):
        limit = tol.get(f"{key}_min")
        if limit is not None and detection[key] is not None and detection[key] < limit:
            violations.append(f"{key} {detection[key]:.4g} < {limit:g}")
    return violations
