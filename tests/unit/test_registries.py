"""The format and task registries are the only places that know formats and tasks by name; the README's
format table, the cell protocol and the host's option models are derived from (or kept in step with) them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from exportctl import errors, formats, tasks
from exportctl.cell.protocol import Calibration, CellReport, CellRequest, Demo, Kind, Validation, Verdict
from exportctl.formats.spec import Precision
from exportctl.plan.options import options_model
from exportctl.recipe.load import parse_recipe
from exportctl.recipe.model import DEFAULT_TOLERANCES, Tolerance
from tests.conftest import ROOT

PACKAGE = ROOT / "exportctl"
# Named on purpose outside their own module, each with the reason.
ALLOWED = {
    ("formats/tensorrt.py", "onnx"): "TensorRT builds its engine from Ultralytics' ONNX export (read with onnx)",
}


def _names_in(path: Path) -> set[str]:
    """Every string literal, identifier, attribute and imported module name of one module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.alias):
            found.update(node.name.split("."))
            found.add(node.asname or "")
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(node.module.split("."))
    return found


def test_formats_and_tasks_are_named_only_in_their_own_module() -> None:
    owners = {**{name: f"formats/{name}.py" for name in formats.registry()},
              **{name: f"tasks/{name}.py" for name in tasks.registry()}}
    assert len(owners) == len(formats.registry()) + len(tasks.registry()), "a format and a task share a name"
    leaks = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        for name in sorted(_names_in(path) & set(owners)):
            if module != owners[name] and (module, name) not in ALLOWED:
                leaks.append(f"exportctl/{module} names '{name}' (it belongs in exportctl/{owners[name]})")
    assert leaks == []


def test_registries_find_every_module() -> None:
    modules = {p.stem for p in (PACKAGE / "formats").glob("*.py")} - {"__init__", "spec", "ultralytics"}
    assert set(formats.registry()) == modules  # ultralytics.py: the exporter most formats share, not a format
    assert [s.name for s in formats.registry().values() if s.reference_environment] == [formats.reference_format().name]
    for spec in formats.registry().values():
        assert set(spec.precisions) == {p.value for p in Precision}, spec.name
        assert set(spec.calibrated) <= set(spec.supported), spec.name
        assert (ROOT / "images" / spec.toolchain / "Dockerfile.j2").is_file(), spec.name
    # common.py, instances.py: what the task specs share (metadata fields, instance matching), not tasks
    assert {p.stem for p in (PACKAGE / "tasks").glob("*.py")} - {"__init__", "spec", "common", "instances"} \
        == set(tasks.registry())
    assert sum(t.default for t in tasks.registry().values()) == 1


def _readme_format_rows() -> dict[str, list[str]]:
    section = (ROOT / "README.md").read_text().split("### Formats and precisions", 1)[1]
    rows = re.findall(r"^\| (\w+) \| (.+) \|$", section.split("\n\n", 2)[1], flags=re.M)
    return {name: [cell.strip() for cell in rest.split(" | ")] for name, rest in rows if name != "format"}


def test_readme_format_table_matches_the_specs() -> None:
    rows = _readme_format_rows()
    assert set(rows) == set(formats.registry())
    columns = [p.value for p in Precision]  # the table's order: fp32 fp16 int8 w8a16 w8a32
    for name, cells in rows.items():
        spec = formats.registry()[name]
        for precision, cell in zip(columns, cells, strict=False):
            built = spec.precisions[precision] is None
            assert cell.startswith("yes") == built and cell.startswith("refused") == (not built), (name, precision)


def test_cell_request_and_report_round_trip_through_json() -> None:
    request = CellRequest(
        Kind.export, "t", "f", "int8", {"opset": 17, "dynamic": False}, 320, 2, source_date_epoch=315532800,
        checkpoint="checkpoint.pt", validation=Validation("reference", 0.25, 0.45, 0.5, {"max_abs": None}),
        calibration=Calibration(300, "sha256:" + "0" * 64), images=("images/0-a.jpg",))
    assert CellRequest.from_json(request.to_json()) == request
    for other in (CellRequest(Kind.demo, "t", demo=Demo("yolo11n.yaml", 3)),
                  CellRequest(Kind.probe, connect=(("127.0.0.1", 9),)), CellRequest(Kind.reference)):
        assert CellRequest.from_json(other.to_json()) == other
    assert "calibration" not in CellRequest(Kind.export).to_json()  # None fields are left out
    report = CellReport(Kind.export, Verdict.not_validated, "requires macOS", ("x",), "model.onnx", 512)
    assert CellReport.from_json(report.to_json()) == report
    assert report.to_json()["verdict"] == "not-validated"


def test_option_models_are_derived_from_the_specs() -> None:
    for spec in formats.registry().values():
        model = options_model(spec)
        defaults = model().model_dump(mode="json")
        assert defaults == spec.resolve_options({}), spec.name
        with pytest.raises(ValidationError, match="Extra inputs"):
            model.model_validate({"no_such_option": 1})
        assert model.model_config.get("frozen") is True
    bounded = next(s for s in formats.registry().values() for o in s.options if o.le is not None)
    option = next(o for o in bounded.options if o.le is not None)
    with pytest.raises(ValidationError):
        options_model(bounded).model_validate({option.name: option.le + 1})


def test_an_unknown_option_is_refused_with_a_suggestion() -> None:
    spec = next(s for s in formats.registry().values() if s.options)
    option = spec.options[0].name
    text = (f"name: t\ncheckpoint: {{demo: {{arch: yolo11n.yaml}}}}\nformats:\n  {spec.name}:\n"
            f"    options: {{{option}x: 1}}\n")
    from exportctl.plan.options import validate_options

    with pytest.raises(errors.RecipeError, match=f"did you mean '{option}'"):
        validate_options(parse_recipe(text), spec, {f"{option}x": 1})


def test_aliases_and_defaults_resolve_in_the_cell() -> None:
    spec = next(s for s in formats.registry().values() if any(o.aliases for o in s.options))
    option = next(o for o in spec.options if o.aliases)
    resolved = spec.resolve_options({option.aliases[0]: "given", "unknown": 1})
    assert resolved[option.name] == "given" and "unknown" not in resolved


def test_tolerance_model_comes_from_the_tasks() -> None:
    task = tasks.default_task()
    every = [k.name for t in (task, *tasks.registry().values()) for k in t.tolerance_keys]
    assert list(Tolerance.model_fields) == list(dict.fromkeys(every))  # the default task's keys first
    for precision in Precision:
        assert DEFAULT_TOLERANCES[precision].model_dump(mode="json", exclude_none=True) == \
            {k: v for k, v in task.tolerance(precision.value).items() if v is not None}
    shared = {k.name: k for k in task.tolerance_keys}  # a key two tasks share has one range
    for other in tasks.registry().values():
        for key in other.tolerance_keys:
            if key.name in shared:
                assert (key.ge, key.gt, key.le) == (shared[key.name].ge, shared[key.name].gt, shared[key.name].le)


def test_a_tolerance_of_another_task_is_refused_at_plan_time(tmp_path: Path) -> None:
    from exportctl.plan.matrix import make_plan

    other = next(k.name for t in tasks.registry().values() for k in t.tolerance_keys
                 if k.name not in {d.name for d in tasks.default_task().tolerance_keys})
    recipe = parse_recipe("name: t\ncheckpoint: {demo: {arch: yolo11n.yaml}}\nformats:\n  onnx: {}\n"
                          f"validation:\n  tolerances:\n    fp32: {{{other}: 0.5}}\n", base_dir=tmp_path)
    with pytest.raises(errors.RecipeError, match=f"'{other}' is not a tolerance of the checkpoint's task"):
        make_plan(recipe)


def test_an_export_guide_config_becomes_the_same_request_type() -> None:
    from exportctl.cell.contract import CellConfigError, guide_request

    spec = next(s for s in formats.registry().values() if any(o.aliases for o in s.options))
    option = next(o for o in spec.options if o.aliases)
    config = {"precision": "fp32", "imgsz": 320, option.aliases[0]: option.default,
              "validation": {"reference": "/refs", "conf": 0.3}}
    request = guide_request(Kind.export, spec.name, "/ckpt/model.pt", config)
    assert isinstance(request, CellRequest) and request.kind == Kind.export and request.format == spec.name
    assert request.options == {option.aliases[0]: option.default}  # as received: metadata.json records them so
    assert request.checkpoint == "/ckpt/model.pt" and request.imgsz == 320
    task = tasks.default_task()
    assert request.validation == Validation("/refs", 0.3, task.thresholds.iou, task.thresholds.match_iou,
                                            task.tolerance("fp32"))
    assert CellRequest.from_json(request.to_json()) == request
    with pytest.raises(CellConfigError, match="unsupported export_format 'pdf'"):
        guide_request(Kind.export, "pdf", "/ckpt/model.pt", {})
    with pytest.raises(CellConfigError, match="include_validation needs validation.reference"):
        guide_request(Kind.export, spec.name, "/ckpt/model.pt", {"include_validation": True})
