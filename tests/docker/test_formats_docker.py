"""The OpenVINO, LiteRT and CoreML images: built by the Docker backend and giving the local backend's bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportctl import errors
from tests.conftest import FULL_MATRIX, NO_PROFILE, exportctl, full_matrix_recipe
from tests.fixtures.shapes import write_fixture_scenes

pytestmark = pytest.mark.docker

# One cell per new image; int8 also checks the calibration images reach a container read-only.
CELLS = ("openvino/int8", "litert/w8a32", "coreml/fp32")


def test_new_format_images_build_and_match_the_local_backend(tmp_path: Path, docker_env: dict[str, str]) -> None:
    write_fixture_scenes(tmp_path / "scenes", calibration=32)
    text = FULL_MATRIX.read_text().replace("count: 300", "count: 32")
    recipe = full_matrix_recipe(tmp_path, tmp_path / "scenes", text)
    only = [f"--only={cell}" for cell in CELLS]
    built = {}
    for backend, env in (("docker", docker_env), ("local", {})):
        done = exportctl("build", recipe, "--json", NO_PROFILE, "--backend", backend, *only, store=tmp_path / backend,
                         env=env)
        built[backend] = json.loads(done.stdout)
    docker, local = built["docker"], built["local"]
    assert docker["exit_code"] == local["exit_code"] == errors.OK
    assert {c["cell"]: (c["status"], c["artifact"]) for c in docker["cells"]} == \
        {c["cell"]: (c["status"], c["artifact"]) for c in local["cells"]}
    assert docker["bundle"] == local["bundle"]
    run = json.loads(exportctl("show", docker["bundle"], "--json", store=tmp_path / "docker").stdout)["runs"][0]
    images = {e["toolchain"]: e for e in run["environments"]}
    assert {"openvino", "litert", "coreml"} <= set(images)
    assert all(images[t]["image"].startswith(f"exportctl/{t}:") for t in ("openvino", "litert", "coreml"))
