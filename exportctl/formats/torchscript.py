"""TorchScript: torch.jit.trace through Ultralytics' exporter, validated with torch.jit on CPU.

This toolchain's environment is plain PyTorch + Ultralytics, so it also computes the PyTorch reference
outputs and makes demo checkpoints (`reference_environment`).
"""

from __future__ import annotations

from pathlib import Path

from exportctl.formats.spec import ExportStep, FormatSpec, Option, precisions

ARTIFACT = "model.torchscript"


def export(step: ExportStep) -> Path:
    from exportctl.formats.ultralytics import ultralytics_export

    return ultralytics_export(step, {"format": "torchscript", "optimize": step.options["optimize"]}, ARTIFACT)


FORMAT = FormatSpec(
    name="torchscript",
    artifact=ARTIFACT,
    runtime="torch.jit (CPU)",
    precisions=precisions(("fp32",), refused="Ultralytics exports TorchScript half only on CUDA"),
    backend="torchscript",
    export=export,
    options=(Option("optimize", bool, False, "optimize_for_mobile: smaller mobile graphs, same numerics"),),
    reference_environment=True,
)
