"""TensorRT: checkpoint -> ONNX (Ultralytics' exporter on CPU) -> engine built by TensorRT on an NVIDIA GPU,
validated with the TensorRT runtime on that GPU (yolo_runtime's `tensorrt` backend).

Runs in an image FROM NVIDIA's TensorRT base (images/tensorrt/): TensorRT's libraries come from there,
its Python bindings from the lock (same version). Without a GPU the cell is refused when the plan is made.
Engines are specific to the GPU model and TensorRT version they were built with, and TensorRT picks kernels
by timing them, so an engine's bytes are not reproducible the way other formats' are. By default the engine
file carries Ultralytics' header (4-byte little-endian length + JSON metadata) so its AutoBackend can load
it; `triton: true` writes the plain serialized engine, which is what Triton Inference Server loads.
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from exportctl.formats.spec import RTDETR_OPSET, ExportStep, FormatSpec, Option, precisions

ARTIFACT = "model.engine"
# The intermediate graph is Ultralytics' ONNX export with these arguments (fixed: the engine fixes shapes).
GRAPH_FORMAT = "onnx"


def graph_metadata(graph: Path) -> dict[str, Any]:
    """The metadata Ultralytics embedded in the ONNX graph, with its values parsed back from their str()."""
    import onnx as graph_format

    meta: dict[str, Any] = {}
    for prop in graph_format.load(str(graph), load_external_data=False).metadata_props:
        try:
            meta[prop.key] = ast.literal_eval(prop.value)
        except (ValueError, SyntaxError):
            meta[prop.key] = prop.value
    return meta


def with_header(engine: bytes, metadata: dict[str, Any]) -> bytes:
    """Ultralytics' engine file layout (its exporter writes the same): length, JSON metadata, engine."""
    meta = json.dumps(metadata).encode()
    return len(meta).to_bytes(4, byteorder="little", signed=True) + meta + engine


def build_engine(graph: Path, precision: str, workspace_gb: float) -> bytes:
    import tensorrt_bindings as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch: the only mode TensorRT 10+ has
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph.read_bytes()):
        problems = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the ONNX graph: {problems}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: TF32 would round matmul inputs to 10 bits
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise RuntimeError(f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed only)")
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT could not build an engine (its log is above)")
    return bytes(serialized)


def export(step: ExportStep) -> Path:
    """ONNX through Ultralytics' exporter (fp32, on CPU), then the engine from TensorRT's builder."""
    from exportctl.formats.ultralytics import ultralytics_export

    graph_dir = step.workdir / "graph"
    graph_dir.mkdir(parents=True, exist_ok=True)
    graph_step = replace(step, precision="fp32", output_dir=graph_dir, calibration_dir=None)
    args = {"format": GRAPH_FORMAT, "opset": step.options["opset"], "dynamic": False, "simplify": True}
    graph = ultralytics_export(graph_step, args, "model.onnx")
    engine = build_engine(graph, step.precision, float(step.options["workspace_gb"]))
    data = engine if step.options["triton"] else with_header(engine, graph_metadata(graph))
    target = step.output_dir / ARTIFACT
    target.write_bytes(data)
    return target


FORMAT = FormatSpec(
    name="tensorrt",
    artifact=ARTIFACT,
    runtime="TensorRT runtime (CUDA)",
    precisions=precisions(("fp32", "fp16"),
                          refused="int8 engines need TensorRT calibration, which this toolchain does not run"),
    backend="tensorrt",
    export=export,
    options=(
        Option("opset", int, 17, "opset of the intermediate ONNX graph", ge=13, le=22, refusals=(RTDETR_OPSET,)),
        Option("workspace_gb", float, 4.0, "TensorRT builder scratch memory on the GPU", gt=0, le=1024),
        Option("triton", bool, False, "true: a plain engine (what Triton loads); false: Ultralytics' metadata "
                                      "header + engine (AutoBackend)"),
    ),
    gpu_purpose="TensorRT builds and validates engines",
)
