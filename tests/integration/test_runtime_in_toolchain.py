"""yolo_runtime's tests that need OpenCV, ONNX Runtime, torch and Ultralytics (detection, and every other task's
decoders), run for real inside the ONNX toolchain environment (which has all four): on the bare host they skip,
here none may."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exportctl.env.uvenv import ensure_env
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
TESTS = [ROOT / "tests" / "unit" / f"test_runtime_{name}.py" for name in ("metrics", "tasks", "rtdetr")]


def _pytest_only(directory: Path) -> Path:
    """pytest and its pure-Python dependencies, linked from this interpreter (the toolchain has no pytest); the
    toolchain's own numpy/cv2/torch stay the ones imported."""
    import _pytest
    import iniconfig
    import packaging
    import pluggy
    import py  # pytest's shim module
    import pygments

    directory.mkdir()
    for module in (pytest, _pytest, py, pluggy, iniconfig, packaging, pygments):
        source = Path(module.__file__).parent if Path(module.__file__).name == "__init__.py" else Path(module.__file__)
        (directory / source.name).symlink_to(source)
    return directory


def test_runtime_tests_run_inside_a_toolchain_environment(tmp_path: Path) -> None:
    python = ensure_env("onnx")[0] / "bin" / "python"
    paths = [ROOT, ROOT / "runtimes" / "python", ROOT / "exportctl" / "cell" / "site", _pytest_only(tmp_path / "pt")]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "YOLO_OFFLINE": "1",
           "PYTHONPATH": ":".join(map(str, paths))}
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *map(str, TESTS)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "skipped" not in summary and " passed" in summary, summary
