"""Plan: expand a recipe into cells (format x precision), refuse impossible ones, and key each cell.

A cell key is a digest over a canonical encoding of everything that determines the cell's bytes, so equal
keys mean "the same export would come out" and the action cache can answer instead of running it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exportctl import EXPORTER_VERSION, errors, toolchains
from exportctl.canonical import digest_file, digest_value
from exportctl.env.locks import lock_digest
from exportctl.paths import cell_code_digest
from exportctl.plan.calibration import CalibrationSet, select
from exportctl.recipe.model import Precision, Recipe
from exportctl.toolchains import REFERENCE_TOOLCHAIN, Options, Toolchain


@dataclass(frozen=True)
class Cell:
    toolchain: Toolchain
    precision: Precision
    options: Options
    key: str
    export_config: dict[str, Any] = field(hash=False)

    @property
    def name(self) -> str:
        return f"{self.toolchain.name}/{self.precision.value}"

    @property
    def slug(self) -> str:
        return f"{self.toolchain.name}-{self.precision.value}"


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    checkpoint_id: str  # file digest, or the key of the demo checkpoint action that makes it
    reference_key: str
    cells: tuple[Cell, ...]
    toolchains: tuple[str, ...]  # every toolchain whose environment the build needs, sorted
    calibration: CalibrationSet | None = None  # set when a cell of the recipe calibrates (int8, w8a16)
    warnings: tuple[str, ...] = ()

    def cell(self, name: str) -> Cell:
        return next(c for c in self.cells if c.name == name)


def checkpoint_identity(recipe: Recipe) -> str:
    ck = recipe.checkpoint
    if ck.demo is not None:
        return digest_value({
            "action": "demo-checkpoint", "demo": ck.demo.model_dump(mode="json"), "imgsz": recipe.input.imgsz,
            "lock": lock_digest(REFERENCE_TOOLCHAIN), "code": cell_code_digest(),
        })
    assert ck.path is not None
    path = recipe.resolve(ck.path)
    if not path.is_file():
        raise recipe.error("checkpoint", "path",
                           problem=f"checkpoint file {path} does not exist or is not a file",
                           hint="give the path of a .pt checkpoint, relative to the recipe file")
    if path.suffix != ".pt":
        raise recipe.error("checkpoint", "path", problem=f"{path.name} is not a .pt checkpoint",
                           hint="export guide: checkpoints are Ultralytics .pt files")
    digest = digest_file(path)
    pinned = ck.pinned_digest
    if pinned is not None and pinned != digest:
        raise recipe.error("checkpoint", "sha256",
                           problem=f"{path.name} has digest {digest}, the recipe pins {pinned}",
                           hint="use the checkpoint the recipe pins, or update the pin if the change is intended")
    return digest


def validation_inputs(recipe: Recipe) -> list[Path]:
    images = [recipe.resolve(p) for p in recipe.validation.images]
    for i, image in enumerate(images):
        if not image.is_file():
            raise recipe.error("validation", "images", str(i), problem=f"image {image} does not exist",
                               hint="list image files relative to the recipe, or leave 'images' out "
                                    "to use the toolchain's sample images")
    return images


def make_plan(recipe: Recipe, only: tuple[str, ...] = ()) -> Plan:
    """All cells of `recipe`, or those `only` names ("onnx" or "onnx/fp32"): refused ones raise here."""
    checkpoint_id = checkpoint_identity(recipe)
    images = validation_inputs(recipe)
    reference_key = digest_value({
        "action": "reference", "checkpoint": checkpoint_id, "input": recipe.input.model_dump(mode="json"),
        "images": [digest_file(p) for p in images], "lock": lock_digest(REFERENCE_TOOLCHAIN),
        "code": cell_code_digest(),
    })
    cells = []
    calibration: CalibrationSet | None = None
    for fmt, spec in recipe.formats.items():
        if fmt not in toolchains.REGISTRY:
            raise recipe.error("formats", fmt, problem="unknown format", hint=toolchains.suggest(fmt))
        toolchain = toolchains.REGISTRY[fmt]
        try:
            options = toolchain.options_model.model_validate(spec.options)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ("formats", fmt, "options", *(str(p) for p in first["loc"]))
            raise recipe.error(*path, problem=f"{first['msg']} (got {first.get('input')!r})",
                               hint=f"options for {fmt}: {', '.join(toolchain.options_model.model_fields)}") from exc
        for precision in spec.precisions:
            reason = toolchain.refuse(precision, options)
            if reason is not None:
                raise recipe.error("formats", fmt, "precisions", problem=f"{fmt}: {reason}",
                                   hint="remove it from the recipe")
            if precision in toolchain.calibrated and calibration is None:
                if recipe.calibration is None:
                    raise recipe.error(
                        "formats", fmt, "precisions",
                        problem=f"{fmt}/{precision.value} is statically quantized and needs calibration images",
                        hint="add `calibration: {images: DIR or data.yaml, count: N}` to the recipe "
                             "(exportctl never downloads a default dataset)")
                calibration = select(recipe)
            calibrate = calibration if precision in toolchain.calibrated else None
            cells.append(_cell(recipe, toolchain, precision, options, checkpoint_id, reference_key, calibrate))
    if only:
        cells = _select(cells, only)
    needed = sorted({c.toolchain.name for c in cells} | {REFERENCE_TOOLCHAIN})
    warnings = calibration.warnings if calibration and any("calibration" in c.export_config for c in cells) else ()
    return Plan(recipe, checkpoint_id, reference_key, tuple(cells), tuple(needed), calibration, warnings)


def _cell(recipe: Recipe, toolchain: Toolchain, precision: Precision, options: Options,
          checkpoint_id: str, reference_key: str, calibration: CalibrationSet | None) -> Cell:
    v = recipe.validation
    export_config = {
        "format": toolchain.name,
        "precision": precision.value,
        "options": toolchain.export_config(precision, options),
        "imgsz": recipe.input.imgsz,
        "batch": recipe.input.batch,
        "source_date_epoch": recipe.source_date_epoch,
        "validation": {
            "conf": v.conf, "iou": v.iou, "match_iou": v.match_iou,
            "tolerance": v.tolerance_for(precision).model_dump(mode="json"),
        },
    }
    if calibration is not None:  # the images' digests: other images, other key
        export_config["calibration"] = calibration.config()
    key = digest_value({
        "action": "cell", "exporter": EXPORTER_VERSION, "code": cell_code_digest(),
        "checkpoint": checkpoint_id, "reference": reference_key,
        "lock": lock_digest(toolchain.name), "config": export_config,
    })
    return Cell(toolchain, precision, options, key, export_config)



def _select(cells: list[Cell], only: tuple[str, ...]) -> list[Cell]:
    chosen = []
    for wanted in only:
        matches = [c for c in cells if wanted in (c.name, c.toolchain.name)]
        if not matches:
            names = ", ".join(c.name for c in cells)
            raise errors.ConfigError(f"--only {wanted}: the recipe has no such cell", hint=f"its cells: {names}")
        chosen += [c for c in matches if c not in chosen]
    return [c for c in cells if c in chosen]  # keep the recipe's order: bundles must not depend on flags order
