"""Every task beyond detection, end to end on its trained test model: recipes/tasks-<task>.yaml builds every CPU
format x precision; every cell is validated in its own runtime with the task's metrics (CoreML off macOS:
structure only, never passed); a too-tight task tolerance fails with exit 2 naming the task's metric; two clean
builds give one digest; the committed model regenerates byte for byte.

One full build per task, a few minutes each on two cores; the models' regenerations run in the background from
the start of the session (tests/regenerations.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.env.uvenv import ensure_env
from tests.conftest import NO_PROFILE, ROOT, build_json, exportctl
from tests.fixtures import regenerated
from tests.fixtures.shapes import write_scenes, write_task_scenes
from tests.regenerations import Regenerations

pytestmark = pytest.mark.slow

FIXTURES = ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class Expected:
    key: str  # validation.json's key of the task's metrics
    metric: str  # a metric every validated cell measures
    formats: dict[str, tuple[str, ...]]  # what the task's recipe builds
    tolerance: str  # a task tolerance that `tight_cell` cannot meet when set to `tight`
    tight: float
    gate: str  # the gate that then fails
    reduced: str  # the `formats:` of the two clean builds: one float and one quantized cell
    blank_gate: str  # the gate OpenVINO int8 calibrated on blank images fails
    tight_cell: tuple[str, str] = ("onnx", "fp32")


ALL = {"onnx": ("fp32", "fp16"), "torchscript": ("fp32",), "openvino": ("fp32", "fp16", "int8"),
       "litert": ("fp32", "w8a32", "int8", "w8a16"), "coreml": ("fp32", "fp16", "int8")}
QUANTIZED = "  onnx:\n    precisions: [fp32]\n  openvino:\n    precisions: [int8]\n"
TASKS = {
    "classify": Expected("classification", "top1_agreement", ALL, "prob_delta_max", 1e-12, "max_prob_delta",
                         QUANTIZED, "top1_agreement"),
    # fp32 masks are exact (IoU 1.0): fp16's are not
    "segment": Expected("segmentation", "mask_mean_iou", ALL, "mask_worst_iou_min", 1.0, "mask worst_iou", QUANTIZED,
                        "recall", tight_cell=("onnx", "fp16")),
    "pose": Expected("pose", "oks_mean", ALL, "keypoint_error_max", 1e-9, "keypoint_error_max", QUANTIZED,
                     blank_gate="recall"),
    "obb": Expected("obb", "angle_error_max", ALL, "angle_error_max", 1e-12, "angle_error_max", QUANTIZED,
                    blank_gate="recall"),
}


def recipe_for(task: str, directory: Path, scenes: Path, text: str | None = None) -> Path:
    """recipes/tasks-<task>.yaml with its scenes and checkpoint at absolute paths (the bundle keeps only names)."""
    source = ROOT / "recipes" / f"tasks-{task}.yaml"
    text = (text or source.read_text()).replace("../tests/fixtures/scenes", str(scenes))
    path = directory / f"tasks-{task}.yaml"
    path.write_text(text.replace(f"../tests/fixtures/{task}.pt", str(FIXTURES / f"{task}.pt")))
    return path


def only_formats(text: str, formats: str) -> str:
    """A recipe's text with its `formats:` section replaced."""
    return text[: text.index("formats:")] + "formats:\n" + formats + text[text.index("validation:"):]


# Each task's tests are marked with its model's regeneration, queued from the start (tests/regenerations.py).
PER_TASK = [pytest.param(task, marks=pytest.mark.regenerates(f"{task}.pt")) for task in sorted(TASKS)]


@pytest.fixture(scope="module", params=PER_TASK)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    task = request.param
    base = tmp_path_factory.mktemp(f"task-{task}")
    write_task_scenes(base / "scenes", task)
    for toolchain in ALL:
        ensure_env(toolchain)
    recipe = recipe_for(task, base, base / "scenes")
    code, summary = build_json(recipe, base / "store", NO_PROFILE, check=False)
    return {"task": task, "base": base, "recipe": recipe, "store": base / "store", "code": code, "summary": summary}


def test_every_cell_is_validated_with_the_tasks_metrics_or_honestly_marked(built: dict) -> None:
    task, summary = built["task"], built["summary"]
    expected = TASKS[task]
    key, metric = expected.key, expected.metric
    cells = {c["cell"]: c for c in summary["cells"]}
    assert summary["task"] == task and set(cells) == {f"{f}/{p}" for f, ps in expected.formats.items() for p in ps}
    failed = {n: c["validation"]["violations"] for n, c in cells.items() if c["status"] == "failed"}
    assert built["code"] == errors.OK and not failed, failed
    for name, cell in cells.items():
        v = cell["validation"]
        if name.startswith("coreml/"):  # converted on Linux, predicted only on macOS
            assert cell["status"] == "not-validated" and "requires macOS" in v["reason"], v
            assert v["structure"] and all(c["ok"] for c in v["structure"]), v["structure"]
        else:
            assert cell["status"] == "passed", (name, v)
            assert v[key][metric] is not None and all(g["ran"] for g in v["gates"]), (name, v)
    shown = json.loads(exportctl("show", summary["bundle"], "--json", store=built["store"]).stdout)
    assert all(c["validation"][key][metric] is not None for c in shown["cells"] if c["status"] == "passed")
    text = exportctl("show", summary["bundle"], store=built["store"], env={"COLUMNS": "400"}).stdout  # no ellipsis
    assert metric in text and "requires macOS" in text


def test_the_committed_model_regenerates_byte_for_byte(built: dict, regenerations: Regenerations) -> None:
    task = built["task"]
    committed = hashlib.sha256((FIXTURES / f"{task}.pt").read_bytes()).hexdigest()
    regen = regenerations.result(f"{task}.pt")
    assert regen.digest in regenerated.accepted(f"{task}.pt", committed), (regenerated.this_cpu(), regen.log[-2000:])
    assert f'sha256: "{committed}"' in (ROOT / "recipes" / f"tasks-{task}.yaml").read_text()


def test_a_too_tight_task_tolerance_exits_2_naming_the_task_metric(built: dict, tmp_path: Path) -> None:
    from exportctl import tasks

    task, expected = built["task"], TASKS[built["task"]]
    fmt, precision = expected.tight_cell
    defaults = {k: v for k, v in tasks.registry()[task].tolerance(precision).items() if v is not None}
    text = only_formats(built["recipe"].read_text(), f"  {fmt}:\n    precisions: [{precision}]\n")
    recipe = tmp_path / "tight.yaml"
    recipe.write_text(_validation_with(text, precision, {**defaults, expected.tolerance: expected.tight}))
    done = exportctl("build", recipe, NO_PROFILE, store=built["store"], check=False)
    assert done.returncode == errors.VALIDATION_FAILED, done.stderr
    assert f"{fmt}/{precision}" in done.stderr and expected.gate in done.stderr, done.stderr


def _validation_with(text: str, precision: str, tolerances: dict) -> str:
    """The recipe text with `validation.tolerances.<precision>` set (the section's images kept)."""
    head, rest = text.split("validation:\n", 1)
    lines = rest.splitlines(keepends=True)
    end = next((i for i, line in enumerate(lines) if not line.startswith("  ")), len(lines))
    body, tail = lines[:end], "".join(lines[end:])
    return (head + "validation:\n" + "".join(body) + f"  tolerances:\n    {precision}: " + json.dumps(tolerances)
            + "\n" + tail)


def test_two_clean_builds_of_a_task_recipe_give_one_digest(built: dict, tmp_path: Path) -> None:
    """Reduced to one float and one quantized cell, built from an empty store; and built again in the full build's
    store, whose cells that full build made from its own empty store. Two clean runs made the cells of the two
    bundles: the digests and the artifacts must agree."""
    text = only_formats(built["recipe"].read_text(), TASKS[built["task"]].reduced)
    recipe = tmp_path / "reduced.yaml"
    recipe.write_text(text)
    fresh = build_json(recipe, tmp_path / "store", NO_PROFILE)[1]
    from_full = build_json(recipe, built["store"], NO_PROFILE)[1]
    assert all(not c["cached"] for c in fresh["cells"]) and all(c["cached"] for c in from_full["cells"])
    assert fresh["bundle"] == from_full["bundle"]
    full = {c["cell"]: c["artifact"] for c in built["summary"]["cells"]}
    assert all(full[c["cell"]] == c["artifact"] for c in fresh["cells"])  # the same bytes as in the full build


def test_a_badly_quantized_cell_exits_2_naming_a_task_metric(built: dict, tmp_path: Path) -> None:
    """OpenVINO int8 calibrated on blank images fails, naming the task's gate."""
    expected = TASKS[built["task"]]
    text = only_formats(built["recipe"].read_text(), "  openvino:\n    precisions: [int8]\n")
    text = text[: text.index("calibration:")]
    write_scenes(tmp_path / "blank", 64, seed=0, size=160, blank=True)
    recipe = tmp_path / "int8.yaml"
    recipe.write_text(text + f"calibration:\n  images: {tmp_path / 'blank'}\n")
    done = exportctl("build", recipe, NO_PROFILE, store=built["store"], check=False)
    assert done.returncode == errors.VALIDATION_FAILED, done.stderr
    assert "openvino/int8" in done.stderr and expected.blank_gate in done.stderr, done.stderr
