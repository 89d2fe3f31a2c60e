"""ONNX: Ultralytics' exporter (torch.onnx + onnxslim), validated with onnxruntime on CPU."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..recipe import Precision
from .base import Options, unsupported


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

    def refuse(self, precision: Precision, options: Options) -> str | None:
        return unsupported(
            precision, (Precision.fp32,),
            "Ultralytics exports ONNX fp16 only on a CUDA device and int8 needs calibration support",
        )

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        assert isinstance(options, OnnxOptions)
        return {"opset": options.opset, "dynamic": options.dynamic, "simplify": options.simplify}


TOOLCHAIN = OnnxToolchain()
