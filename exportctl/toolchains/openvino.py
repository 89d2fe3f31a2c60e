"""OpenVINO: Ultralytics' exporter (torch.jit trace -> openvino.convert_model), NNCF post-training quantization
for int8, validated with the OpenVINO runtime's CPU plugin at f32 inference precision.

The artifact is a directory (model.xml + model.bin + metadata.yaml), stored as one canonical tar.
"""

from __future__ import annotations

from typing import Any

from exportctl.recipe.model import Precision
from exportctl.toolchains.base import Options, unsupported


class OpenVINOOptions(Options):
    pass


class OpenVINOToolchain:
    name = "openvino"
    artifact = "model_openvino_model"  # the suffix Ultralytics' AutoBackend recognises
    runtime = "OpenVINO runtime (CPU plugin, f32 inference precision)"
    requires_gpu = False
    options_model = OpenVINOOptions
    calibrated = (Precision.int8,)

    def refuse(self, precision: Precision, options: Options) -> str | None:
        return unsupported(
            precision, (Precision.fp32, Precision.fp16, Precision.int8),
            "OpenVINO IR stores fp32 or fp16 weights, and int8 through NNCF's static quantization; "
            "Ultralytics has no w8a16/w8a32 scheme for it",
        )

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        return {}


TOOLCHAIN = OpenVINOToolchain()
