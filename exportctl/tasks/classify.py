"""Image classification (YOLOv8/11/26 -cls heads): one probability per class per image.

Validation ranks the reference's and the candidate's class probabilities per image and compares the rankings:
top-1 agreement over the images, the overlap of their top-5 sets, and how far the reference's top-1 probability
moved. The raw probabilities are gated as one group (max_abs, cosine).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exportctl.tasks.common import RAW_COSINE, SCORE_MAX_ABS, base_metadata
from exportctl.tasks.spec import Gate, MetadataFacts, TaskSpec, TensorGroup, Thresholds, ToleranceKey

HEAD = "output0"  # softmax probabilities [B, nc]
TOP_K = 5

TOLERANCE_KEYS = (
    SCORE_MAX_ABS,
    RAW_COSINE,
    ToleranceKey("top1_agreement_min", "share of images whose most probable class is the reference's", ge=0, le=1),
    ToleranceKey("top5_overlap_min", "mean share of the reference's top-5 classes in the candidate's top 5 (its "
                 "ties at 5th place counted in the reference's favour)", ge=0, le=1),
    ToleranceKey("prob_delta_max", "largest change of the reference's top-1 class probability", ge=0),
)
# Measured on the trained test classifier (tests/fixtures/classify.pt, 16 validation scenes): see README
# "Tasks and model families" for the numbers each default leaves headroom over.
_INT8_LIKE = {"cosine_min": 0.99, "top1_agreement_min": 0.9, "top5_overlap_min": 0.8, "prob_delta_max": 0.2}
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"score_max_abs": 0.002, "cosine_min": 0.99999, "top1_agreement_min": 1.0, "top5_overlap_min": 1.0,
             "prob_delta_max": 0.002},
    "fp16": {"score_max_abs": 0.02, "cosine_min": 0.999, "top1_agreement_min": 1.0, "top5_overlap_min": 0.95,
             "prob_delta_max": 0.02},
    "int8": _INT8_LIKE,
    "w8a16": _INT8_LIKE,
    "w8a32": _INT8_LIKE,
}


def classification_metrics(ref: list[Any], cand: list[Any]) -> dict[str, Any]:
    """Agreement of two lists of `yolo_runtime.Classification` (one per image)."""
    if len(ref) != len(cand):
        raise ValueError(f"reference has {len(ref)} images but candidate has {len(cand)}")
    if not ref:
        return {"images": 0, "top1_agreement": None, "top5_overlap": None, "min_top5_overlap": None,
                "max_prob_delta": None, "min_ref_margin": None}
    k = min(TOP_K, len(ref[0].probs))
    same = [r.top1 == c.top1 for r, c in zip(ref, cand, strict=True)]
    overlap = [_top_k_overlap(set(r.ranked[:k].tolist()), c, k) / k for r, c in zip(ref, cand, strict=True)]
    deltas = [abs(float(r.probs[r.top1]) - float(c.probs[r.top1])) for r, c in zip(ref, cand, strict=True)]
    # how far apart the reference's first two classes are: a top-1 flip needs a change at least this large
    margins = [float(r.probs[r.ranked[0]] - r.probs[r.ranked[1]]) for r in ref] if len(ref[0].probs) > 1 else [1.0]
    return {
        "images": len(ref),
        "top1_agreement": sum(same) / len(same),
        "top5_overlap": sum(overlap) / len(overlap),
        "min_top5_overlap": min(overlap),
        "max_prob_delta": max(deltas),
        "min_ref_margin": min(margins),
    }


def _top_k_overlap(ref_top: set[int], cand: Any, k: int) -> int:
    """How many of the reference's top k the candidate's top k holds, with the candidate's ties at its k-th place
    broken in the reference's favour: a quantized softmax rounds small probabilities onto one step (often 0), and
    the order of equal values says nothing about the model."""
    probs = cand.probs.tolist()
    kth = probs[cand.ranked[k - 1]]
    above = {i for i, p in enumerate(probs) if p > kth}
    tied = {i for i, p in enumerate(probs) if p == kth}
    return len(ref_top & above) + min(k - len(above), len(ref_top & tied))


def metrics(ref_outputs: Mapping[str, Any], cand_outputs: Mapping[str, Any], thresholds: Thresholds,
            model: Mapping[str, Any]) -> dict[str, Any]:
    from yolo_runtime import decode_classes

    return classification_metrics(decode_classes(ref_outputs[HEAD]), decode_classes(cand_outputs[HEAD]))


def tensor_groups(name: str, shape: list[int], model: Mapping[str, Any]) -> list[TensorGroup]:
    """The head's one group: class probabilities."""
    return [TensorGroup("scores", 0, 0, None, "score_max_abs")]


# (gate name, metric, tolerance key, upper bound?)
_GATES = (("top1_agreement", "top1_agreement", "top1_agreement_min", False),
          ("top5_overlap", "top5_overlap", "top5_overlap_min", False),
          ("max_prob_delta", "max_prob_delta", "prob_delta_max", True))


def gates(measured: dict[str, Any] | None, tol: Mapping[str, float | None]) -> list[Gate]:
    found = []
    for name, metric, key, upper in _GATES:
        limit = tol.get(key)
        if limit is None:
            continue
        value = None if measured is None else measured[metric]
        why = "the outputs' shapes differ" if measured is None else "no validation image"
        found.append(Gate(name, value, limit, upper, why if value is None else ""))
    return found


def preprocess(image: Path, imgsz: int) -> Any:
    """The largest centred square resized to imgsz (Ultralytics' classify CenterCrop), RGB NCHW float32 in [0, 1]."""
    from yolo_runtime import center_crop, load_image

    return center_crop(load_image(image), imgsz)


def metadata(facts: MetadataFacts) -> dict[str, Any]:
    """The export guide's common fields, and how to read the probabilities (already softmaxed by the export)."""
    return {**base_metadata(facts, "classification", resize_mode="center_crop"),
            # one [B, nc] output, or (CoreML's classifier) a label and a probability per class name
            "postprocessing": {"output": "probabilities" if len(facts.output_shapes) == 1 else
                               "class label and probability per class name", "apply_softmax": False, "top_k": TOP_K}}


TASK = TaskSpec(
    name="classify",
    default=False,
    reference_outputs=1,
    thresholds=Thresholds(conf=0.25, iou=0.45, match_iou=0.5),  # unused: nothing is thresholded or matched
    tolerance_keys=TOLERANCE_KEYS,
    default_tolerances=DEFAULT_TOLERANCES,
    preprocess=preprocess,
    metrics=metrics,
    gates=gates,
    tensor_groups=tensor_groups,
    metadata=metadata,
    metrics_key="classification",
    arch_marker="-cls",
)
