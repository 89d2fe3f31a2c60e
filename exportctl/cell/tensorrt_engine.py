"""TensorRT cell: checkpoint -> ONNX (Ultralytics' exporter, CPU) -> engine (TensorRT builder, GPU), and the
TensorRT runtime backend validation uses.

TensorRT's Python bindings come from the lock (`tensorrt_bindings`), its libraries and CUDA from NVIDIA's
base image; device memory is handled through the CUDA runtime library with ctypes, so no CUDA build of
torch (or any other CUDA Python package) is needed. By default the engine file carries Ultralytics' header
(4-byte little-endian length + JSON metadata) so its AutoBackend can load it; `triton: true` writes the
plain serialized engine, which is what Triton Inference Server loads.
"""

from __future__ import annotations

import ast
import ctypes
import json
from pathlib import Path
from typing import Any

import numpy as np

ARTIFACT = "model.engine"
_CUDART = ("libcudart.so.13", "libcudart.so.12", "libcudart.so")
_H2D, _D2H = 1, 2  # cudaMemcpyKind


def ultralytics_metadata(onnx_path: Path) -> dict[str, Any]:
    """The metadata Ultralytics embedded in the ONNX graph, with its values parsed back from their str()."""
    import onnx

    meta: dict[str, Any] = {}
    for prop in onnx.load(str(onnx_path), load_external_data=False).metadata_props:
        try:
            meta[prop.key] = ast.literal_eval(prop.value)
        except (ValueError, SyntaxError):
            meta[prop.key] = prop.value
    return meta


def with_header(engine: bytes, metadata: dict[str, Any]) -> bytes:
    """Ultralytics' engine file layout (its exporter writes the same): length, JSON metadata, engine."""
    meta = json.dumps(metadata).encode()
    return len(meta).to_bytes(4, byteorder="little", signed=True) + meta + engine


def split_header(data: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """(metadata, engine) of an engine file with or without Ultralytics' header."""
    length = int.from_bytes(data[:4], byteorder="little", signed=True)
    if 2 <= length <= len(data) - 4 and data[4:5] == b"{":
        try:
            return json.loads(data[4:4 + length]), data[4 + length:]
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    return None, data


def build_engine(onnx_path: Path, precision: str, workspace_gb: float) -> bytes:
    import tensorrt_bindings as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch: the only mode TensorRT 10+ has
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
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


def export_engine(checkpoint: Path, precision: str, options: dict[str, Any], imgsz: int, batch: int,
                  workdir: Path, output_dir: Path) -> Path:
    """The cell's export: ONNX through the ONNX exporter, then the engine; returns the artifact path."""
    from .exporters import export

    onnx_dir = workdir / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    graph = export(checkpoint, "onnx", "fp32", {"opset": options.get("opset", 17), "simplify": True,
                                                "dynamic": False}, imgsz, batch, workdir, onnx_dir)
    engine = build_engine(graph, precision, float(options.get("workspace_gb", 4.0)))
    data = engine if options.get("triton") else with_header(engine, ultralytics_metadata(graph))
    target = output_dir / ARTIFACT
    target.write_bytes(data)
    register()
    return target


class _Cuda:
    """The few CUDA runtime calls inference needs, through ctypes."""

    def __init__(self) -> None:
        for name in _CUDART:
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise RuntimeError(f"no CUDA runtime library ({', '.join(_CUDART)}) in this image")

    def check(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what} failed with CUDA error {status}")

    def malloc(self, size: int) -> int:
        ptr = ctypes.c_void_p()
        self.check(self.lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(size)), "cudaMalloc")
        return int(ptr.value or 0)

    def copy(self, dst: int, src: int, size: int, kind: int) -> None:
        self.check(self.lib.cudaMemcpy(ctypes.c_void_p(dst), ctypes.c_void_p(src), ctypes.c_size_t(size), kind),
                   "cudaMemcpy")

    def free(self, ptr: int) -> None:
        self.lib.cudaFree(ctypes.c_void_p(ptr))


class TensorRTBackend:
    """An engine file on the GPU, with yolo_runtime's backend shape: `outputs` and `run(x)`."""

    def __init__(self, path: str | Path) -> None:
        import tensorrt_bindings as trt

        self._trt = trt
        self._cuda = _Cuda()
        _, engine = split_header(Path(path).read_bytes())
        self._engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine)
        if self._engine is None:
            raise RuntimeError(f"TensorRT could not load {path} (built for another GPU or TensorRT version?)")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    @property
    def outputs(self) -> list[str]:
        return self._outputs

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        trt, cuda, ctx = self._trt, self._cuda, self._context
        name = self._inputs[0]
        host_in = np.ascontiguousarray(x, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
        ctx.set_input_shape(name, host_in.shape)
        results, buffers = [], []
        try:
            device_in = cuda.malloc(host_in.nbytes)
            buffers.append(device_in)
            cuda.copy(device_in, host_in.ctypes.data, host_in.nbytes, _H2D)
            ctx.set_tensor_address(name, device_in)
            for out in self._outputs:
                host = np.empty(tuple(ctx.get_tensor_shape(out)), dtype=trt.nptype(self._engine.get_tensor_dtype(out)))
                device = cuda.malloc(max(host.nbytes, 1))
                buffers.append(device)
                ctx.set_tensor_address(out, device)
                results.append((host, device))
            if not ctx.execute_async_v3(0):  # the default stream; cudaMemcpy below synchronises with it
                raise RuntimeError("TensorRT inference failed")
            for host, device in results:
                cuda.copy(host.ctypes.data, device, host.nbytes, _D2H)
        finally:
            for ptr in buffers:
                cuda.free(ptr)
        return [host.astype(np.float32) for host, _ in results]


def register() -> None:
    """Let yolo_runtime's `open_backend` (which validation uses) open `.engine` files."""
    from yolo_runtime import backends

    backends.BACKENDS.setdefault(".engine", TensorRTBackend)
