"""Per-format export through Ultralytics' own exporter, so artifacts keep the metadata Ultralytics embeds
(ONNX metadata_props, TorchScript config.txt) and stay loadable by its AutoBackend.

One function per format, registered by name: adding a toolchain adds one entry here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .contract import CellConfigError


def _onnx(options: dict[str, Any]) -> dict[str, Any]:
    return {"format": "onnx", "opset": options.get("opset", 17), "dynamic": options.get("dynamic", False),
            "simplify": options.get("simplify", True)}


def _torchscript(options: dict[str, Any]) -> dict[str, Any]:
    return {"format": "torchscript", "optimize": options.get("optimize", False)}


# Export-guide option names users already pass, mapped to ours.
ALIASES = {"opset_version": "opset", "dynamic_axes": "dynamic"}
FORMATS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"onnx": _onnx, "torchscript": _torchscript}
ARTIFACTS = {"onnx": "model.onnx", "torchscript": "model.torchscript"}


def export(checkpoint: Path, fmt: str, precision: str, options: dict[str, Any], imgsz: int, batch: int,
           workdir: Path, output_dir: Path) -> Path:
    """Export `checkpoint` to `fmt` and move the artifact into `output_dir`; returns the artifact path."""
    if fmt not in FORMATS:
        raise CellConfigError(f"unsupported export_format '{fmt}' (this cell supports: {', '.join(FORMATS)})")
    if precision != "fp32":
        raise CellConfigError(f"precision {precision} is not supported by the {fmt} cell")
    options = {ALIASES.get(k, k): v for k, v in options.items()}
    from ultralytics import YOLO

    # Ultralytics writes next to the checkpoint: a fixed name in a private dir keeps paths out of artifacts.
    workdir.mkdir(parents=True, exist_ok=True)
    local = workdir / "model.pt"
    shutil.copyfile(checkpoint, local)
    model = YOLO(str(local), task="detect")
    produced = Path(model.export(imgsz=imgsz, batch=batch, device="cpu", half=False, int8=False, verbose=False,
                                 **FORMATS[fmt](options)))
    target = output_dir / ARTIFACTS[fmt]
    shutil.move(str(produced), target)
    return target
