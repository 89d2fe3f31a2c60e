"""`exportctl ci k8s`: golden manifests, validated offline against Kubernetes' own schemas (kubernetes-validate,
strict: unknown fields are errors), and the per-index export-guide variables that `cell-task` reads."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from exportctl import errors
from exportctl.executors.task import contract_cell
from tests.conftest import QUICKSTART, check_golden, exportctl
from tests.unit.test_ci_github import GPU_RECIPE

KUBERNETES = "1.30"  # a version kubernetes-validate ships schemas for (Indexed Jobs with backoffLimitPerIndex)


def _validate(documents: list[dict]) -> None:
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def _render(recipe: Path | str, *extra: str) -> tuple[str, list[dict]]:
    text = exportctl("ci", "k8s", recipe, "--registry", "ghcr.io/acme/exports:v1", "--no-push", *extra).stdout
    return text, list(yaml.safe_load_all(text))


def _by_kind(documents: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"].rsplit("-", 1)[1]: d for d in documents}


def test_quickstart_manifests_are_golden_and_valid(update_golden: bool) -> None:
    text, documents = _render("recipes/quickstart.yaml")
    check_golden("ci-k8s-quickstart.yaml", text, update_golden)
    _validate(documents)
    parts = _by_kind(documents)
    assert sorted(parts) == ["cells", "cpu", "merge"]  # no GPU cell, no GPU Job
    cpu = parts["cpu"]["spec"]
    assert cpu["completionMode"] == "Indexed" and cpu["completions"] == 2
    container = cpu["template"]["spec"]["containers"][0]
    assert "resources" not in container and "nodeSelector" not in cpu["template"]["spec"]
    assert re.fullmatch(r"python:[^@]+@sha256:[0-9a-f]{64}", container["image"])
    assert parts["merge"]["spec"]["suspend"] is True
    assert {e["name"] for e in container["env"]} >= {"OUTPUT_DIR", "INPUTS"}
    assert sorted(parts["cells"]["data"]) == ["cpu-0.env", "cpu-1.env"]


def test_gpu_cells_get_a_gpu_and_its_nodes(tmp_path: Path, update_golden: bool) -> None:
    recipe = tmp_path / "gpu.yaml"
    recipe.write_text(GPU_RECIPE)
    text, documents = _render(recipe, "--gpu-node-selector", "accelerator=nvidia-h100")
    check_golden("ci-k8s-gpu.yaml", text, update_golden)
    _validate(documents)
    parts = _by_kind(documents)
    gpu, cpu = parts["gpu"]["spec"]["template"]["spec"], parts["cpu"]["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert gpu["nodeSelector"] == {"accelerator": "nvidia-h100"}
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "resources" not in cpu["containers"][0] and "nodeSelector" not in cpu
    assert re.fullmatch(r"nvcr\.io/nvidia/tensorrt:[^@]+@sha256:[0-9a-f]{64}", gpu["containers"][0]["image"])
    assert parts["cells"]["data"]["gpu-0.env"].startswith("EXPORT_FORMAT=tensorrt\n")


@pytest.mark.parametrize("break_it", [
    lambda d: d["spec"].pop("template"),  # a Job without its pod template
    lambda d: d["spec"].update(completions="two"),  # not an integer
    lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicyy="Always"),  # unknown field
    lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),  # a required field
])
def test_a_broken_manifest_fails_validation(break_it) -> None:
    """The check can fail: each deliberately broken Job is refused by the schema."""
    _, documents = _render("recipes/quickstart.yaml")
    job = copy.deepcopy(_by_kind(documents)["cpu"])
    break_it(job)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES, strict=True)


def _index_env(documents: list[dict], key: str) -> dict[str, str]:
    """An index's variables as the pod's `set -a; . FILE` sets them."""
    return dict(line.split("=", 1) for line in shlex.split(_by_kind(documents)["cells"]["data"][key]))


def test_each_index_names_its_cell_by_the_export_guide_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    _, documents = _render("recipes/quickstart.yaml")
    for key, cell in (("cpu-0.env", "onnx/fp32"), ("cpu-1.env", "torchscript/fp32")):
        env = _index_env(documents, key)
        assert set(env) == {"EXPORT_FORMAT", "EXPORT_CONFIG", "PART"}  # a demo checkpoint: no CHECKPOINT_PATH
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert contract_cell(QUICKSTART) == cell
    # Variables that disagree with the recipe fetched by digest are a configuration error (exit 3), not a build
    # of something else.
    monkeypatch.setenv("EXPORT_FORMAT", "onnx")
    monkeypatch.setenv("EXPORT_CONFIG", json.dumps({"precision": "fp32", "options": {"opset": 12}}))
    with pytest.raises(errors.ConfigError, match="opset") as refused:
        contract_cell(QUICKSTART)
    assert refused.value.exit_code == errors.CONFIG_ERROR
    monkeypatch.setenv("EXPORT_FORMAT", "coreml")
    with pytest.raises(errors.ConfigError, match="builds onnx, torchscript only"):
        contract_cell(QUICKSTART)


def test_a_file_checkpoint_is_named_by_checkpoint_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "best.pt").write_bytes(Path("tests/fixtures/detector.pt").read_bytes())
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ncheckpoint: {path: models/best.pt}\ninput: {imgsz: 320}\n"
                      "formats: {onnx: {precisions: [fp32]}}\n")
    _, documents = _render(recipe)
    env = _index_env(documents, "cpu-0.env")
    assert env["CHECKPOINT_PATH"] == "/work/task/inputs/models/best.pt"
    # In the pod the inputs tree sits where CHECKPOINT_PATH says; here, the recipe's own file is the checkpoint.
    for name, value in {**env, "CHECKPOINT_PATH": str(tmp_path / "models" / "best.pt")}.items():
        monkeypatch.setenv(name, value)
    assert contract_cell(recipe) == "onnx/fp32"
    monkeypatch.setenv("CHECKPOINT_PATH", str(tmp_path / "r.yaml"))
    with pytest.raises(errors.ConfigError, match="not the recipe's checkpoint"):
        contract_cell(recipe)


def test_an_image_without_a_digest_is_refused() -> None:
    done = exportctl("ci", "k8s", "recipes/quickstart.yaml", "--registry", "ghcr.io/a/b", "--no-push",
                     "--image", "python:3.11-slim", check=False)
    assert done.returncode == errors.CONFIG_ERROR and "not pinned by digest" in done.stderr
