"""What exportctl knows about one model task, as data: the `TaskSpec` every `tasks/<name>.py` defines.

Stdlib only at import (numpy, yolo_runtime and ultralytics inside functions): the host derives the recipe's
tolerance model and validation defaults from a spec; the cell decodes, measures and describes outputs with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
class MetadataFacts:
    """What metadata.json says about one artifact, beyond the task's own fields."""

    model_name: str
    export_format: str
    precision: str
    imgsz: int
    output_shapes: list[list[int]]
    names: Mapping[int, str]
    export_config: Mapping[str, Any]
    conf: float
    iou: float
    created_at: str


@dataclass(frozen=True, eq=False)  # one object per format/task: compared and hashed by identity
class TaskSpec:
    name: str  # Ultralytics' task name (YOLO(..., task=name)), and what checkpoints record
    default: bool  # the task of recipes that name none
    reference_outputs: int  # how many of the model's outputs the reference keeps (output0, output1, ...)
    thresholds: Thresholds
    tolerance_keys: tuple[ToleranceKey, ...]
    default_tolerances: Mapping[str, Mapping[str, float]]  # precision -> gated keys (others: reported only)
    preprocess: Callable[[Path, int], Any]  # image file, imgsz -> the model's input batch of one (NCHW float32)
    # (reference head, candidate head, thresholds) -> the task's metrics, e.g. matched boxes
    metrics: Callable[[Any, Any, Thresholds], dict[str, Any]]
    violations: Callable[[dict[str, Any] | None, Mapping[str, float | None]], list[str]]
    metadata: Callable[[MetadataFacts], dict[str, Any]]  # the export guide's metadata.json
    metrics_key: str  # the key of the task's metrics in validation.json
    # what Ultralytics' file-name guess looks for in an architecture yaml's name ("-seg"); "" for the default task
    arch_marker: str = ""
    # what validation.json's `gates` lists for this task's own gates: tolerance key -> the metric it bounds
    gate_metrics: Mapping[str, str] = field(default_factory=dict)

    def tolerance(self, precision: str) -> dict[str, float | None]:
        """Every tolerance key for `precision`, None where it is not gated by default."""
        gated = self.default_tolerances[precision]
        return {key.name: gated.get(key.name) for key in self.tolerance_keys}
