"""What exportctl knows about one export format, as data: the `FormatSpec` every `formats/<name>.py` defines.

Stdlib only at import: the host reads a spec to plan (precisions, options, toolchain, refusals), and the cell
reads the same spec to export, fix determinism, open the runtime and check structure. Heavy packages
(ultralytics, the format's framework) are imported inside the functions that a cell calls.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Precision(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"
    w8a16 = "w8a16"
    w8a32 = "w8a32"


@dataclass(frozen=True)
class ModelKind:
    """What the plan knows of the checkpoint's model before any model is built (plan/model_facts.py)."""

    task: str
    default_task: bool  # the task models are assumed to be of (detection), which some options are made for
    head: str  # the class of the model's last layer (read from the checkpoint, or a demo yaml's name)


@dataclass(frozen=True)
class ModelRefusal:
    """Values of an option that some models cannot be built with: Ultralytics would fail deep inside the cell (an
    assertion) or silently build something else, so the plan refuses them with the reason."""

    applies: Callable[[ModelKind], bool]  # whether the checkpoint's model is one of those
    refuses: Callable[[Any], bool]  # the option's value -> whether those models cannot be built with it
    reason: str
    hint: str = "remove the option"


# RT-DETR's deformable attention exports as GridSample, which ONNX has from opset 16 (Ultralytics asserts it).
RTDETR_OPSET = ModelRefusal(lambda m: m.head == "RTDETRDecoder", lambda v: int(v) < 16,
                            "RT-DETR's deformable attention exports as GridSample, which ONNX defines from opset 16 "
                            "on (Ultralytics refuses a lower opset)", "set opset to 16 or more (default 17)")


@dataclass(frozen=True)
class Option:
    """One per-format option: the host derives its pydantic field from this, the cell its default."""

    name: str
    type: type  # bool, int, float or str
    default: Any
    help: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    aliases: tuple[str, ...] = ()  # export-guide names users already pass (accepted by the cell contract)
    choices: tuple[Any, ...] = ()  # when set, the only values accepted (`help` says why the others are not)
    refusals: tuple[ModelRefusal, ...] = ()  # values some models (a task, a head) cannot be built with


@dataclass(frozen=True)
class ExportStep:
    """What the in-cell export of one artifact is given (paths are the cell's own)."""

    checkpoint: Path
    precision: str
    options: Mapping[str, Any]  # every option of the format, defaults filled in
    imgsz: int
    batch: int
    task: str  # the Ultralytics task the checkpoint is loaded as
    workdir: Path
    output_dir: Path
    calibration_dir: Path | None  # images static quantization calibrates on (only for calibrated precisions)
    conf: float  # thresholds an embedded NMS stage gets: the validation's, so it suppresses as validation does
    iou: float
    # the task's preprocessing (image file, imgsz -> NCHW float32 in [0, 1]): calibration images are fed the way
    # validation and users' inference feed the model; None: letterbox
    preprocess: Callable[[Path, int], Any] | None = None


@dataclass(frozen=True)
class StructureCheck:
    """One structural check of an artifact whose runtime cannot run here."""

    check: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": bool(self.ok), "detail": self.detail}


@dataclass(frozen=True)
class StructureExpectation:
    """What the task and the reference say an artifact must look like (input size, outputs, metadata)."""

    imgsz: int
    names: Mapping[int, str]
    output_shapes: list[list[int]]
    task: str
    precision: str


@dataclass(frozen=True)
class ArtifactFacts:
    """What an artifact's own structure says it takes and gives (metadata.json reports these, not guesses)."""

    output_shapes: list[list[int]]  # -1 where a dimension is flexible
    input_dtype: str  # numpy dtype name; "uint8" for image inputs
    applies_nms: bool  # an embedded NMS stage: outputs are already suppressed

    def to_json(self) -> dict[str, Any]:
        return {"output_shapes": self.output_shapes, "input_dtype": self.input_dtype, "applies_nms": self.applies_nms}


@dataclass(frozen=True, eq=False)  # one object per format/task: compared and hashed by identity
class FormatSpec:
    name: str  # the recipe key, the lock's name and images/<name>/
    artifact: str  # the file (or directory) name the cell writes into its output dir
    runtime: str  # what validates the artifact, shown to users
    precisions: Mapping[str, str | None]  # every precision -> None (built) or why it is refused
    backend: str  # yolo_runtime's backend name for validation
    export: Callable[[ExportStep], Path]  # the in-cell export: returns the artifact path
    options: tuple[Option, ...] = ()
    calibrated: tuple[str, ...] = ()  # precisions that need the recipe's calibration images
    reference_environment: bool = False  # its environment computes PyTorch references and demo checkpoints
    environment: Mapping[str, str] = field(default_factory=dict)  # variables cells need (set in every cell)
    gpu_purpose: str = ""  # set when its cells need an NVIDIA GPU: what for (the refusal where there is none)
    structure: Callable[[Path, StructureExpectation], list[StructureCheck]] | None = None  # runtime absent
    structure_runtime: str = ""  # what validation.json names as the runtime of structural checks
    describe: Callable[[Path], ArtifactFacts] | None = None  # read without the runtime (with `structure`)

    @property
    def toolchain(self) -> str:
        """The lockfile and image name of the environment this format's cells run in."""
        return self.name

    @property
    def requires_gpu(self) -> bool:
        return bool(self.gpu_purpose)

    @property
    def supported(self) -> tuple[str, ...]:
        return tuple(p for p, reason in self.precisions.items() if reason is None)

    def refuse(self, precision: str) -> str | None:
        """Why `precision` cannot be built, or None when it can (the host's own limits: plan/gpu.py)."""
        why = self.precisions.get(precision)
        if why is None:
            return None
        return f"precision {precision} is not available ({why}); this toolchain builds: {', '.join(self.supported)}"

    def model_refusal(self, model: ModelKind, options: Mapping[str, Any]) -> tuple[str, ModelRefusal] | None:
        """(option, why) for the first of the resolved `options` that `model` cannot be built with."""
        return next(((o.name, r) for o in self.options for r in o.refusals
                     if o.name in options and r.applies(model) and r.refuses(options[o.name])), None)

    def resolve_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every option's value: aliases renamed, defaults filled in; keys this format does not know dropped."""
        renamed = {alias: o.name for o in self.options for alias in o.aliases}
        values = {renamed.get(k, k): v for k, v in given.items()}
        return {o.name: values.get(o.name, o.default) for o in self.options}


def precisions(built: tuple[str, ...], refused: str) -> dict[str, str | None]:
    """Every precision: those `built` (in this order, as users read them) and the rest refused for `refused`."""
    table: dict[str, str | None] = {p: None for p in built}
    table.update({p.value: refused for p in Precision if p.value not in built})
    return table


def source_date() -> dt.datetime:
    """SOURCE_DATE_EPOCH (set in every cell): the one date an artifact may carry."""
    return dt.datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")), tz=dt.UTC)
