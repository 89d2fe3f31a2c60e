"""TensorRT for real: needs an NVIDIA GPU, the NVIDIA Container Toolkit and the pinned TensorRT base image
(pulled from its registry, so this runs only where one is reachable)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.env.pins import pins
from exportctl.plan.gpu import gpu_missing
from tests.conftest import ROOT, exportctl

sys.path.insert(0, str(ROOT / "runtimes" / "python"))
from yolo_runtime.engine import split_header  # noqa: E402

pytestmark = [pytest.mark.docker, pytest.mark.gpu,
              pytest.mark.skipif(gpu_missing() is not None, reason=f"gpu tier: {gpu_missing()}")]

RECIPE = """name: trt-{name}
checkpoint:
  demo: {{arch: yolo11n.yaml, seed: 0}}
input: {{imgsz: 320}}
formats:
  tensorrt:
    precisions: [fp32, fp16]
    options: {{triton: {triton}}}
"""


@pytest.fixture(scope="module")
def tensorrt_base(docker_client) -> str:
    pin = pins()["tensorrt"]
    try:
        docker_client.images.pull(pin.reference)
    except Exception as exc:  # noqa: BLE001 - any registry failure means the same here
        pytest.skip(f"gpu tier: the pinned TensorRT base {pin.reference} cannot be pulled here: {exc}")
    return pin.reference


@pytest.mark.parametrize("triton", [False, True])
def test_tensorrt_engines_build_and_validate_on_the_gpu(tmp_path: Path, docker_host: str, tensorrt_base: str,
                                                        triton: bool) -> None:
    recipe = tmp_path / "trt.yaml"
    recipe.write_text(RECIPE.format(name="triton" if triton else "ultralytics", triton=str(triton).lower()))
    store = tmp_path / "store"
    done = exportctl("build", recipe, "--backend", "docker", "--json", store=store, check=False,
                     env={"DOCKER_HOST": docker_host})
    assert done.returncode == errors.OK, done.stderr
    summary = json.loads(done.stdout)
    assert [c["status"] for c in summary["cells"]] == ["passed", "passed"]
    for cell in summary["cells"]:
        meta, _ = split_header((store / "blobs" / "sha256" / cell["artifact"].split(":", 1)[1]).read_bytes())
        assert (meta is None) if triton else (meta is not None and "names" in meta)
