"""CoreML (.mlpackage, ML Program): Ultralytics' exporter through coremltools.

coremltools converts on Linux but predicts only on macOS: there the local backend runs `MLModel.predict` and
gates like any other cell; elsewhere the cell checks structure (inputs, outputs, shapes, metadata) and is
recorded as not validated, never as passed. int8 is 8-bit k-means palettized weights (fp16 compute).
"""

from __future__ import annotations

from typing import Any

from exportctl.recipe.model import Precision
from exportctl.toolchains.base import Options, unsupported


class CoreMLOptions(Options):
    nms: bool = False  # append Apple's NMS stage: outputs become (confidence, coordinates) after suppression


class CoreMLToolchain:
    name = "coreml"
    artifact = "model.mlpackage"
    runtime = "coremltools MLModel.predict (macOS; structural checks only elsewhere)"
    requires_gpu = False
    options_model = CoreMLOptions
    calibrated: tuple[Precision, ...] = ()  # palettization clusters weights: no activation ranges to calibrate

    def refuse(self, precision: Precision, options: Options) -> str | None:
        return unsupported(
            precision, (Precision.fp32, Precision.fp16, Precision.int8),
            "CoreML's 8-bit scheme is palettized weights with fp16 activations, built as int8 "
            "(w8a16 would be the same model); it has no float-activation int8 (w8a32)",
        )

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        assert isinstance(options, CoreMLOptions)
        return {"nms": options.nms}


TOOLCHAIN = CoreMLToolchain()
