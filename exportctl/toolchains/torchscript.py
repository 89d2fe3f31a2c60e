"""TorchScript: torch.jit.trace through Ultralytics' exporter, validated with torch.jit on CPU.

This toolchain's environment is plain PyTorch + Ultralytics, so it also computes the PyTorch reference
outputs and makes demo checkpoints (see `REFERENCE_TOOLCHAIN` in the registry).
"""

from __future__ import annotations

from typing import Any

from exportctl.recipe.model import Precision
from exportctl.toolchains.base import Options, unsupported


class TorchScriptOptions(Options):
    optimize: bool = False  # optimize_for_mobile: smaller mobile graphs, same numerics


class TorchScriptToolchain:
    name = "torchscript"
    artifact = "model.torchscript"
    runtime = "torch.jit (CPU)"
    requires_gpu = False
    options_model = TorchScriptOptions
    calibrated: tuple[Precision, ...] = ()

    def refuse(self, precision: Precision, options: Options) -> str | None:
        return unsupported(precision, (Precision.fp32,), "Ultralytics exports TorchScript half only on CUDA")

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        assert isinstance(options, TorchScriptOptions)
        return {"optimize": options.optimize}


TOOLCHAIN = TorchScriptToolchain()
