"""The Toolchain protocol: what exportctl needs to know about one export format's toolchain.

A toolchain owns a format name (the recipe key), its options, which precisions it can produce (and why not
the others), its lockfile and image template, and the export config handed to the in-cell entrypoint.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from exportctl.recipe.model import Precision


class Options(BaseModel):
    """Base for per-format options: frozen, unknown keys refused (so typos never silently do nothing)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Toolchain(Protocol):
    # Read-only members (properties) so plain class attributes in each toolchain module satisfy them.
    @property
    def name(self) -> str: ...
    @property
    def artifact(self) -> str: ...  # file (or directory) name the cell writes into its output dir
    @property
    def runtime(self) -> str: ...  # what validates the artifact, shown to users
    @property
    def requires_gpu(self) -> bool: ...
    @property
    def options_model(self) -> type[Options]: ...
    @property
    def calibrated(self) -> tuple[Precision, ...]: ...  # precisions that need the recipe's calibration images

    def refuse(self, precision: Precision, options: Options) -> str | None:
        """Why this precision cannot be built with these options, or None when it can."""
        ...

    def export_config(self, precision: Precision, options: Options) -> dict[str, Any]:
        """The in-cell entrypoint's `--export_config` for one cell (format-specific part)."""
        ...


def unsupported(precision: Precision, supported: tuple[Precision, ...], why: str) -> str | None:
    if precision in supported:
        return None
    names = ", ".join(p.value for p in supported)
    return f"precision {precision.value} is not available ({why}); this toolchain builds: {names}"
