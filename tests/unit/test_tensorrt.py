"""TensorRT without a GPU: the plan refuses it with the reason, and the engine file layout (Ultralytics'
metadata header, or none for Triton) is right. Building and validating engines is the `gpu` tier's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.formats.tensorrt import with_header
from exportctl.plan.gpu import gpu_missing
from tests.conftest import ROOT, exportctl

sys.path.insert(0, str(ROOT / "runtimes" / "python"))
from yolo_runtime.engine import split_header  # noqa: E402

RECIPE = """name: trt
checkpoint:
  demo: {arch: yolo11n.yaml, seed: 0}
input: {imgsz: 320}
formats:
  tensorrt:
    precisions: [fp16]
    options: {triton: true}
"""


@pytest.mark.skipif(gpu_missing() is None, reason="this machine has an NVIDIA GPU: the cell is not refused here")
def test_without_a_gpu_tensorrt_is_refused_at_plan_time(tmp_path: Path) -> None:
    recipe = tmp_path / "trt.yaml"
    recipe.write_text(RECIPE)
    done = exportctl("plan", recipe, store=tmp_path / "store", check=False)
    assert done.returncode == errors.CONFIG_ERROR
    assert f"{recipe}:7" in done.stderr and "NVIDIA GPU" in done.stderr and "none was found" in done.stderr


def test_engine_header_is_ultralytics_layout_and_optional() -> None:
    engine = b"\x00\x01TRT-engine-bytes\xff"
    meta = {"names": {"0": "person"}, "imgsz": [320, 320], "stride": 32}
    data = with_header(engine, meta)
    length = int.from_bytes(data[:4], "little", signed=True)
    assert json.loads(data[4:4 + length]) == meta and data[4 + length:] == engine
    assert split_header(data) == (meta, engine)
    assert split_header(engine) == (None, engine)  # `triton: true`: a plain engine is read as is
