"""Validate an artifact in its own runtime against the PyTorch reference outputs of the same inputs.

Raw tensors are compared (max/mean abs error, cosine) and the task's metrics computed (for detection, the
decoded boxes after NMS matched to the reference's). The verdict comes from the per-precision tolerances the
host sends; the numbers are always written, pass or fail. Where the format's runtime cannot run (CoreML off
macOS), what can be checked without it is checked and the verdict is "not-validated", never "passed".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from yolo_runtime import RuntimeUnavailable, open_backend

from exportctl.cell.metrics import tensor_metrics, tensor_violations
from exportctl.cell.protocol import Validation, Verdict
from exportctl.formats.spec import FormatSpec, StructureExpectation
from exportctl.tasks.spec import TaskSpec, Thresholds


def load_reference(ref_dir: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    info = json.loads((ref_dir / "reference.json").read_text())
    inputs = np.load(ref_dir / "inputs.npy")
    outputs = {name: np.load(ref_dir / f"{name}.npy") for name in info["outputs"]}
    return inputs, outputs, info


def validate(spec: FormatSpec, task: TaskSpec, artifact: Path, ref_dir: Path, settings: Validation,
             precision: str) -> dict[str, Any]:
    """validation.json's content."""
    inputs, ref_outputs, info = load_reference(ref_dir)
    try:
        backend = open_backend(artifact, spec.backend)
    except RuntimeUnavailable as exc:
        return structural(spec, task, artifact, info, settings, precision, reason=str(exc))
    per_image = [backend.run(inputs[i : i + 1]) for i in range(len(inputs))]
    cand_outputs = {name: np.concatenate([o[k] for o in per_image]) for k, name in enumerate(info["outputs"])
                    if all(len(o) > k for o in per_image)}
    tensor = {name: tensor_metrics(ref, cand_outputs.get(name, np.empty(0))) for name, ref in ref_outputs.items()}
    head = info["outputs"][0]
    thresholds = Thresholds(settings.conf, settings.iou, settings.match_iou)
    measured = task.metrics(ref_outputs[head], cand_outputs[head], thresholds) if tensor[head]["shape_match"] \
        else None
    violations = tensor_violations(tensor, settings.tolerance) + task.violations(measured, settings.tolerance)
    return {
        "runtime": type(backend).__name__,
        "images": len(inputs),
        "tensor": tensor,
        task.metrics_key: measured,
        "tolerance": settings.tolerance,
        "violations": violations,
        "status": (Verdict.failed if violations else Verdict.passed).value,
    }


def structural(spec: FormatSpec, task: TaskSpec, artifact: Path, info: dict[str, Any], settings: Validation,
               precision: str, reason: str) -> dict[str, Any]:
    if spec.structure is None:
        raise RuntimeError(f"{reason}, and the {spec.name} format defines no structural checks")
    expected = StructureExpectation(imgsz=int(info["imgsz"]), names={int(k): v for k, v in info["names"].items()},
                                    output_shapes=info["output_shapes"], task=task.name, precision=precision)
    checks = spec.structure(artifact, expected)
    violations = [f"structure: {c.check}: {c.detail}" for c in checks if not c.ok]
    return {
        "runtime": spec.structure_runtime,
        "images": 0,
        "tensor": {},
        task.metrics_key: None,
        "structure": [c.to_json() for c in checks],
        "tolerance": settings.tolerance,
        "violations": violations,
        "status": (Verdict.failed if violations else Verdict.not_validated).value,
        "reason": reason,
    }
