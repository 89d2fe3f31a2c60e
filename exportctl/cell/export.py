"""The in-cell export through Ultralytics' own exporter, shared by the formats that use it.

Artifacts so keep the metadata Ultralytics embeds (ONNX metadata_props, TorchScript config.txt, OpenVINO
metadata.yaml, LiteRT's metadata.json entry, CoreML user-defined metadata) and stay loadable by its
AutoBackend. Each format's spec (`exportctl/formats/<name>.py`) maps its options to Ultralytics' export
arguments and then calls `ultralytics_export`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from exportctl.formats.spec import ExportStep

# Our precision names -> Ultralytics' `quantize` argument (None is fp32).
QUANTIZE: dict[str, int | str | None] = {"fp32": None, "fp16": 16, "int8": 8, "w8a16": "w8a16", "w8a32": "w8a32"}
CALIBRATION_DATA = "calibration"  # the `data` value Ultralytics records; never resolved (our loader replaces it)


def ultralytics_export(step: ExportStep, args: dict[str, Any], artifact: str,
                       quantize: int | str | None = None) -> Path:
    """Export `step.checkpoint` with Ultralytics `args` and move the result to `artifact` in the output dir.

    `quantize` overrides the precision's own `quantize` value (CoreML's NMS pipelines). Calibration images
    replace Ultralytics' dataset loader, so no dataset is ever resolved or downloaded.
    """
    args = dict(args)
    quantize = QUANTIZE[step.precision] if quantize is None else quantize
    if quantize is not None:
        args["quantize"] = quantize
    if step.calibration_dir is not None:
        from exportctl.cell.calibration_data import install_loader

        install_loader(step.calibration_dir, imgsz=step.imgsz, batch=step.batch)
        args["data"] = CALIBRATION_DATA
    from ultralytics import YOLO

    # Ultralytics writes next to the checkpoint: a fixed name in a private dir keeps paths out of artifacts.
    step.workdir.mkdir(parents=True, exist_ok=True)
    local = step.workdir / "model.pt"
    shutil.copyfile(step.checkpoint, local)
    model = YOLO(str(local), task=step.task)
    produced = Path(model.export(imgsz=step.imgsz, batch=step.batch, device="cpu", verbose=False, **args))
    target = step.output_dir / artifact
    shutil.move(str(produced), target)
    return target
