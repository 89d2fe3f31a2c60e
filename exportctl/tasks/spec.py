"""What exportctl knows about one model task, as data: the `TaskSpec` every `tasks/<name>.py` defines.

Stdlib only at import (numpy, yolo_runtime and ultralytics inside functions): the host derives the recipe's
tolerance model and validation defaults from a spec; the cell decodes, measures and describes outputs with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ToleranceKey:
    """One gate of the task's tolerance model; the recipe's pydantic field is derived from it."""

    name: str
    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None


@dataclass(frozen=True)
class Thresholds:
    """Decode and match thresholds: the validation's defaults, the embedded NMS stage's and metadata.json's."""

    conf: float
    iou: float
    match_iou: float


@dataclass(frozen=True)
class Gate:
    """One bound a cell owns (its tolerance is set): it ran when its metric could be measured."""

    name: str  # what is bounded, as users read it ("recall", "output0.scores cosine")
    value: float | None  # None: the gate could not run (nothing to measure)
    limit: float
    upper: bool  # True: value <= limit; False: value >= limit
    why: str = ""  # why it could not run, when it could not

    @property
    def ran(self) -> bool:
        return self.value is not None

    @property
    def ok(self) -> bool:
        return self.value is not None and (self.value <= self.limit if self.upper else self.value >= self.limit)

    def violation(self) -> str:
        return f"{self.name} {self.value:.6g} {'>' if self.upper else '<'} {self.limit:g}"

    def to_json(self) -> dict[str, Any]:
        data = {"gate": self.name, "value": self.value, "limit": self.limit, "bound": "max" if self.upper else "min",
                "ran": self.ran, "ok": self.ok}
        return {**data, "why": self.why} if self.why else data


@dataclass(frozen=True)
class TensorGroup:
    """Rows (or columns) of a raw output that mean one thing, gated on their own: box coordinates in pixels
    would otherwise drown class scores in one max_abs/cosine."""

    name: str  # "boxes", "scores", ...
    axis: int
    start: int
    stop: int | None
    max_abs_key: str  # the tolerance key bounding its largest absolute error
    # the key bounding its cosine: rows whose background anchors carry arbitrary values (mask coefficients,
    # keypoints, angles) get their own, so quantization noise there does not have to pass as score noise
    cosine_key: str = "cosine_min"


@dataclass(frozen=True)
class MetadataFacts:
    """What metadata.json says about one artifact, beyond the task's own fields."""

    model_name: str
    export_format: str
    precision: str
    imgsz: int
    output_shapes: list[list[int]]  # measured from the artifact (its runtime, or its structure)
    input_dtype: str  # measured from the artifact
    applies_nms: bool  # the artifact suppresses itself (an embedded NMS stage): consumers do not
    names: Mapping[int, str]
    export_config: Mapping[str, Any]
    conf: float
    iou: float
    created_at: str
    # the reference's description of the model (reference.json: names, imgsz, head, kpt_shape, ...); {} without one
    model: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelledImage:
    """One image of a labelled set and its label file's rows (class id, then the task's normalized coordinates)."""

    image: Path
    labels: tuple[tuple[float, ...], ...]  # one row per object (none: no object)


# The model as the accuracy hook sees it: the model's input batch (NCHW float32) -> its raw outputs.
RunModel = Callable[[Any], list[Any]]


@dataclass(frozen=True)
class Accuracy:
    """The task's standard metric on a labelled set (`validation.dataset`): measured the same way, through the same
    decoder, by the PyTorch reference and by each artifact in its own runtime; cells gate on the drop."""

    metrics: tuple[str, ...]  # what `measure` returns, e.g. ("map50_95", "map50")
    default_max_drop: Mapping[str, Mapping[str, float]]  # precision -> metric -> largest drop (absolute)
    # (run the model, the labelled images, imgsz, class names) -> metric -> value
    measure: Callable[[RunModel, Sequence[LabelledImage], int, Mapping[int, str]], dict[str, float]]

    def max_drop(self, precision: str) -> dict[str, float | None]:
        """Every metric's default bound for `precision` (None: reported, not gated)."""
        defaults = self.default_max_drop.get(precision, {})
        return {metric: defaults.get(metric) for metric in self.metrics}


@dataclass(frozen=True, eq=False)  # one object per format/task: compared and hashed by identity
class TaskSpec:
    name: str  # Ultralytics' task name (YOLO(..., task=name)), and what checkpoints record
    default: bool  # the task of recipes that name none
    reference_outputs: int  # how many of the model's outputs the reference keeps (output0, output1, ...)
    thresholds: Thresholds
    tolerance_keys: tuple[ToleranceKey, ...]
    default_tolerances: Mapping[str, Mapping[str, float]]  # precision -> gated keys (others: reported only)
    preprocess: Callable[[Path, int], Any]  # image file, imgsz -> the model's input batch of one (NCHW float32)
    # (reference outputs, candidate outputs (by output name), thresholds, the reference's description of the model
    # (reference.json: names, imgsz, kpt_shape, ...)) -> the task's metrics, e.g. matched boxes
    metrics: Callable[[Mapping[str, Any], Mapping[str, Any], Thresholds, Mapping[str, Any]], dict[str, Any]]
    gates: Callable[[dict[str, Any] | None, Mapping[str, float | None]], list[Gate]]  # the task's own gates
    # (output name, shape, the reference's description of the model) -> its groups of rows that mean one thing
    # (how many rows are class scores needs the class count); the raw-tensor gates are per group
    tensor_groups: Callable[[str, list[int], Mapping[str, Any]], list[TensorGroup]]
    metadata: Callable[[MetadataFacts], dict[str, Any]]  # the export guide's metadata.json
    metrics_key: str  # the key of the task's metrics in validation.json
    # what Ultralytics' file-name guess looks for in an architecture yaml's name ("-seg"); "" for the default task
    arch_marker: str = ""
    # Optional hooks. accuracy: the standard metric on a labelled set (without it, `validation.dataset` is refused).
    # decode: (raw outputs, thresholds) -> what a deployment gets, i.e. the postprocessing latency profiles time.
    accuracy: Accuracy | None = None
    decode: Callable[[list[Any], Thresholds], Any] | None = None

    def tolerance(self, precision: str) -> dict[str, float | None]:
        """Every tolerance key for `precision`, None where it is not gated by default."""
        gated = self.default_tolerances[precision]
        return {key.name: gated.get(key.name) for key in self.tolerance_keys}
