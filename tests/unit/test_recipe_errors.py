"""Bad recipes and checkpoints: each exits 3 (configuration error) naming the field, its line, and a fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from exportctl import errors
from tests.conftest import QUICKSTART, ROOT, exportctl

GOOD = """\
name: t
checkpoint:
  path: model.pt
input:
  imgsz: 320
formats:
  onnx:
    precisions: [fp32]
"""


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "tests" / "fixtures" / "detector.pt", tmp_path / "model.pt")  # plan reads its task
    return tmp_path


def _plan(recipe_dir: Path, text: str) -> tuple[int, str]:
    path = recipe_dir / "recipe.yaml"
    path.write_text(text)
    done = exportctl("plan", path, "--json", store=recipe_dir / "store", check=False)
    return done.returncode, done.stderr


def test_good_recipe_plans(recipe_dir: Path) -> None:
    code, err = _plan(recipe_dir, GOOD)
    assert code == 0, err


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("input:", "inptu:"), ["'inptu'", "recipe.yaml:4", "did you mean 'input'"]),
    (GOOD.replace("  imgsz: 320", "  imgsz: 320\n  imgzs: 1"),
     ["input.imgzs", "recipe.yaml:6", "did you mean 'imgsz'"]),
    (GOOD.replace("imgsz: 320", "imgsz: big"), ["input.imgsz", "recipe.yaml:5", "valid integer"]),
    (GOOD.replace("imgsz: 320", "imgsz: 100"), ["input.imgsz", "multiple of 32"]),
    (GOOD.replace("  onnx:", "  onxx:"), ["formats.onxx", "recipe.yaml:7", "unknown format", "did you mean 'onnx'"]),
    (GOOD.replace("[fp32]", "[fp64]"), ["formats.onnx.precisions.0", "recipe.yaml:8", "fp32"]),
    (GOOD.replace("[fp32]", "[int8]"), ["formats.onnx.precisions", "int8 is not available", "remove it"]),
    (GOOD + "    options: {opset: 99}\n", ["formats.onnx.options.opset", "recipe.yaml:9", "less than or equal to 22"]),
    (GOOD + "    options: {opsett: 17}\n", ["formats.onnx.options.opsett", "Extra inputs"]),
    (GOOD.replace("model.pt", "missing.pt"), ["checkpoint.path", "recipe.yaml:3", "does not exist"]),
    (GOOD.replace("path: model.pt", "path: model.pt\n  sha256: '" + "0" * 64 + "'"),
     ["checkpoint.sha256", "recipe.yaml:4", "the recipe pins sha256:" + "0" * 64, "update the pin"]),
    (GOOD.replace("path: model.pt", "path: model.pt\n  sha256: " + "0" * 64),
     ["checkpoint.sha256", "YAML read a number", "quote the value"]),
    (GOOD.replace("path: model.pt", "demo: {arch: yolo11n.yaml}\n  path: model.pt"), ["checkpoint", "exactly one"]),
    (GOOD.replace("name: t", "name: [t"), ["not valid YAML", "recipe.yaml:"]),
    ("- just\n- a list\n", ["a recipe is a YAML mapping"]),
    (GOOD.replace("name: t\n", ""), ["'name'", "is required"]),
    (GOOD + "base_dir: /etc\n", ["'base_dir'", "unknown key"]),
], ids=["unknown-key", "nested-unknown-key", "wrong-type", "bad-value", "unknown-format", "unknown-precision",
        "precision-format-cannot-do", "option-out-of-range", "unknown-option", "missing-checkpoint",
        "sha256-mismatch", "sha256-unquoted", "two-checkpoint-sources", "unreadable-yaml", "not-a-mapping",
        "missing-name", "internal-key"])
def test_bad_recipe_exits_3_naming_the_field(recipe_dir: Path, text: str, expected: list[str]) -> None:
    code, err = _plan(recipe_dir, text)
    assert code == errors.CONFIG_ERROR, err
    flat = " ".join(err.split())  # rich wraps long lines
    for fragment in expected:
        assert fragment in flat, f"{fragment!r} not in: {flat}"


def test_missing_recipe_file_exits_3(tmp_path: Path) -> None:
    done = exportctl("plan", tmp_path / "nope.yaml", store=tmp_path / "s", check=False)
    assert done.returncode == errors.CONFIG_ERROR and "nope.yaml" in done.stderr


def test_checkpoint_that_is_not_a_pt_file(recipe_dir: Path) -> None:
    (recipe_dir / "model.onnx").write_bytes(b"x")
    code, err = _plan(recipe_dir, GOOD.replace("model.pt", "model.onnx"))
    assert code == errors.CONFIG_ERROR and "not a .pt checkpoint" in err


def test_schema_accepts_the_example_recipes_and_is_current(update_golden: bool) -> None:
    schema = json.loads(exportctl("schema").stdout)
    for recipe in sorted(QUICKSTART.parent.glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(recipe.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "checkpoint": {"demo": {}}, "formats": {}, "extra": 1}, schema)
    committed = QUICKSTART.parent / "recipe.schema.json"
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if update_golden:
        committed.write_text(text)
    assert committed.read_text() == text, "recipes/recipe.schema.json is stale: run `nox -s schema`"
