"""Validate an artifact in its own runtime against the PyTorch reference outputs of the same inputs.

Raw tensors are compared per group of rows that mean one thing (box rows, score rows: max/mean abs error,
cosine) and the task's metrics computed (for detection, the decoded boxes after NMS matched to the
reference's). Each bound the cell's tolerances set is a gate; `validation.json` lists every gate with its
number, pass or fail. The verdict: "failed" when a gate fails, "passed" only when every gate ran and held, and
"not-validated" when a gate could not run (e.g. the reference has no detection to compare on any image).
Where the format's runtime cannot run (CoreML off macOS), what can be checked without it is checked and the
verdict is "not-validated", never "passed". With a labelled set, the task's standard metric (e.g. box mAP) is
measured on the artifact and gated on its drop from the reference's (`accuracy`, cell/accuracy.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from yolo_runtime import RuntimeUnavailable, open_backend

from exportctl.cell import accuracy
from exportctl.cell.metrics import group_metrics, tensor_checks, tensor_metrics
from exportctl.cell.protocol import Validation, Verdict
from exportctl.formats.spec import ArtifactFacts, FormatSpec, StructureExpectation
from exportctl.tasks.spec import Gate, TaskSpec, Thresholds


def load_reference(ref_dir: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    info = json.loads((ref_dir / "reference.json").read_text())
    inputs = np.load(ref_dir / "inputs.npy")
    outputs = {name: np.load(ref_dir / f"{name}.npy") for name in info["outputs"]}
    return inputs, outputs, info


def verdict(hard: list[str], gates: list[Gate]) -> tuple[list[str], Verdict, str | None]:
    """(violations, verdict, why not validated)."""
    violations = hard + [g.violation() for g in gates if g.ran and not g.ok]
    if violations:
        return violations, Verdict.failed, None
    not_run = [g for g in gates if not g.ran]
    if not_run:
        whys = sorted({g.why for g in not_run if g.why})
        return [], Verdict.not_validated, (f"gates that could not run: {', '.join(g.name for g in not_run)}"
                                           + (f" ({'; '.join(whys)})" if whys else ""))
    if not gates:
        return [], Verdict.not_validated, "no tolerance is set: nothing was gated"
    return [], Verdict.passed, None


def validate(spec: FormatSpec, task: TaskSpec, artifact: Path, ref_dir: Path, settings: Validation,
             precision: str, labelled: accuracy.LabelledSet | None = None) -> dict[str, Any]:
    """validation.json's content."""
    inputs, ref_outputs, info = load_reference(ref_dir)
    try:
        backend = open_backend(artifact, spec.backend)
    except RuntimeUnavailable as exc:
        return structural(spec, task, artifact, info, settings, precision, reason=str(exc))
    per_image = [backend.run(inputs[i : i + 1]) for i in range(len(inputs))]
    cand_outputs = {name: np.concatenate([o[k] for o in per_image]) for k, name in enumerate(info["outputs"])
                    if all(len(o) > k for o in per_image)}
    tensor, groups = {}, {}
    for name, ref in ref_outputs.items():
        cand = cand_outputs.get(name, np.empty(0))
        tensor[name] = tensor_metrics(ref, cand, histogram=True)
        groups[name] = task.tensor_groups(name, list(ref.shape), info)
        if tensor[name]["shape_match"] and tensor[name]["finite"]:
            tensor[name]["groups"] = group_metrics(ref, cand, groups[name])
    thresholds = Thresholds(settings.conf, settings.iou, settings.match_iou)
    comparable = all(tensor[name]["shape_match"] for name in info["outputs"])
    measured = task.metrics(ref_outputs, cand_outputs, thresholds, info) if comparable else None
    hard, raw_gates = tensor_checks(tensor, groups, settings.tolerance)
    gates = raw_gates + task.gates(measured, settings.tolerance)
    accuracy_result = None
    if labelled is not None:
        imgsz = int(info["imgsz"])
        scores = accuracy.measure(task, backend.run, labelled, imgsz) if comparable else None
        accuracy_result, accuracy_gates = accuracy.compare(ref_dir, labelled, scores, settings.max_drop or {},
                                                           why="the outputs' shapes differ")
        gates += accuracy_gates
    violations, status, reason = verdict(hard, gates)
    facts = ArtifactFacts([list(a.shape) for a in per_image[0]] if per_image else [],
                          backend.input_dtype, applies_nms=False)
    result = {
        "runtime": type(backend).__name__,
        "images": len(inputs),
        "artifact": facts.to_json(),
        "tensor": tensor,
        task.metrics_key: measured,
        "gates": [g.to_json() for g in gates],
        "tolerance": settings.tolerance,
        "violations": violations,
        "status": status.value,
    }
    if accuracy_result is not None:
        result["accuracy"] = accuracy_result
    return {**result, "reason": reason} if reason else result


def structural(spec: FormatSpec, task: TaskSpec, artifact: Path, info: dict[str, Any], settings: Validation,
               precision: str, reason: str) -> dict[str, Any]:
    if spec.structure is None:
        raise RuntimeError(f"{reason}, and the {spec.name} format defines no structural checks")
    expected = StructureExpectation(imgsz=int(info["imgsz"]), names={int(k): v for k, v in info["names"].items()},
                                    output_shapes=info["output_shapes"], task=task.name, precision=precision)
    checks = spec.structure(artifact, expected)
    violations = [f"structure: {c.check}: {c.detail}" for c in checks if not c.ok]
    result = {
        "runtime": spec.structure_runtime,
        "images": 0,
        "tensor": {},
        task.metrics_key: None,
        "structure": [c.to_json() for c in checks],
        "gates": [],
        "tolerance": settings.tolerance,
        "violations": violations,
        "status": (Verdict.failed if violations else Verdict.not_validated).value,
        "reason": reason,
    }
    if spec.describe is not None:
        result["artifact"] = spec.describe(artifact).to_json()
    return result
