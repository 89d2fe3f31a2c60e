"""TensorRT engines on the GPU, through TensorRT's Python bindings and the CUDA runtime library (ctypes).

No CUDA build of torch (or any other CUDA Python package) is needed: device memory is handled through
libcudart directly. Engine files may carry Ultralytics' header (4-byte little-endian length + JSON metadata)
or be plain serialized engines (what Triton loads); both open.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import numpy as np

_CUDART = ("libcudart.so.13", "libcudart.so.12", "libcudart.so")
_H2D, _D2H = 1, 2  # cudaMemcpyKind


def split_header(data: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """(metadata, engine) of an engine file with or without Ultralytics' header."""
    length = int.from_bytes(data[:4], byteorder="little", signed=True)
    if 2 <= length <= len(data) - 4 and data[4:5] == b"{":
        try:
            return json.loads(data[4:4 + length]), data[4 + length:]
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    return None, data


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
    """An engine file on the GPU: `outputs` and `run(x)` like every other backend."""

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

    @property
    def input_dtype(self) -> str:
        return np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(self._inputs[0]))).name

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
