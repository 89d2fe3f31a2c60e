"""One small adapter per export format, all with the same `run(x) -> list[np.ndarray]` shape.

Each toolchain environment has only its own framework installed, so frameworks are imported inside the
backend that needs them, never at module import. Everything runs single-threaded on CPU: thread count
changes floating-point reduction order, and validation results must not depend on the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Backend(Protocol):
    """What `YOLOInference` and exportctl's validation need from any exported model."""

    @property
    def outputs(self) -> Sequence[str]: ...

    def run(self, x: np.ndarray) -> list[np.ndarray]: ...


class OnnxBackend:
    """ONNX Runtime, CPU provider, one thread, default graph optimizations."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        # Half-precision exports declare float16 inputs; ORT refuses float32 for them instead of casting.
        self._input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    @property
    def outputs(self) -> list[str]:
        return [o.name for o in self._session.get_outputs()]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return list(self._session.run(None, {self._input_name: x.astype(self._input_dtype, copy=False)}))


class TorchScriptBackend:
    """`torch.jit.load` on CPU, one thread, no autograd.

    TorchScript does not declare outputs, so they are named `output0`, `output1`, ... (the ONNX export's
    names) once the first `run` reveals how many there are; until then `outputs` is empty.
    """

    def __init__(self, path: str | Path) -> None:
        import torch

        torch.set_num_threads(1)
        self._torch = torch
        self._module = torch.jit.load(str(path), map_location="cpu").eval()
        self._outputs: list[str] = []

    @property
    def outputs(self) -> list[str]:
        return self._outputs

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        with self._torch.no_grad():
            result = self._module(self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        arrays = [t.detach().cpu().numpy() for t in _flatten(result)]
        self._outputs = [f"output{i}" for i in range(len(arrays))]
        return arrays


def _flatten(value: Any) -> list[Any]:
    """Tensors from a model's return value, which may be a tensor or (nested) tuples/lists of them."""
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flatten(item)]
    return [value]


# Suffix -> backend class; a new format plugs in by adding its entry here.
BACKENDS: dict[str, Callable[[Path], Backend]] = {
    ".onnx": OnnxBackend,
    ".torchscript": TorchScriptBackend,
}


def open_backend(path: str | Path) -> Backend:
    """Open an exported model with the backend its file suffix names."""
    path = Path(path)
    cls = BACKENDS.get(path.suffix.lower())
    if cls is None:
        raise ValueError(f"no backend for {path.name!r}; supported suffixes: {', '.join(sorted(BACKENDS))}")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return cls(path)
