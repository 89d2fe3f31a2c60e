"""The in-cell export entrypoint (`python -m exportctl.cell`), following the export guide's contract.

Export the checkpoint, write the guide's metadata.json, and when the config asks for it
(`include_validation`, or a `validation.reference` directory) validate the artifact against the PyTorch
reference: exit 2 when it is outside its tolerances, with validation.json written either way.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

from exportctl.errors import OK, VALIDATION_FAILED

from .contract import CellConfigError, Request, main
from .hermetic import seal

CONTROL_KEYS = {"format", "precision", "imgsz", "batch", "source_date_epoch", "validation", "include_validation",
                "calibration"}


def run(request: Request) -> int:
    cfg = request.config
    fmt, precision = request.export_format, cfg.get("precision", "fp32")
    imgsz, batch = int(cfg.get("imgsz", 640)), int(cfg.get("batch", 1))
    # exportctl sends {"options": {...}}; users following the export guide put options at the top level.
    options = cfg.get("options", {k: v for k, v in cfg.items() if k not in CONTROL_KEYS})
    seal()
    from .exporters import export
    from .metadata import detection_metadata

    assert request.checkpoint is not None
    validation = cfg.get("validation") or {}
    artifact = export(request.checkpoint, fmt, precision, options, imgsz, batch,
                      workdir=Path("/tmp/exportctl-work"), output_dir=request.output_dir,
                      calibration=cfg.get("calibration"), conf=validation.get("conf", 0.25),
                      iou=validation.get("iou", 0.45))
    ref_dir = Path(validation["reference"]) if validation.get("reference") else None
    if cfg.get("include_validation") and ref_dir is None:
        raise CellConfigError("include_validation needs validation.reference (a reference outputs directory)")
    report = None
    if ref_dir is not None:
        from .validate import validate

        report = validate(artifact, ref_dir, validation, precision=precision)
        (request.output_dir / "validation.json").write_text(json.dumps(report, sort_keys=True, indent=2) + "\n")
    info = json.loads((ref_dir / "reference.json").read_text()) if ref_dir else {}
    names = {int(k): v for k, v in info.get("names", {}).items()} or _names(request.checkpoint)
    shapes = [[batch, *shape[1:]] for shape in info.get("output_shapes", [])]
    meta = detection_metadata(
        model_name=info.get("model_name", request.checkpoint.stem), export_format=fmt, precision=precision,
        imgsz=imgsz, output_shapes=shapes, names=names, export_config=options,
        conf=validation.get("conf", 0.25), iou=validation.get("iou", 0.45),
    )
    (request.output_dir / "metadata.json").write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n")
    # Into the log only (run facts, not artifacts): what the cell needed, for sizing machines and CI.
    print(f"[exportctl cell] peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if report is not None and report["status"] == "not-validated":
        print(f"[exportctl cell] not validated: {report['reason']} (structural checks passed)")
    elif report is not None and report["status"] != "passed":
        print("[exportctl cell] validation failed: " + "; ".join(report["violations"]))
        return VALIDATION_FAILED
    return OK


def _names(checkpoint: Path) -> dict[int, str]:
    from ultralytics import YOLO

    return dict(YOLO(str(checkpoint), task="detect").model.names)


if __name__ == "__main__":
    main(run)
