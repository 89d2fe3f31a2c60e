"""The registry of export formats: every module of this package that defines `FORMAT` is one.

Adding a format is adding `formats/<name>.py` (plus `images/<name>/Dockerfile.j2` and its lockfiles): the
registry finds it here, and nothing else in exportctl names it.
"""

from __future__ import annotations

import difflib
import functools

from exportctl.discovery import discover
from exportctl.formats.spec import ExportStep, FormatSpec, Option, Precision

_NOT_FORMATS = frozenset({"spec", "ultralytics"})  # the spec type, and the exporter most formats share


@functools.cache
def registry() -> dict[str, FormatSpec]:
    """Name -> spec, in name order."""
    return discover(__name__, __path__, "FORMAT", FormatSpec, _NOT_FORMATS)


def get(name: str) -> FormatSpec | None:
    return registry().get(name)


def reference_format() -> FormatSpec:
    """The format whose environment computes PyTorch references and demo checkpoints."""
    return next(spec for spec in registry().values() if spec.reference_environment)


def cell_environment() -> dict[str, str]:
    """Variables every cell gets for the formats' sake (one image or environment may serve several cells)."""
    return {k: v for spec in registry().values() for k, v in spec.environment.items()}


def suggest(name: str) -> str:
    """The hint for an unknown format name."""
    close = difflib.get_close_matches(name, registry(), n=1)
    return f"did you mean '{close[0]}'?" if close else f"available formats: {', '.join(sorted(registry()))}"


__all__ = ["ExportStep", "FormatSpec", "Option", "Precision", "cell_environment", "get", "reference_format",
           "registry", "suggest"]
