"""The in-cell export through Ultralytics' own exporter, shared by the formats that use it (not a format).

Artifacts so keep the metadata Ultralytics embeds (ONNX metadata_props, TorchScript config.txt, OpenVINO
metadata.yaml, LiteRT's metadata.json entry, CoreML user-defined metadata) and stay loadable by its
AutoBackend. Each format's spec (`exportctl/formats/<name>.py`) maps its options to Ultralytics' export
arguments and then calls `ultralytics_export`.

Static quantization calibrates on the images the host chose and mounted (`<in>/calibration/00000.jpg`, ...):
Ultralytics' INT8 loader (which reads a dataset yaml, and downloads a default dataset when none is given) is
replaced by one that letterboxes exactly those files, in name order, the way validation and users' inference
preprocess them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exportctl.formats.spec import ExportStep

# Our precision names -> Ultralytics' `quantize` argument (None is fp32).
QUANTIZE: dict[str, int | str | None] = {"fp32": None, "fp16": 16, "int8": 8, "w8a16": "w8a16", "w8a32": "w8a32"}
CALIBRATION_DATA = "calibration"  # the `data` value Ultralytics records; never resolved (our loader replaces it)
# What the calibration loader reads, and Ultralytics' advice on how many INT8 calibration images to use
# (the host's calibration selection uses both).
CALIBRATION_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
CALIBRATION_RECOMMENDED = 300


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
        install_loader(step.calibration_dir, imgsz=step.imgsz, batch=step.batch, preprocess=step.preprocess)
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


def calibration_batches(directory: Path, imgsz: int, batch: int,
                        preprocess: Callable[[Path, int], Any] | None = None) -> list[dict[str, Any]]:
    """uint8 NCHW RGB batches of exactly `batch` images (the last one tiled up, as Ultralytics does), each image
    preprocessed by `preprocess` (the task's; default: letterbox)."""
    import numpy as np
    import torch
    from yolo_runtime import letterbox, load_image

    if preprocess is None:
        def preprocess(path: Path, size: int) -> Any:
            return letterbox(load_image(path), size)

    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in CALIBRATION_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no calibration images in {directory}")
    # preprocessing gives float32 x/255 of uint8 pixels: scaling back and rounding recovers the pixels exactly.
    if len(files) < CALIBRATION_RECOMMENDED:
        print(f"[exportctl cell] calibrating on {len(files)} images; more than {CALIBRATION_RECOMMENDED} are "
              "recommended for INT8")
    images = np.concatenate([np.rint(preprocess(p, imgsz) * 255).astype(np.uint8) for p in files])
    batches = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk] * -(-batch // len(chunk)))[:batch]
        batches.append({"img": torch.from_numpy(np.ascontiguousarray(chunk))})
    return batches


def install_loader(directory: Path, imgsz: int, batch: int,
                   preprocess: Callable[[Path, int], Any] | None = None) -> None:
    """Make Ultralytics' exporter calibrate on `directory` (its data argument is then only a label)."""
    from ultralytics.engine import exporter

    batches = calibration_batches(directory, imgsz, batch, preprocess)

    def loader(self: Any, prefix: str = "") -> list[dict[str, Any]]:
        return batches

    exporter.Exporter.get_int8_calibration_dataloader = loader
