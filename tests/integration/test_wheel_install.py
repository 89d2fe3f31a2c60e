"""A wheel install works like the source tree: what `pipx install`, `uv tool install` and release pipelines do.

The wheel is built by the project's own build backend, installed into a fresh virtualenv outside the source
tree, and builds the quickstart from a directory that is not the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from exportctl.paths import cell_code_digest
from tests.conftest import QUICKSTART, ROOT

pytestmark = pytest.mark.slow
UV = [sys.executable, "-m", "uv"]


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    _run([*UV, "build", "--wheel", "--out-dir", base / "dist", ROOT], cwd=base)
    wheel = next((base / "dist").glob("exportctl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("exportctl/_data/images/_python/Dockerfile.j2", "exportctl/_data/lockfiles/onnx-linux-x86_64.txt",
                 "exportctl/_data/runtimes/python/yolo_runtime/backends.py",
                 "exportctl/cell/site/torchvision-0.0.0.dist-info/METADATA"):
        assert data in names, f"{data} is not in the wheel"
    venv = base / "venv"
    _run([*UV, "venv", "--quiet", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}", venv], cwd=base)
    _run([*UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel], cwd=base)
    return venv


def test_wheel_install_has_the_same_cell_code_digest(wheel_venv: Path, tmp_path: Path) -> None:
    done = _run([wheel_venv / "bin" / "python", "-c",
                 "import exportctl, exportctl.paths as p; print(exportctl.__file__); print(p.cell_code_digest())"],
                cwd=tmp_path, env={"PYTHONPATH": ""})
    location, digest = done.stdout.split()
    assert Path(location).is_relative_to(wheel_venv), "the test must use the installed wheel, not the checkout"
    assert digest == cell_code_digest()


def test_wheel_install_builds_the_quickstart(wheel_venv: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "quickstart.yaml"
    shutil.copyfile(QUICKSTART, recipe)
    sandbox = "bwrap" if shutil.which("bwrap") else "unshare"
    done = _run([wheel_venv / "bin" / "exportctl", "build", recipe.name, "--backend", "local", "--sandbox", sandbox,
                 "--store", tmp_path / "store", "--json"], cwd=tmp_path, env={"PYTHONPATH": ""})
    result = json.loads(done.stdout)
    assert result["exit_code"] == 0 and result["bundle"].startswith("sha256:"), result
    assert {c["status"] for c in result["cells"]} == {"passed"}
