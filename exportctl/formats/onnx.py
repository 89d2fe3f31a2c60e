"""ONNX: Ultralytics' exporter (torch.onnx + onnxslim), validated with onnxruntime on CPU.

fp16 is a CPU path: the fp32 graph converted by onnxruntime's float16 converter (Ultralytics' `quantize=16` on
CPU), float32 inputs and outputs kept; onnxruntime's CPU provider runs it, casting where it has no fp16 kernel.
"""

from __future__ import annotations

from pathlib import Path

from exportctl.formats.spec import RTDETR_OPSET, ExportStep, FormatSpec, Option, precisions

ARTIFACT = "model.onnx"


def export(step: ExportStep) -> Path:
    from exportctl.formats.ultralytics import ultralytics_export

    o = step.options
    args = {"format": "onnx", "opset": o["opset"], "dynamic": o["dynamic"], "simplify": o["simplify"]}
    return ultralytics_export(step, args, ARTIFACT)


FORMAT = FormatSpec(
    name="onnx",
    artifact=ARTIFACT,
    runtime="onnxruntime (CPUExecutionProvider)",
    precisions=precisions(
        ("fp32", "fp16"),
        refused="exportctl builds ONNX int8 nowhere yet; quantized ONNX graphs run well only on specific "
                "execution providers (use openvino or litert int8)",
    ),
    backend="onnx",
    export=export,
    options=(
        Option("opset", int, 17, "ONNX opset of the exported graph", ge=13, le=22, aliases=("opset_version",),
               refusals=(RTDETR_OPSET,)),
        Option("dynamic", bool, False, "dynamic batch and image axes", aliases=("dynamic_axes",)),
        Option("simplify", bool, True, "simplify the graph with onnxslim"),
    ),
)
