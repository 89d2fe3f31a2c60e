"""ONNX: Ultralytics' exporter (torch.onnx + onnxslim), validated with onnxruntime on CPU.

fp16 is a CPU path: the fp32 graph converted by onnxruntime's float16 converter (Ultralytics' `quantize=16` on
CPU), float32 inputs and outputs kept; onnxruntime's CPU provider runs it, casting where it has no fp16 kernel.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from exportctl.recipe.model import Precision
from exportctl.toolchains.base import Options, unsupported


class OnnxOptions(Options):
    opset: int = Field(17, ge=13, le=22)
    dynamic: bool = False
    simplify: bool = True


class OnnxToolchain:
    name = "onnx"
    artifact = "model.onnx"
    runtime = "onnxruntime (CPUExecutionProvider)"
    requires_gpu = False
    options_model = OnnxOptions
    calibrated: tuple[Precision, ...] = ()

    def refuse(self, precision: Precision, options: Options) -> str | None:
        return unsupported(
            precision, (Precision.fp32, Precision.fp16),
            "exportctl builds ONNX int8 nowhere yet; quantized ONNX graphs run well only on specific "
            "execution providers (use openvino or litert int8)",
        )

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        assert isinstance(options, OnnxOptions)
        return {"opset": options.opset, "dynamic": options.dynamic, "simplify": options.simplify}


TOOLCHAIN = OnnxToolchain()
