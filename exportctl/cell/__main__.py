"""The in-cell entrypoint (`python -m exportctl.cell`): one request in, one report out.

An export cell exports the checkpoint through its format's spec, validates the artifact against the PyTorch
reference when the request asks for it (validation.json, written pass or fail) and writes the export guide's
metadata.json; exit 2 when the artifact is outside its tolerances. Reference, demo and probe requests run
their own module.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

from exportctl import formats, tasks
from exportctl.cell.contract import CellConfigError, Invocation, main
from exportctl.cell.hermetic import created_at, seal
from exportctl.cell.phases import Phases
from exportctl.cell.protocol import REPORT_FILE, CellReport, Kind, Verdict
from exportctl.errors import OK, VALIDATION_FAILED
from exportctl.formats.spec import ExportStep, FormatSpec
from exportctl.tasks.spec import MetadataFacts

WORKDIR = Path("/tmp/exportctl-work")


def run(invocation: Invocation) -> int:
    request = invocation.request
    phases = Phases()
    if request.kind != Kind.export:
        from exportctl.cell import demo, probe, reference

        phases.begin(request.kind.value)
        code = {Kind.reference: reference.compute, Kind.demo: demo.make, Kind.probe: probe.probe}[request.kind](
            invocation)
        phases.end()
        CellReport(request.kind, peak_rss_mib=peak_rss_mib(), phases=phases.seconds).write(
            invocation.output_dir / REPORT_FILE)
        return code
    spec, task = formats.get(request.format), tasks.get(request.task)
    if spec is None or task is None:
        raise CellConfigError(f"unsupported export_format '{request.format}' or task '{request.task}'")
    seal()
    import ultralytics  # noqa: F401 - still the `imports` phase: the exporter's framework takes seconds to load
    phases.begin("export")
    assert request.checkpoint is not None
    validation = request.validation
    thresholds = task.thresholds if validation is None else \
        type(task.thresholds)(validation.conf, validation.iou, validation.match_iou)
    artifact = spec.export(ExportStep(
        checkpoint=invocation.input(request.checkpoint), precision=request.precision,
        options=spec.resolve_options(request.options), imgsz=request.imgsz, batch=request.batch, task=task.name,
        workdir=WORKDIR, output_dir=invocation.output_dir,
        calibration_dir=invocation.input(request.calibration.directory) if request.calibration else None,
        conf=thresholds.conf, iou=thresholds.iou, preprocess=task.preprocess))
    ref_dir = invocation.input(validation.reference) if validation is not None else None
    result = None
    if validation is not None and ref_dir is not None:
        from exportctl.cell import accuracy
        from exportctl.cell.validate import validate

        phases.begin("validate")
        labelled = accuracy.load(invocation.input(request.dataset.directory), request.dataset) \
            if request.dataset is not None else None
        result = validate(spec, task, artifact, ref_dir, validation, request.precision, labelled)
        (invocation.output_dir / "validation.json").write_text(json.dumps(result, sort_keys=True, indent=2) + "\n")
    from exportctl.cell.profile import profile_cell

    phases.begin("profile")
    profiled, not_profiled = profile_cell(invocation, spec, task, artifact, thresholds)
    phases.begin("finish")
    info = json.loads((ref_dir / "reference.json").read_text()) if ref_dir else {}
    names = {int(k): v for k, v in info.get("names", {}).items()} or _names(invocation.input(request.checkpoint),
                                                                           task.name)
    # Shapes, input dtype and NMS as measured from the artifact (its runtime, or its structure where that cannot run)
    measured = (result or {}).get("artifact") or _describe(spec, artifact, request.imgsz)
    meta = task.metadata(MetadataFacts(
        model_name=info.get("model_name", Path(request.checkpoint).stem), export_format=spec.name,
        precision=request.precision, imgsz=request.imgsz, output_shapes=measured["output_shapes"],
        input_dtype=measured["input_dtype"], applies_nms=measured["applies_nms"], names=names,
        export_config=request.options, conf=thresholds.conf, iou=thresholds.iou, created_at=created_at(), model=info))
    (invocation.output_dir / "metadata.json").write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n")
    verdict = Verdict(result["status"]) if result is not None else Verdict.not_validated
    reason = result.get("reason") if result is not None else "no reference outputs to validate against"
    phases.end()
    report = CellReport(Kind.export, verdict, reason, tuple(result["violations"]) if result else (), artifact.name,
                        peak_rss_mib(), phases.seconds, profiled, not_profiled)
    report.write(invocation.output_dir / REPORT_FILE)
    # Into the log too (run facts, not artifacts): what the cell needed, for sizing machines and CI.
    print(f"[exportctl cell] peak RSS {report.peak_rss_mib} MiB")
    if profiled is not None:
        print("[exportctl cell] latency p50 " + ", ".join(
            f"{t['total_ms']['p50']:.2f} ms at {t['threads']} thread(s)" for t in profiled["threads"].values()))
    if result is not None and verdict == Verdict.not_validated:
        print(f"[exportctl cell] not validated: {reason}")
    elif verdict == Verdict.failed:
        print("[exportctl cell] validation failed: " + "; ".join(report.violations))
        return VALIDATION_FAILED
    return OK


def _describe(spec: FormatSpec, artifact: Path, imgsz: int) -> dict[str, Any]:
    """The artifact's facts without a reference: from its structure, or by running one blank input."""
    if spec.describe is not None:
        return spec.describe(artifact).to_json()
    import numpy as np
    from yolo_runtime import open_backend

    backend = open_backend(artifact, spec.backend)
    outputs = backend.run(np.full((1, 3, imgsz, imgsz), 114 / 255, dtype=np.float32))  # a blank letterbox
    return {"output_shapes": [list(o.shape) for o in outputs], "input_dtype": backend.input_dtype,
            "applies_nms": False}


def peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _names(checkpoint: Path, task: str) -> dict[int, str]:
    from ultralytics import YOLO

    return dict(YOLO(str(checkpoint), task=task).model.names)


if __name__ == "__main__":
    main(run, Kind.export)
