"""Calibration images for static quantization, fed to Ultralytics' exporter in place of its dataset loader.

Ultralytics builds its INT8 calibration loader from a dataset yaml (and downloads a default dataset when none
is given). Inside a cell the host has already chosen and mounted the images (`/in/calibration/00000.jpg`, ...),
so the exporter's loader is replaced by one that letterboxes exactly those files, in name order, the same way
validation and users' inference preprocess them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exportctl.cell.protocol import CALIBRATION_RECOMMENDED, CALIBRATION_SUFFIXES


def calibration_batches(directory: Path, imgsz: int, batch: int) -> list[dict[str, Any]]:
    """uint8 NCHW RGB batches of exactly `batch` images (the last one tiled up, as Ultralytics does)."""
    import numpy as np
    import torch
    from yolo_runtime import letterbox, load_image

    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in CALIBRATION_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no calibration images in {directory}")
    # letterbox gives float32 x/255 of uint8 pixels: scaling back and rounding recovers the pixels exactly.
    if len(files) < CALIBRATION_RECOMMENDED:
        print(f"[exportctl cell] calibrating on {len(files)} images; more than {CALIBRATION_RECOMMENDED} are "
              "recommended for INT8")
    images = np.concatenate([np.rint(letterbox(load_image(p), imgsz) * 255).astype(np.uint8) for p in files])
    batches = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk] * -(-batch // len(chunk)))[:batch]
        batches.append({"img": torch.from_numpy(np.ascontiguousarray(chunk))})
    return batches


def install_loader(directory: Path, imgsz: int, batch: int) -> None:
    """Make Ultralytics' exporter calibrate on `directory` (its data argument is then only a label)."""
    from ultralytics.engine import exporter

    batches = calibration_batches(directory, imgsz, batch)

    def loader(self: Any, prefix: str = "") -> list[dict[str, Any]]:
        return batches

    exporter.Exporter.get_int8_calibration_dataloader = loader  # type: ignore[method-assign]
