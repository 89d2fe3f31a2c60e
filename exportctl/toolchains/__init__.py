"""The one registry of toolchains: a format is available exactly when its module is listed here."""

from __future__ import annotations

import difflib

from exportctl.toolchains import coreml, litert, onnx, openvino, tensorrt, torchscript
from exportctl.toolchains.base import Options, Toolchain

REGISTRY: dict[str, Toolchain] = {
    t.name: t for t in (onnx.TOOLCHAIN, torchscript.TOOLCHAIN, openvino.TOOLCHAIN, litert.TOOLCHAIN, coreml.TOOLCHAIN,
                        tensorrt.TOOLCHAIN)
}

# The PyTorch reference and demo checkpoints run in the plain PyTorch + Ultralytics environment.
REFERENCE_TOOLCHAIN = "torchscript"


def suggest(name: str) -> str:
    """The hint for an unknown format name."""
    close = difflib.get_close_matches(name, REGISTRY, n=1)
    return f"did you mean '{close[0]}'?" if close else f"available formats: {', '.join(sorted(REGISTRY))}"


__all__ = ["REGISTRY", "REFERENCE_TOOLCHAIN", "Options", "Toolchain", "suggest"]
