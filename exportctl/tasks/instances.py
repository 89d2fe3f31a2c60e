"""Matching a candidate's decoded instances to the reference's, and the box gates every instance task shares.

Not a task (the registry skips it): detection, segmentation, pose and oriented boxes all pair instances the same
way (greedy, class-agnostic, by IoU: axis-aligned or rotated) and gate the pairs on the same box metrics; their
own metrics (mask IoU, keypoint error, angle error) are then computed over the pairs found here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from exportctl.tasks.spec import Gate, ToleranceKey


class InstancesLike(Protocol):
    """Anything shaped like `yolo_runtime.Detections` (and its task subclasses)."""

    boxes: Any  # [N, 4] xyxy, or [N, 5] xywhr
    scores: Any  # [N]
    classes: Any  # [N]


@dataclass(frozen=True)
class Pair:
    """One reference instance (`ref`) matched to one candidate instance (`cand`) of the same image."""

    image: int
    ref: int
    cand: int
    iou: float


def match(ref: list[InstancesLike], cand: list[InstancesLike], match_iou: float,
          iou: Callable[[Any, Any], Any]) -> list[Pair]:
    """Pair reference to candidate instances per image.

    Greedy and class-agnostic: reference instances in descending score order each take the unmatched candidate of
    highest IoU (>= `match_iou`). Class-agnostic so that a class flip shows up in `class_agreement` instead of as a
    missed instance.
    """
    import numpy as np

    if len(ref) != len(cand):
        raise ValueError(f"reference has {len(ref)} images but candidate has {len(cand)}")
    pairs = []
    for image, (r, c) in enumerate(zip(ref, cand, strict=True)):
        overlap = np.asarray(iou(r.boxes, c.boxes), dtype=np.float64).reshape(len(r.scores), len(c.scores))
        taken = np.zeros(len(c.scores), dtype=bool)
        for i in np.argsort(-np.asarray(r.scores, dtype=np.float64), kind="stable"):
            row = np.where(taken, -1.0, overlap[i])
            j = int(row.argmax()) if row.size else -1
            if j < 0 or row[j] < match_iou:
                continue
            taken[j] = True
            pairs.append(Pair(image, int(i), j, float(row[j])))
    return pairs


def summary(ref: list[InstancesLike], cand: list[InstancesLike], pairs: list[Pair]) -> dict[str, Any]:
    """What the pairs say about the boxes. With no instance on a side there is nothing to miss (recall 1.0) or
    nothing spurious (precision 1.0); the other side's ratio still exposes the gap."""
    n_ref, n_cand, matched = sum(len(r.scores) for r in ref), sum(len(c.scores) for c in cand), len(pairs)
    ious = [p.iou for p in pairs]
    deltas = [abs(float(ref[p.image].scores[p.ref]) - float(cand[p.image].scores[p.cand])) for p in pairs]
    same = [int(ref[p.image].classes[p.ref]) == int(cand[p.image].classes[p.cand]) for p in pairs]
    return {
        "ref_boxes": n_ref,
        "cand_boxes": n_cand,
        "matched": matched,
        "recall": matched / n_ref if n_ref else 1.0,
        "precision": matched / n_cand if n_cand else 1.0,
        "mean_iou": sum(ious) / matched if matched else None,
        "min_iou": min(ious) if matched else None,
        "max_score_delta": max(deltas) if matched else None,
        "class_agreement": sum(same) / matched if matched else None,
    }


BOX_KEYS = (
    ToleranceKey("box_iou_min", "mean IoU of matched boxes", ge=0, le=1),
    ToleranceKey("score_delta_max", "largest score difference of matched boxes", ge=0),
    ToleranceKey("class_agreement_min", "share of matched boxes with the same class", ge=0, le=1),
    ToleranceKey("recall_min", "share of reference boxes matched", ge=0, le=1),
    ToleranceKey("precision_min", "share of candidate boxes matched", ge=0, le=1),
)
# (gate name, metric, tolerance key, upper bound?)
BOX_GATES = (("box mean_iou", "mean_iou", "box_iou_min", False),
             ("max_score_delta", "max_score_delta", "score_delta_max", True),
             ("class_agreement", "class_agreement", "class_agreement_min", False),
             ("recall", "recall", "recall_min", False),
             ("precision", "precision", "precision_min", False))
NO_REFERENCE_INSTANCE = "the reference has no detection on any image"


def instance_gates(measured: Mapping[str, Any] | None, tol: Mapping[str, float | None],
                   table: tuple[tuple[str, str, str, bool], ...] = BOX_GATES) -> list[Gate]:
    """The gates of `table` the tolerances set, over matched instances. With no instance on either side nothing can
    be compared: the gates do not run (the cell is then not validated); with instances on one side only, recall or
    precision fails, and a metric of the pairs (IoU, mask IoU, ...) cannot run when no instance matched."""
    found = []
    for name, metric, key, upper in table:
        limit = tol.get(key)
        if limit is None:
            continue
        if measured is None:
            found.append(Gate(name, None, limit, upper, "the outputs' shapes differ"))
            continue
        empty = measured["ref_boxes"] == 0 and measured["cand_boxes"] == 0
        value = None if empty else measured[metric]
        why = NO_REFERENCE_INSTANCE if measured["ref_boxes"] == 0 else "no box matched"
        found.append(Gate(name, value, limit, upper, why if value is None else ""))
    return found
