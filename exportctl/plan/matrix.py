"""Plan: expand a recipe into cells (format x precision), refuse impossible ones, and key each cell.

Every action (demo checkpoint, reference, cell) gets its typed request here, and its key: a digest over a
canonical encoding of everything that determines its bytes (the request among them), so equal keys mean
"the same export would come out" and the action cache can answer instead of running it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exportctl import EXPORTER_VERSION, errors, formats, tasks
from exportctl.canonical import digest_file, digest_value
from exportctl.cell.protocol import CellRequest, Demo, Kind, Validation
from exportctl.env.locks import lock_digest
from exportctl.formats.spec import FormatSpec, ModelKind, Precision
from exportctl.paths import cell_code_digest
from exportctl.plan.calibration import CalibrationSet, select
from exportctl.plan.dataset import LabelledSet, select_dataset
from exportctl.plan.gpu import host_refusal
from exportctl.plan.model_facts import ModelFacts, NotAYoloCheckpoint, demo_facts, read_checkpoint
from exportctl.plan.options import validate_options
from exportctl.recipe.model import DEMO_ARCHITECTURES, Recipe
from exportctl.tasks.spec import TaskSpec

# Input names inside a cell's input directory (the runner decides where that directory is).
CHECKPOINT_INPUT = "checkpoint.pt"
REFERENCE_INPUT = "reference"
CALIBRATION_INPUT = "calibration"
DATASET_INPUT = "dataset"


@dataclass(frozen=True)
class Cell:
    format: FormatSpec
    precision: Precision
    key: str
    request: CellRequest = field(hash=False)

    @property
    def name(self) -> str:
        return f"{self.format.name}/{self.precision.value}"

    @property
    def slug(self) -> str:
        return f"{self.format.name}-{self.precision.value}"

    @property
    def calibrates(self) -> bool:
        return self.request.calibration is not None


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    task: str  # the checkpoint's Ultralytics task (every request's, and YOLO(..., task=task)'s)
    checkpoint_id: str  # file digest, or the key of the demo checkpoint action that makes it
    reference_key: str
    cells: tuple[Cell, ...]
    toolchains: tuple[str, ...]  # every toolchain whose environment the build needs, sorted
    reference: CellRequest  # the PyTorch reference outputs' request (inputs: checkpoint, `images`)
    images: dict[str, Path]  # validation image input names -> host files
    demo: CellRequest | None = None  # the demo checkpoint's request, when the recipe asks for one
    calibration: CalibrationSet | None = None  # set when a cell of the recipe calibrates (int8, w8a16)
    warnings: tuple[str, ...] = ()
    dataset: LabelledSet | None = None  # validation.dataset: the reference and every cell measure accuracy on it

    @property
    def reference_toolchain(self) -> str:
        return formats.reference_format().toolchain


def model_facts(recipe: Recipe) -> ModelFacts:
    """The checkpoint's task and head, read from the checkpoint (a demo's from its architecture's name); refusals
    raise."""
    ck, default = recipe.checkpoint, tasks.default_task().name
    if ck.demo is not None:
        markers = {spec.arch_marker: name for name, spec in tasks.registry().items() if spec.arch_marker}
        facts = demo_facts(ck.demo.arch, markers, default)
        field_path: tuple[str, ...] = ("checkpoint", "demo", "arch")
    else:
        assert ck.path is not None
        field_path = ("checkpoint", "path")
        try:
            facts = read_checkpoint(recipe.resolve(ck.path), default)
        except NotAYoloCheckpoint as exc:
            raise recipe.error(*field_path, problem=f"{ck.path.name} is not an Ultralytics YOLO checkpoint: {exc}",
                               hint="give a .pt file that Ultralytics' YOLO() loads (e.g. a training run's "
                                    "best.pt)") from None
    _refuse(recipe, field_path, facts)
    if ck.demo is not None and not re.fullmatch(DEMO_ARCHITECTURES, ck.demo.arch):
        raise recipe.error(*field_path, problem=f"{ck.demo.arch} is not an Ultralytics architecture exportctl "
                                                "makes demo checkpoints from",
                           hint="name one of Ultralytics' cfg/models yamls, e.g. yolo11n.yaml, yolov8n.yaml, "
                                "yolo26n.yaml, yolo11n-seg.yaml (task suffixes -cls, -seg, -pose, -obb on the "
                                "yolov8, yolo11, yolo12 and yolo26 families; rtdetr-{l,x,resnet50,resnet101})")
    return facts


def _refuse(recipe: Recipe, field_path: tuple[str, ...], facts: ModelFacts) -> None:
    if facts.refused is not None:
        what = f"task '{facts.task}'" + (f", head {facts.head}" if facts.head else "")
        raise recipe.error(*field_path, problem=f"the checkpoint's {what} is not supported: {facts.refused}",
                           hint="exportctl builds the tasks: " + ", ".join(tasks.registry()))
    if tasks.get(facts.task) is None:
        raise recipe.error(*field_path, problem=f"the checkpoint's task '{facts.task}' is not supported: exportctl "
                                                f"has no validation for it", hint="exportctl builds the tasks: "
                                                + ", ".join(tasks.registry()))


def demo_request(recipe: Recipe, task: str) -> CellRequest | None:
    demo = recipe.checkpoint.demo
    if demo is None:
        return None
    return CellRequest(Kind.demo, task, imgsz=recipe.input.imgsz,
                       source_date_epoch=recipe.source_date_epoch, demo=Demo(demo.arch, demo.seed))


def checkpoint_identity(recipe: Recipe, task: str) -> str:
    ck = recipe.checkpoint
    demo = demo_request(recipe, task)
    if demo is not None:
        return digest_value({"action": "demo-checkpoint", "request": demo.to_json(),
                             "lock": lock_digest(formats.reference_format().toolchain), "code": cell_code_digest()})
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
    if recipe.input.batch != 1:
        raise recipe.error("input", "batch", problem=f"batch {recipe.input.batch}: validation feeds the reference "
                                                     "and every runtime one image at a time, so a batched export "
                                                     "would be stored unvalidated",
                           hint="export with batch 1 (the default); batched validation is not built yet")
    if recipe.checkpoint.demo is not None:
        facts = model_facts(recipe)
        task = tasks.registry()[facts.task]
        checkpoint_id = checkpoint_identity(recipe, task.name)
    else:  # the file (and its pin) is checked before it is read
        checkpoint_id = checkpoint_identity(recipe, "")
        facts = model_facts(recipe)
        task = tasks.registry()[facts.task]
    _check_tolerance_keys(recipe, task)
    images = {f"images/{i}-{p.name}": p for i, p in enumerate(validation_inputs(recipe))}
    dataset = labelled_set(recipe, task)
    reference = CellRequest(Kind.reference, task.name, imgsz=recipe.input.imgsz, batch=recipe.input.batch,
                            source_date_epoch=recipe.source_date_epoch, checkpoint=CHECKPOINT_INPUT,
                            dataset=dataset.request(DATASET_INPUT) if dataset else None, images=tuple(images))
    reference_key = digest_value({
        "action": "reference", "checkpoint": checkpoint_id, "request": reference.to_json(),
        "images": [digest_file(p) for p in images.values()],
        "lock": lock_digest(formats.reference_format().toolchain), "code": cell_code_digest(),
    })
    cells = []
    calibration: CalibrationSet | None = None
    for fmt, spec in recipe.formats.items():
        fmt_spec = formats.get(fmt)
        if fmt_spec is None:
            raise recipe.error("formats", fmt, problem="unknown format", hint=formats.suggest(fmt))
        options = validate_options(recipe, fmt_spec, spec.options)
        _refuse_options(recipe, task, facts.head, fmt_spec, options)
        for precision in spec.precisions:
            reason = host_refusal(fmt_spec) or fmt_spec.refuse(precision.value)
            if reason is not None:
                raise recipe.error("formats", fmt, "precisions", problem=f"{fmt}: {reason}",
                                   hint="remove it from the recipe")
            if precision in fmt_spec.calibrated and calibration is None:
                if recipe.calibration is None:
                    raise recipe.error(
                        "formats", fmt, "precisions",
                        problem=f"{fmt}/{precision.value} is statically quantized and needs calibration images",
                        hint="add `calibration: {images: DIR or data.yaml, count: N}` to the recipe "
                             "(exportctl never downloads a default dataset)")
                calibration = select(recipe)
            calibrate = calibration if precision in fmt_spec.calibrated else None
            cells.append(_cell(recipe, task, fmt_spec, precision, options, checkpoint_id, reference_key,
                               calibrate, dataset))
    if only:
        cells = _select(cells, only)
    needed = sorted({c.format.toolchain for c in cells} | {formats.reference_format().toolchain})
    warnings = calibration.warnings if calibration and any(c.calibrates for c in cells) else ()
    return Plan(recipe, task.name, checkpoint_id, reference_key, tuple(cells), tuple(needed), reference, images,
                demo_request(recipe, task.name), calibration, warnings, dataset)


def _refuse_options(recipe: Recipe, task: TaskSpec, head: str, spec: FormatSpec, options: dict[str, Any]) -> None:
    """Options the checkpoint's model (its task, its head) cannot be built with (`Option.refusals`)."""
    found = spec.model_refusal(ModelKind(task.name, task.default, head), options)
    if found is not None:
        name, refusal = found
        model = f"a {task.name} model" + (f" with head {head}" if head else "")
        raise recipe.error("formats", spec.name, "options", name,
                           problem=f"{spec.name} option {name}={options[name]!r} cannot be built for the "
                                   f"checkpoint, {model}: {refusal.reason}", hint=refusal.hint)


def _check_tolerance_keys(recipe: Recipe, task: TaskSpec) -> None:
    """A tolerance the recipe sets must be one of the checkpoint's task (the recipe model accepts every task's)."""
    own = [k.name for k in task.tolerance_keys]
    for precision, tolerance in recipe.validation.tolerances.items():
        foreign = sorted(set(tolerance.model_fields_set) - set(own))
        if foreign:
            raise recipe.error("validation", "tolerances", precision.value, foreign[0],
                               problem=f"'{foreign[0]}' is not a tolerance of the checkpoint's task ({task.name})",
                               hint=f"the {task.name} task's tolerances: {', '.join(own)}")


def labelled_set(recipe: Recipe, task: TaskSpec) -> LabelledSet | None:
    """The recipe's labelled set, if the checkpoint's task can measure accuracy on one; `max_drop` checked too."""
    v = recipe.validation
    if v.dataset is None:
        if v.max_drop:
            raise recipe.error("validation", "max_drop", problem="bounds the accuracy drop on a labelled set, but "
                                                                 "validation.dataset names none",
                               hint="add `dataset: path/to/data.yaml` under validation, or remove max_drop")
        return None
    if task.accuracy is None:
        raise recipe.error("validation", "dataset", problem=f"the checkpoint's task '{task.name}' has no accuracy "
                                                            "metric on a labelled set in exportctl yet",
                           hint="remove validation.dataset (the artifacts are still validated against the "
                                "PyTorch reference)")
    for precision, bounds in v.max_drop.items():
        for metric in bounds:
            if metric not in task.accuracy.metrics:
                close = difflib.get_close_matches(metric, task.accuracy.metrics, n=1)
                raise recipe.error("validation", "max_drop", precision.value, metric,
                                   problem=f"unknown metric for task '{task.name}'",
                                   hint=f"did you mean '{close[0]}'?" if close else
                                   f"its metrics: {', '.join(task.accuracy.metrics)}")
    return select_dataset(recipe)


def _cell(recipe: Recipe, task: TaskSpec, spec: FormatSpec, precision: Precision, options: dict[str, Any],
          checkpoint_id: str, reference_key: str, calibration: CalibrationSet | None,
          dataset: LabelledSet | None) -> Cell:
    v = recipe.validation
    max_drop = None
    if dataset is not None and task.accuracy is not None:
        max_drop = {**task.accuracy.max_drop(precision.value), **v.max_drop.get(precision, {})}
    request = CellRequest(
        Kind.export, task.name, spec.name, precision.value, options, recipe.input.imgsz,
        recipe.input.batch, source_date_epoch=recipe.source_date_epoch, checkpoint=CHECKPOINT_INPUT,
        validation=Validation(REFERENCE_INPUT, v.conf, v.iou, v.match_iou, v.tolerance_for(precision, task),
                              max_drop),
        # the images' digests: other images, other key
        calibration=calibration.request(CALIBRATION_INPUT) if calibration is not None else None,
        dataset=dataset.request(DATASET_INPUT) if dataset is not None else None,
    )
    key = digest_value({
        "action": "cell", "exporter": EXPORTER_VERSION, "code": cell_code_digest(),
        "checkpoint": checkpoint_id, "reference": reference_key,
        "lock": lock_digest(spec.toolchain), "request": request.to_json(),
    })
    return Cell(spec, precision, key, request)


def _select(cells: list[Cell], only: tuple[str, ...]) -> list[Cell]:
    chosen = []
    for wanted in only:
        matches = [c for c in cells if wanted in (c.name, c.format.name)]
        if not matches:
            names = ", ".join(c.name for c in cells)
            raise errors.ConfigError(f"--only {wanted}: the recipe has no such cell", hint=f"its cells: {names}")
        chosen += [c for c in matches if c not in chosen]
    return [c for c in cells if c in chosen]  # keep the recipe's order: bundles must not depend on flags order
