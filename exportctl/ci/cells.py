"""What every rendering shares: the cells it fans out over (the recipe's matrix without this host's refusals),
the script that merges their parts, and the YAML writer.

`plan.make_plan` refuses GPU cells on a machine without a GPU, which is right for a build here and wrong for a
rendering that sends them to GPU runners elsewhere; format/precision refusals still apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

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


def merge_script(cells: list[RenderCell], part_ref: Callable[[RenderCell], str], json_bundle: str) -> str:
    """The shell lines that pull every cell's part and merge them (one part is the bundle itself), leaving the
    bundle's digest in $digest. `json_bundle` reads `.bundle` from JSON on stdin (jq, or python where no jq)."""
    pull = "".join(f'parts+=("$(exportctl pull "{part_ref(c)}")")\n' for c in cells)
    combine = (f'digest="$(exportctl merge "${{parts[@]}}" --json | {json_bundle})"\n' if len(cells) > 1
               else 'digest="${parts[0]}"\n')
    return f"parts=()\n{pull}{combine}"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the run scripts) as YAML literal blocks, so a rendering reads like one written by hand."""


_Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v
                                                              else None))


def dump_yaml(documents: list[Any]) -> str:
    """Plain data as YAML: key order as built, no timestamps, `---` between documents (golden-testable)."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)
