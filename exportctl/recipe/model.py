"""The recipe: one checkpoint x formats x precisions, as a frozen pydantic model.

Loading keeps the YAML node positions so every error names the field *and* the line it came from.
Per-format options are validated by models derived from each format's spec (see `plan/options.py`), and the
tolerance model and validation defaults come from the task's spec (`tasks/`), so adding a format or a task
never touches this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from exportctl import errors, tasks
from exportctl.formats.spec import Precision

DEFAULT_SOURCE_DATE_EPOCH = 315532800  # 1980-01-01: the earliest time a zip entry can carry
MAX_SOURCE_DATE_EPOCH = 4102444799  # 2099-12-31: zip dates end in 2107, and 32-bit tools in 2106
# Ultralytics' architectures (scale letter optional; the task suffixes where Ultralytics ships them): checked at
# plan time, because an unknown one would otherwise fail only inside the cell, as an export failure rather than a
# configuration error.
DEMO_ARCHITECTURES = (r"^(yolov3(-tiny|-spp)?|yolov5[nsmlx]?u?(-p6)?|yolov6[nsmlx]?|yolov8[nsmlx]?(-p2|-p6|-ghost)?"
                      r"|yolov9[tsmce]|yolov10[nsmblx]|yolo11[nsmlx]?|yolo12[nsmlx]?|yolo26[nsmlx]?"
                      r"|(yolov8|yolo11|yolo12|yolo26)[nsmlx]?-(cls|seg|pose|obb)|rtdetr-(l|x|resnet50|resnet101))\.yaml$")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DemoCheckpoint(Strict):
    """A deterministic checkpoint made from an Ultralytics architecture yaml (no weights can be downloaded)."""

    arch: str = Field("yolo11n.yaml", pattern=r"^[A-Za-z0-9_.-]{1,64}\.yaml$")  # which ones: checked by `plan`
    seed: int = Field(0, ge=0, le=2**32 - 1)  # numpy's seed range: a larger one fails only inside the cell


class Checkpoint(Strict):
    path: Path | None = None
    sha256: str | None = Field(None, pattern=r"^(sha256:)?[0-9a-f]{64}$")
    demo: DemoCheckpoint | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Checkpoint:
        if (self.path is None) == (self.demo is None):
            raise ValueError("give exactly one of 'path' (a .pt file) or 'demo' (an architecture yaml + seed)")
        if self.demo is not None and self.sha256 is not None:
            raise ValueError("'sha256' pins a checkpoint file; a demo checkpoint is pinned by arch + seed")
        return self

    @property
    def pinned_digest(self) -> str | None:
        if self.sha256 is None:
            return None
        return self.sha256 if self.sha256.startswith("sha256:") else f"sha256:{self.sha256}"


class InputSpec(Strict):
    imgsz: int = Field(640, ge=32, le=4096, multiple_of=32)
    batch: int = Field(1, ge=1, le=64)


class FormatEntry(Strict):
    """One `formats.<name>` entry: the precisions to build and the format's options (checked in `plan`)."""

    precisions: tuple[Precision, ...] = (Precision.fp32,)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("precisions")
    @classmethod
    def _unique(cls, v: tuple[Precision, ...]) -> tuple[Precision, ...]:
        if len(set(v)) != len(v) or not v:
            raise ValueError("list each precision once, at least one")
        return v


TASK = tasks.default_task()  # recipes name no task: thresholds default to the default task's
# Every task's tolerance keys (a key two tasks share bounds the same quantity); which apply is the checkpoint's task,
# known only at plan time, where a key of another task is refused.
TOLERANCE_KEYS = {k.name: k for spec in (TASK, *tasks.registry().values()) for k in spec.tolerance_keys}
_ToleranceFields: type[BaseModel] = create_model(
    "Tolerance", __base__=Strict,
    **{k.name: (float | None, Field(None, ge=k.ge, gt=k.gt, le=k.le)) for k in TOLERANCE_KEYS.values()},  # type: ignore[call-overload]
)


class Tolerance(_ToleranceFields):
    """Bounds a cell must meet; None leaves that metric reported but ungated."""


def default_tolerance(task: tasks.TaskSpec, precision: Precision) -> Tolerance:
    return Tolerance(**task.default_tolerances[precision.value])


DEFAULT_TOLERANCES: dict[Precision, Tolerance] = {p: default_tolerance(TASK, p) for p in Precision}


class Dataset(Strict):
    """A labelled set every cell measures the task's accuracy on (`dataset: data.yaml` is `dataset: {data: ...}`)."""

    data: Path  # an Ultralytics data yaml (its 'val' split and 'names'), relative to the recipe
    count: int | None = Field(None, ge=1)  # the first `count` images in path order; default: all


def _path_alone(value: Any) -> Any:
    return {"data": value} if isinstance(value, (str, Path)) else value


def _dataset_schema(schema: dict[str, Any]) -> None:
    """The schema says what the validator accepts: a data yaml's path alone, or {data, count}."""
    field = schema["properties"]["dataset"]
    field["anyOf"] = [{"type": "string", "format": "path"}, *field["anyOf"]]


class Validation(Strict):
    model_config = ConfigDict(json_schema_extra=_dataset_schema)

    images: tuple[Path, ...] = ()
    conf: float = Field(TASK.thresholds.conf, gt=0, lt=1)
    iou: float = Field(TASK.thresholds.iou, gt=0, lt=1)
    match_iou: float = Field(TASK.thresholds.match_iou, gt=0, lt=1)
    tolerances: dict[Precision, Tolerance] = Field(default_factory=dict)
    dataset: Annotated[Dataset | None, BeforeValidator(_path_alone)] = None
    # precision -> accuracy metric -> largest drop from the reference (None: reported, not gated); unset ones take
    # the task's defaults. Metric names are the task's (checked at plan time, when the checkpoint's task is known).
    max_drop: dict[Precision, dict[str, Annotated[float, Field(ge=0)] | None]] = Field(default_factory=dict)

    def tolerance_for(self, precision: Precision, task: tasks.TaskSpec = TASK) -> dict[str, float | None]:
        """The task's tolerance keys for `precision`: the recipe's, else the task's defaults."""
        given = self.tolerances.get(precision) or default_tolerance(task, precision)
        values = given.model_dump(mode="json")
        return {k.name: values[k.name] for k in task.tolerance_keys}


class Calibration(Strict):
    """Images static quantization (int8, w8a16) calibrates on; never downloaded, always named here."""

    images: Path  # a directory of images, or an Ultralytics data yaml (its 'val' split), relative to the recipe
    count: int | None = Field(None, ge=1)  # the first `count` images in path order; default: all


class Recipe(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    checkpoint: Checkpoint
    input: InputSpec = InputSpec()
    formats: dict[str, FormatEntry] = Field(min_length=1)
    validation: Validation = Validation()
    calibration: Calibration | None = None
    source_date_epoch: int = Field(DEFAULT_SOURCE_DATE_EPOCH, ge=DEFAULT_SOURCE_DATE_EPOCH, le=MAX_SOURCE_DATE_EPOCH)
    # Where the recipe came from: not part of what it means, so excluded from dumps and digests.
    base_dir: SkipJsonSchema[Path] = Field(Path("."), exclude=True)
    source: SkipJsonSchema[str] = Field("<recipe>", exclude=True)
    positions: SkipJsonSchema[dict[tuple[str, ...], int]] = Field(default_factory=dict, exclude=True)

    def canonical(self) -> dict[str, Any]:
        """The recipe as hashed and bundled: host paths replaced by what they stand for (digests, names)."""
        data = self.model_dump(mode="json")
        if self.checkpoint.path is not None:
            data["checkpoint"]["path"] = self.checkpoint.path.name
        data["validation"]["images"] = [p.name for p in self.validation.images]
        if self.validation.dataset is not None:  # with its directory: 'data.yaml' alone names no set
            path = self.validation.dataset.data
            data["validation"]["dataset"]["data"] = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
        if self.calibration is not None:
            data["calibration"]["images"] = self.calibration.images.name
        return data

    def where(self, *path: str) -> str:
        """`file:line` of the deepest known key on `path`, for error messages."""
        line = nearest_line(self.positions, path)
        return f"{self.source}:{line}" if line else self.source

    def error(self, *path: str, problem: str, hint: str | None = None) -> errors.RecipeError:
        return errors.RecipeError(".".join(path), problem, location=self.where(*path), hint=hint)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)


def nearest_line(lines: dict[tuple[str, ...], int], loc: tuple[Any, ...]) -> int | None:
    parts = tuple(str(p) for p in loc)
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return None
