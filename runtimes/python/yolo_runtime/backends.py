"""One small adapter per export format, all with the same `run(x) -> list[np.ndarray]` shape.

Each toolchain environment has only its own framework installed, so frameworks are imported inside the
backend that needs them, never at module import. By default everything runs single-threaded on CPU: thread
count changes floating-point reduction order, and validation results must not depend on the machine.
`threads` asks a backend for more intra-op threads (latency profiles measure 1 and all cores).
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

    @property
    def input_dtype(self) -> str: ...  # what the model's input takes (numpy dtype name; "uint8": image pixels)

    def run(self, x: np.ndarray) -> list[np.ndarray]: ...


class OnnxBackend:
    """ONNX Runtime, CPU provider, one thread (or `threads` intra-op threads), default graph optimizations."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        # Half-precision exports declare float16 inputs; ORT refuses float32 for them instead of casting.
        self._input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    @property
    def outputs(self) -> list[str]:
        return [o.name for o in self._session.get_outputs()]

    @property
    def input_dtype(self) -> str:
        return np.dtype(self._input_dtype).name

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return list(self._session.run(None, {self._input_name: x.astype(self._input_dtype, copy=False)}))


class TorchScriptBackend:
    """`torch.jit.load` on CPU, one thread (or `threads`: torch's setting is per process), no autograd.

    TorchScript does not declare outputs, so they are named `output0`, `output1`, ... (the ONNX export's
    names) once the first `run` reveals how many there are; until then `outputs` is empty.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self._module = torch.jit.load(str(path), map_location="cpu").eval()
        self._outputs: list[str] = []

    @property
    def outputs(self) -> list[str]:
        return self._outputs

    @property
    def input_dtype(self) -> str:
        return "float32"  # what run() feeds; a traced module declares no input type

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


class RuntimeUnavailable(RuntimeError):
    """The format's runtime cannot run on this platform (CoreML predicts only on macOS)."""


class OpenVINOBackend:
    """OpenVINO runtime, CPU plugin, one stream and one thread (or `threads`), f32 inference precision.

    The CPU plugin would otherwise run fp32 models in bf16 on CPUs that have it (AMX, AVX512-BF16), so results
    would depend on the machine. `path` is the IR's `.xml` or the export directory holding it.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import openvino as ov

        path = Path(path)
        xml = path if path.suffix == ".xml" else _single(path, "*.xml")
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                  "PERFORMANCE_HINT": "LATENCY"}
        self._compiled = core.compile_model(core.read_model(xml), "CPU", config)
        # Traced TorchScript graphs leave output tensors unnamed: name them like the ONNX export does.
        self._outputs = [min(o.get_names(), default=f"output{i}") for i, o in enumerate(self._compiled.outputs)]

    @property
    def outputs(self) -> list[str]:
        return self._outputs

    @property
    def input_dtype(self) -> str:
        return np.dtype(self._compiled.inputs[0].get_element_type().to_dtype()).name

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        result = self._compiled(np.ascontiguousarray(x, dtype=np.float32))
        return [np.asarray(result[o]) for o in self._compiled.outputs]


class LiteRTBackend:
    """ai-edge-litert's Interpreter on CPU, one thread (or `threads`).

    Ultralytics' LiteRT exports of boxes (detect, segment, pose, obb) emit box coordinates, and pose keypoints' x
    and y, divided by the input width/height (so one int8 scale fits coordinates and scores); `run` multiplies them
    back, so outputs are in input pixels like every other backend's. The embedded metadata (a zip appended to the
    flatbuffer) says whether that applies, how many class rows precede the keypoints, and how many values each
    keypoint has. Outputs come in the PyTorch model's order (a segment model's protos after its boxes).
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output_details = self._interpreter.get_output_details()
        meta = _appended_metadata(Path(path))
        self.normalized = normalizes_boxes(meta)
        kpt_shape = meta.get("kpt_shape")
        # (first keypoint row, values per keypoint) of a pose head's output
        self._keypoints = (4 + len(meta.get("names", {})), int(kpt_shape[1])) \
            if meta.get("task") == "pose" and kpt_shape else None

    @property
    def outputs(self) -> list[str]:
        return [f"output{i}" for i in range(len(self._output_details))]

    @property
    def input_dtype(self) -> str:
        return np.dtype(self._input["dtype"]).name

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self._interpreter.set_tensor(self._input["index"], np.ascontiguousarray(x, dtype=self._input["dtype"]))
        self._interpreter.invoke()
        # litert-torch may list a segment model's protos (4-D) first: boxes (3-D) first, as the PyTorch model returns
        arrays = sorted((np.array(self._interpreter.get_tensor(d["index"])) for d in self._output_details),
                        key=lambda a: a.ndim)
        if self.normalized:
            h, w = x.shape[2:4]
            det = arrays[0].astype(np.float32)
            det[:, 0:4:2] *= w  # x, w
            det[:, 1:4:2] *= h  # y, h
            if self._keypoints is not None:
                start, per_point = self._keypoints
                det[:, start::per_point] *= w
                det[:, start + 1 :: per_point] *= h
            arrays[0] = det
        return arrays


def normalizes_boxes(meta: dict[str, Any]) -> bool:
    """Whether a LiteRT export with Ultralytics' metadata `meta` divides its box rows by the input size: heads that
    decode boxes on a grid do; end-to-end heads do not, nor RT-DETR's decoder, whose [0, 1] boxes are the same in
    every format and in the reference (nothing to scale back)."""
    return (meta.get("task") in {"detect", "segment", "pose", "obb"} and not meta.get("end2end")
            and meta.get("head") != "RTDETRDecoder")


def _appended_metadata(path: Path) -> dict[str, Any]:
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return dict(json.loads(z.read("metadata.json")))
    except (zipfile.BadZipFile, KeyError):
        return {}


class CoreMLBackend:
    """coremltools' `MLModel.predict` on CPU: macOS only (coremltools converts everywhere, predicts on macOS)."""

    # Declared here because a type checker off macOS sees __init__ past the platform check as unreachable.
    _model: Any
    _input: str
    _outputs: list[str]

    def __init__(self, path: str | Path, threads: int = 1) -> None:  # noqa: ARG002 - Core ML schedules itself
        import sys

        if sys.platform != "darwin":
            raise RuntimeUnavailable("numeric validation requires macOS: coremltools predicts only there")
        import coremltools as ct

        self._model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        spec = self._model.get_spec()
        if spec.WhichOneof("Type") == "pipeline":
            raise RuntimeUnavailable("an NMS pipeline outputs suppressed boxes, not the raw head: checked structurally")
        self._input = spec.description.input[0].name
        self._outputs = [o.name for o in spec.description.output]

    @property
    def outputs(self) -> list[str]:
        return self._outputs

    @property
    def input_dtype(self) -> str:
        return "uint8"  # an image input: 8-bit RGB pixels (the model scales them)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        from PIL import Image

        # The model's input is an image (scale 1/255): hand back the uint8 pixels the letterboxed floats came from.
        pixels = np.rint(x[0].transpose(1, 2, 0) * 255).astype(np.uint8)
        result = self._model.predict({self._input: Image.fromarray(pixels)})
        return [np.asarray(result[name], dtype=np.float32) for name in self._outputs]


def _single(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one {pattern} in {directory}, found {len(found)}")
    return found[0]


def _tensorrt(path: Path, threads: int = 1) -> Backend:  # noqa: ARG001 - the engine runs on the GPU
    from .engine import TensorRTBackend  # ctypes + CUDA: only where an engine is opened

    return TensorRTBackend(path)


# Export format name (exportctl's, and metadata.json's `export_format`) -> backend(path, threads).
BACKENDS: dict[str, Callable[[Path, int], Backend]] = {
    "onnx": OnnxBackend,
    "torchscript": TorchScriptBackend,
    "openvino": OpenVINOBackend,
    "litert": LiteRTBackend,
    "coreml": CoreMLBackend,
    "tensorrt": _tensorrt,
}


def open_backend(path: str | Path, fmt: str, threads: int = 1) -> Backend:
    """Open the model exported as format `fmt` at `path` (a file, or the export's directory), running on `threads`
    CPU threads (1, the default, gives the same numbers on every machine)."""
    path = Path(path)
    backend = BACKENDS.get(fmt)
    if backend is None:
        raise ValueError(f"no backend for format {fmt!r}; supported: {', '.join(sorted(BACKENDS))}")
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return backend(path, threads)
