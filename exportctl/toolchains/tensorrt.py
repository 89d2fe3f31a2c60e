"""TensorRT: checkpoint -> ONNX (Ultralytics' exporter on CPU) -> engine built by TensorRT on an NVIDIA GPU,
validated with the TensorRT runtime on that GPU.

Runs in an image FROM NVIDIA's TensorRT base (images/tensorrt/): TensorRT's libraries come from there,
its Python bindings from the lock (same version). Without a GPU the cell is refused when the plan is made.
Engines are specific to the GPU model and TensorRT version they were built with, and TensorRT picks kernels
by timing them, so an engine's bytes are not reproducible the way other formats' are.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

from pydantic import Field

from exportctl import proc
from exportctl.recipe.model import Precision
from exportctl.toolchains.base import Options, unsupported


class TensorRTOptions(Options):
    opset: int = Field(17, ge=13, le=22)  # of the intermediate ONNX graph
    workspace_gb: float = Field(4.0, gt=0, le=1024)  # TensorRT builder scratch memory on the GPU
    # true: a plain engine (what Triton loads); false: Ultralytics' metadata header + engine (AutoBackend).
    triton: bool = False


@functools.cache
def gpu_missing() -> str | None:
    """Why no NVIDIA GPU is usable here, or None when one is (the one place exportctl looks for a GPU)."""
    if Path("/dev/nvidia0").exists():
        return None
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        done = proc.run([smi, "-L"], env=proc.clean_env(), timeout=30)
        if done.returncode == 0 and "GPU" in done.output:
            return None
    found = "nvidia-smi failed" if smi else "nvidia-smi is not installed"
    return (f"TensorRT builds and validates engines on an NVIDIA GPU and none was found here (no /dev/nvidia0, "
            f"{found}); build this cell on a machine with an NVIDIA GPU, its driver and the NVIDIA Container "
            "Toolkit")


class TensorRTToolchain:
    name = "tensorrt"
    artifact = "model.engine"
    runtime = "TensorRT runtime (CUDA)"
    requires_gpu = True
    options_model = TensorRTOptions
    calibrated: tuple[Precision, ...] = ()

    def refuse(self, precision: Precision, options: Options) -> str | None:
        return gpu_missing() or unsupported(
            precision, (Precision.fp32, Precision.fp16),
            "int8 engines need TensorRT calibration, which this toolchain does not run",
        )

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        assert isinstance(options, TensorRTOptions)
        return {"opset": options.opset, "workspace_gb": options.workspace_gb, "triton": options.triton}


TOOLCHAIN = TensorRTToolchain()
