"""The cells a rendering fans out over: the recipe's matrix without this host's refusals.

`plan.make_plan` refuses GPU cells on a machine without a GPU, which is right for a build here and wrong for a
rendering that sends them to GPU runners elsewhere; format/precision refusals still apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from exportctl import formats
from exportctl.recipe.model import Recipe


@dataclass(frozen=True)
class RenderCell:
    name: str  # onnx/fp32
    slug: str  # onnx-fp32
    format: str
    precision: str
    gpu: bool
    toolchain: str


def render_cells(recipe: Recipe) -> list[RenderCell]:
    cells = []
    for fmt, spec in recipe.formats.items():
        fmt_spec = formats.get(fmt)
        if fmt_spec is None:
            raise recipe.error("formats", fmt, problem="unknown format", hint=formats.suggest(fmt))
        for precision in spec.precisions:
            reason = fmt_spec.refuse(precision.value)
            if reason is not None:
                raise recipe.error("formats", fmt, "precisions", problem=f"{fmt}: {reason}",
                                   hint="remove it from the recipe")
            cells.append(RenderCell(f"{fmt}/{precision.value}", f"{fmt}-{precision.value}", fmt, precision.value,
                                    fmt_spec.requires_gpu, fmt_spec.toolchain))
    return sorted(cells, key=lambda c: c.name)
