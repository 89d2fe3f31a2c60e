"""Validate an artifact in its own runtime against the PyTorch reference outputs of the same inputs.

Raw tensors are compared (max/mean abs error, cosine) and, for detection, the decoded boxes after NMS are
matched to the reference's (IoU, score delta, class agreement, recall/precision). The verdict comes from
the per-precision tolerances the host sends; the numbers are always written, pass or fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from yolo_runtime import RuntimeUnavailable, decode_detections, open_backend

from .metrics import check_tolerances, detection_metrics, tensor_metrics


def load_reference(ref_dir: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    info = json.loads((ref_dir / "reference.json").read_text())
    inputs = np.load(ref_dir / "inputs.npy")
    outputs = {name: np.load(ref_dir / f"{name}.npy") for name in info["outputs"]}
    return inputs, outputs, info


def validate(artifact: Path, ref_dir: Path, settings: dict[str, Any], precision: str = "fp32") -> dict[str, Any]:
    inputs, ref_outputs, info = load_reference(ref_dir)
    try:
        backend = open_backend(artifact)
    except RuntimeUnavailable as exc:  # e.g. CoreML off macOS: check what can be checked, never report "passed"
        from .structure import structural_report

        return structural_report(artifact, info, settings, precision, reason=str(exc))
    per_image = [backend.run(inputs[i : i + 1]) for i in range(len(inputs))]
    cand_outputs = {name: np.concatenate([o[k] for o in per_image]) for k, name in enumerate(info["outputs"])
                    if all(len(o) > k for o in per_image)}
    tensor = {name: tensor_metrics(ref, cand_outputs.get(name, np.empty(0))) for name, ref in ref_outputs.items()}
    conf, iou = settings["conf"], settings["iou"]
    detection = None
    head = info["outputs"][0]
    if tensor[head]["shape_match"]:
        ref_dets = decode_detections(ref_outputs[head], conf=conf, iou=iou)
        cand_dets = decode_detections(cand_outputs[head], conf=conf, iou=iou)
        detection = detection_metrics(ref_dets, cand_dets, match_iou=settings["match_iou"])
    tolerance = settings["tolerance"]
    violations = check_tolerances(tensor, detection, tolerance)
    return {
        "runtime": type(backend).__name__,
        "images": len(inputs),
        "tensor": tensor,
        "detection": detection,
        "tolerance": tolerance,
        "violations": violations,
        "status": "passed" if not violations else "failed",
    }
