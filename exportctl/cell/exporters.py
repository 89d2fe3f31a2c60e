"""Per-format export through Ultralytics' own exporter, so artifacts keep the metadata Ultralytics embeds
(ONNX metadata_props, TorchScript config.txt, OpenVINO metadata.yaml, LiteRT's metadata.json entry, CoreML
user-defined metadata) and stay loadable by its AutoBackend.

One function per format, registered by name: adding a toolchain adds one entry here. A format may also name
a `finish` step (see `reproducible.py`) that removes what would make its bytes differ between two builds.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contract import CellConfigError

# Our precision names -> Ultralytics' `quantize` argument (None is fp32).
QUANTIZE: dict[str, int | str | None] = {"fp32": None, "fp16": 16, "int8": 8, "w8a16": "w8a16", "w8a32": "w8a32"}
CALIBRATION_DATA = "calibration"  # the `data` value Ultralytics records; never resolved (our loader replaces it)


def _onnx(options: dict[str, Any]) -> dict[str, Any]:
    return {"format": "onnx", "opset": options.get("opset", 17), "dynamic": options.get("dynamic", False),
            "simplify": options.get("simplify", True)}


def _torchscript(options: dict[str, Any]) -> dict[str, Any]:
    return {"format": "torchscript", "optimize": options.get("optimize", False)}


def _openvino(options: dict[str, Any]) -> dict[str, Any]:
    from .reproducible import openvino_telemetry_off

    openvino_telemetry_off()  # before openvino or nncf is imported: both read the consent file once
    return {"format": "openvino"}


def _litert(options: dict[str, Any]) -> dict[str, Any]:
    return {"format": "litert"}


def _coreml(options: dict[str, Any]) -> dict[str, Any]:
    return {"format": "coreml", "nms": bool(options.get("nms", False))}


@dataclass(frozen=True)
class Format:
    args: Callable[[dict[str, Any]], dict[str, Any]]  # our options -> Ultralytics export arguments
    artifact: str  # name in the output dir (a directory for OpenVINO and CoreML)
    precisions: tuple[str, ...]
    finish: Callable[[Path], None] | None = None  # rewrites the artifact in place so equal inputs give equal bytes


def _finish(name: str) -> Callable[[Path], None]:
    def finish(path: Path) -> None:
        from . import reproducible

        getattr(reproducible, name)(path)
    return finish


FORMATS: dict[str, Format] = {
    "onnx": Format(_onnx, "model.onnx", ("fp32", "fp16")),
    "torchscript": Format(_torchscript, "model.torchscript", ("fp32",)),
    "openvino": Format(_openvino, "model_openvino_model", ("fp32", "fp16", "int8"), _finish("openvino")),
    "litert": Format(_litert, "model.tflite", ("fp32", "w8a32", "int8", "w8a16"), _finish("litert")),
    "coreml": Format(_coreml, "model.mlpackage", ("fp32", "fp16", "int8"), _finish("coreml")),
}
ARTIFACTS = {name: f.artifact for name, f in FORMATS.items()}
# Export-guide option names users already pass, mapped to ours.
ALIASES = {"opset_version": "opset", "dynamic_axes": "dynamic"}


def export(checkpoint: Path, fmt: str, precision: str, options: dict[str, Any], imgsz: int, batch: int,
           workdir: Path, output_dir: Path, calibration: dict[str, Any] | None = None,
           conf: float = 0.25, iou: float = 0.45) -> Path:
    """Export `checkpoint` to `fmt` and move the artifact into `output_dir`; returns the artifact path.

    `calibration` ({"dir": ..., "count": n}) names the images static quantization calibrates on; it replaces
    Ultralytics' dataset loader, so no dataset is ever resolved or downloaded. `conf`/`iou` are the thresholds
    an embedded NMS stage gets (the recipe's validation settings, so it suppresses as validation does).
    """
    if fmt == "tensorrt":  # not an Ultralytics export: ONNX through this module, then TensorRT's builder
        from .tensorrt_engine import export_engine

        return export_engine(checkpoint, precision, options, imgsz, batch, workdir, output_dir)
    spec = FORMATS.get(fmt)
    if spec is None:
        raise CellConfigError(f"unsupported export_format '{fmt}' (this cell supports: {', '.join(FORMATS)})")
    if precision not in spec.precisions:
        raise CellConfigError(f"precision {precision} is not supported by the {fmt} cell "
                              f"(it builds: {', '.join(spec.precisions)})")
    options = {ALIASES.get(k, k): v for k, v in options.items()}
    args = spec.args(options)
    quantize = QUANTIZE[precision]
    if args.get("nms"):
        args.update(conf=conf, iou=iou)
        quantize = 32 if quantize is None else quantize  # unset, Ultralytics builds NMS pipelines in fp16
    if quantize is not None:
        args["quantize"] = quantize
    if calibration is not None:
        from .calibration_data import install_loader

        install_loader(Path(calibration["dir"]), imgsz=imgsz, batch=batch)
        args["data"] = CALIBRATION_DATA
    from ultralytics import YOLO

    # Ultralytics writes next to the checkpoint: a fixed name in a private dir keeps paths out of artifacts.
    workdir.mkdir(parents=True, exist_ok=True)
    local = workdir / "model.pt"
    shutil.copyfile(checkpoint, local)
    model = YOLO(str(local), task="detect")
    produced = Path(model.export(imgsz=imgsz, batch=batch, device="cpu", verbose=False, **args))
    target = output_dir / spec.artifact
    shutil.move(str(produced), target)
    if spec.finish is not None:
        spec.finish(target)
    return target
