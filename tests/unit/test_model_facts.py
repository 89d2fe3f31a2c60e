"""The checkpoint's task is read on the host (no torch) and refused plainly when exportctl cannot build it."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest

from exportctl import errors, tasks
from exportctl.plan.matrix import make_plan
from exportctl.plan.model_facts import ModelFacts, NotAYoloCheckpoint, read_checkpoint
from exportctl.recipe.load import parse_recipe
from tests.conftest import ROOT, exportctl

DETECTOR = ROOT / "tests" / "fixtures" / "detector.pt"
DEFAULT = tasks.default_task().name


class _Model:
    """Pickled under Ultralytics' class name (the pickle's GLOBAL opcode is rewritten), like a saved model."""

    def __init__(self, state: dict) -> None:
        self.__dict__.update(state)


class _Layer:
    pass


def _checkpoint(path: Path, data: dict, model_class: str = "SegmentationModel", head: str = "Segment") -> Path:
    """A torch-zip-shaped checkpoint whose pickle names Ultralytics' classes (written without torch)."""
    raw = pickle.dumps(data, protocol=2)
    raw = raw.replace(f"{__name__}\n_Model\n".encode(), f"ultralytics.nn.tasks\n{model_class}\n".encode())
    raw = raw.replace(f"{__name__}\n_Layer\n".encode(), f"ultralytics.nn.modules.head\n{head}\n".encode())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", raw)
    path.write_bytes(buf.getvalue())
    return path


def _yolo(path: Path, task: str | None, head: str, model_attr_task: str | None = None) -> Path:
    seq = _Model({"_modules": {"0": _Layer(), "1": _Layer()}})
    state = {"_modules": {"model": seq}, "yaml": {"head": [[[1], 1, head, []]]}}
    if model_attr_task:
        state["task"] = model_attr_task
    return _checkpoint(path, {"model": _Model(state), "train_args": {"task": task} if task else {}}, head=head)


def test_the_trained_detector_is_a_detect_model() -> None:
    facts = read_checkpoint(DETECTOR, DEFAULT)
    assert (facts.task, facts.head, facts.refused) == (DEFAULT, "Detect", None)


def test_task_comes_from_model_attribute_then_train_args_then_default(tmp_path: Path) -> None:
    assert read_checkpoint(_yolo(tmp_path / "a.pt", "pose", "Pose", model_attr_task="obb"), DEFAULT).task == "obb"
    assert read_checkpoint(_yolo(tmp_path / "b.pt", "pose", "Pose"), DEFAULT).task == "pose"
    assert read_checkpoint(_yolo(tmp_path / "c.pt", None, "Detect"), DEFAULT).task == DEFAULT
    assert read_checkpoint(_yolo(tmp_path / "d.pt", "pose", "Pose"), DEFAULT).head == "Pose"


@pytest.mark.parametrize(("task", "head", "reason"), [
    ("semantic", "SemanticSegment", "semantic segmentation"),
    ("depth", "Depth", "depth estimation"),
    (None, "WorldDetect", "YOLO-World takes text embeddings"),
    ("segment", "YOLOESegment", "YOLOE takes text or visual prompt"),
])
def test_refused_tasks_and_families_are_named_with_the_reason(tmp_path: Path, task: str | None, head: str,
                                                              reason: str) -> None:
    ck = _yolo(tmp_path / "m.pt", task, head)
    assert reason in (read_checkpoint(ck, DEFAULT).refused or "")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ncheckpoint: {{path: {ck.name}}}\nformats: {{onnx: {{}}}}\n")
    done = exportctl("plan", recipe, store=tmp_path / "store", check=False)
    assert done.returncode == errors.CONFIG_ERROR, done.stderr
    assert "checkpoint.path" in done.stderr and reason in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr


def test_sam_weights_and_other_files_are_not_yolo_checkpoints(tmp_path: Path) -> None:
    sam = _checkpoint(tmp_path / "sam_b.pt", {"image_encoder.patch_embed.proj.weight": None})
    with pytest.raises(NotAYoloCheckpoint, match="SAM weights are a bare state dict"):
        read_checkpoint(sam, DEFAULT)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(NotAYoloCheckpoint, match="not a zip archive"):
        read_checkpoint(text, DEFAULT)


@pytest.mark.parametrize(("arch", "reason"), [
    ("yolo26n-sem.yaml", "semantic segmentation"),
    ("yolo26n-depth.yaml", "depth estimation"),
    ("yolov8s-worldv2.yaml", "YOLO-World"),
    ("yoloe-26s.yaml", "YOLOE"),
    ("sam_b.yaml", "SAM models are promptable segmenters"),
    ("yolov10n-cls.yaml", "not an Ultralytics architecture exportctl makes demo checkpoints from"),
    ("yolo11n-foo.yaml", "not an Ultralytics architecture exportctl makes demo checkpoints from"),
])
def test_demo_architectures_are_refused_at_plan_time(arch: str, reason: str) -> None:
    recipe = parse_recipe(f"name: r\ncheckpoint: {{demo: {{arch: {arch}}}}}\nformats: {{onnx: {{}}}}\n")
    with pytest.raises(errors.RecipeError, match=reason) as info:
        make_plan(recipe)
    assert info.value.field == "checkpoint.demo.arch"


@pytest.mark.parametrize("family", ["yolov8n", "yolo11n", "yolo26n"])
def test_every_tasks_demo_architecture_plans_as_that_task(family: str) -> None:
    for name, spec in tasks.registry().items():
        arch = f"{family}{spec.arch_marker}.yaml"
        made = make_plan(parse_recipe(f"name: r\ncheckpoint: {{demo: {{arch: {arch}}}}}\nformats: {{onnx: {{}}}}\n"))
        assert made.task == name and made.demo is not None and made.demo.task == name, arch
        assert all(c.request.task == name for c in made.cells)


def test_coreml_nms_is_refused_for_other_tasks_at_plan_time() -> None:
    for name, spec in tasks.registry().items():
        recipe = parse_recipe(f"name: r\ncheckpoint: {{demo: {{arch: yolo11n{spec.arch_marker}.yaml}}}}\n"
                              "formats: {coreml: {options: {nms: true}}}\n")
        if spec.default:
            assert make_plan(recipe).cells[0].request.options["nms"] is True
            continue
        with pytest.raises(errors.RecipeError, match=f"a {name} model( with head \\w+)?: Apple's NMS stage") as info:
            make_plan(recipe)
        assert info.value.field == "formats.coreml.options.nms"


def test_plan_shows_and_records_the_task() -> None:
    recipe = parse_recipe("name: r\ncheckpoint: {demo: {arch: yolo26n.yaml}}\nformats: {onnx: {}}\n")
    made = make_plan(recipe)
    assert made.task == DEFAULT and made.reference.task == DEFAULT
    assert all(c.request.task == DEFAULT for c in made.cells)


def test_batched_exports_are_refused_at_plan_time() -> None:
    recipe = parse_recipe("name: r\ncheckpoint: {demo: {arch: yolo11n.yaml}}\ninput: {batch: 4}\n"
                          "formats: {onnx: {}}\n")
    with pytest.raises(errors.RecipeError, match="batch 4: validation feeds") as info:
        make_plan(recipe)
    assert info.value.field == "input.batch"


# --- RT-DETR ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["rtdetr-l.yaml", "rtdetr-x.yaml", "rtdetr-resnet50.yaml", "rtdetr-resnet101.yaml"])
def test_rtdetr_demos_plan_as_detection_with_their_head(arch: str) -> None:
    made = make_plan(parse_recipe(f"name: r\ncheckpoint: {{demo: {{arch: {arch}}}}}\n"
                                  "formats: {onnx: {}, torchscript: {}}\n"))
    assert made.task == DEFAULT and made.demo is not None and made.demo.task == DEFAULT
    assert [c.name for c in made.cells] == ["onnx/fp32", "torchscript/fp32"]


def test_an_rtdetr_checkpoint_is_read_as_detection_and_plans(tmp_path: Path) -> None:
    ck = _yolo(tmp_path / "rtdetr.pt", "detect", "RTDETRDecoder")
    assert read_checkpoint(ck, DEFAULT) == ModelFacts(DEFAULT, "RTDETRDecoder", None)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ncheckpoint: {{path: {ck.name}}}\nformats: {{onnx: {{}}}}\n")
    done = exportctl("plan", recipe, store=tmp_path / "store", check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("formats", "field", "reason"), [
    ("{coreml: {options: {nms: true}}}", "formats.coreml.options.nms", "nothing to suppress"),
    ("{onnx: {options: {opset: 15}}}", "formats.onnx.options.opset", "GridSample, which ONNX defines from opset 16"),
])
def test_what_rtdetr_cannot_be_built_with_is_refused_at_plan_time(tmp_path: Path, formats: str, field: str,
                                                                  reason: str) -> None:
    recipe = parse_recipe(f"name: r\ncheckpoint: {{demo: {{arch: rtdetr-l.yaml}}}}\nformats: {formats}\n")
    with pytest.raises(errors.RecipeError, match=reason) as info:
        make_plan(recipe)
    assert info.value.field == field and "head RTDETRDecoder" in str(info.value)
    # the same options are fine for a YOLO detector, and for RT-DETR without them
    assert make_plan(parse_recipe(f"name: r\ncheckpoint: {{demo: {{arch: yolo11n.yaml}}}}\nformats: {formats}\n"))
    assert make_plan(parse_recipe("name: r\ncheckpoint: {demo: {arch: rtdetr-l.yaml}}\n"
                                  "formats: {coreml: {}, onnx: {options: {opset: 16}}}\n"))
    # a checkpoint's head is read from its pickle: the refusal is the same, through the CLI, without a traceback
    ck = _yolo(tmp_path / "rtdetr.pt", "detect", "RTDETRDecoder")
    (tmp_path / "r.yaml").write_text(f"name: r\ncheckpoint: {{path: {ck.name}}}\nformats: {formats}\n")
    done = exportctl("plan", tmp_path / "r.yaml", store=tmp_path / "store", check=False)
    assert done.returncode == errors.CONFIG_ERROR and reason in " ".join(done.stderr.split()), done.stderr
    assert field in done.stderr and "Traceback" not in done.stderr
