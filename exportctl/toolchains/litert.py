"""LiteRT (.tflite): Ultralytics' exporter through litert-torch (PyTorch -> LiteRT, no TensorFlow) and
ai-edge-quantizer, validated with ai-edge-litert's Interpreter on CPU.

Schemes: fp32; w8a32 (dynamic range: int8 weights, float activations, no calibration); int8 (static: int8
weights and activations, calibrated); w8a16 (static: int8 weights, int16 activations, calibrated).
"""

from __future__ import annotations

from typing import Any

from exportctl.recipe.model import Precision
from exportctl.toolchains.base import Options, unsupported


class LiteRTOptions(Options):
    pass


class LiteRTToolchain:
    name = "litert"
    artifact = "model.tflite"
    runtime = "ai-edge-litert Interpreter (CPU, 1 thread)"
    requires_gpu = False
    options_model = LiteRTOptions
    calibrated = (Precision.int8, Precision.w8a16)

    def refuse(self, precision: Precision, options: Options) -> str | None:
        return unsupported(
            precision, (Precision.fp32, Precision.w8a32, Precision.int8, Precision.w8a16),
            "LiteRT has no fp16 model: an fp32 model runs in fp16 at runtime (GPU delegate, XNNPACK FORCE_FP16)",
        )

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        return {}


TOOLCHAIN = LiteRTToolchain()
