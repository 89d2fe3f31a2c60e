"""Test tiers (markers in pyproject.toml): unmarked = fast unit tests; `slow` = real exports in sandboxed
toolchain environments; `docker` = needs a Docker daemon; `gpu` = needs an NVIDIA GPU; `registry` = a real
OCI registry (tests/registry starts Debian's docker-registry on 127.0.0.1; apt-installed when root).

The README's test command runs every tier this machine can: `slow` always (it needs only bubblewrap and
the package registries), `docker`/`gpu` when their hardware or daemon exists, reported as skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.regenerations import Regenerations
from tests.registry import service

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"
FULL_MATRIX = ROOT / "recipes" / "full-matrix.yaml"
DETECTOR = ROOT / "tests" / "fixtures" / "detector.pt"
DATASET = ROOT / "recipes" / "data" / "shapes-val" / "data.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from current output")


QUEUED = pytest.StashKey[Regenerations | str]()  # the regenerations, or why they could not start


def pytest_collection_finish(session: pytest.Session) -> None:
    """Queue the fixture regenerations the selected tests compare (tests/regenerations.py), in the order they run."""
    names = list(dict.fromkeys(str(m.args[0]) for item in session.items for m in item.iter_markers("regenerates")))
    if not names or session.config.option.collectonly:
        return
    from exportctl.env.uvenv import ensure_env

    try:
        python = ensure_env("torchscript")[0] / "bin" / "python"
    except Exception as exc:  # noqa: BLE001 - reported by each test that asks, not as a collection crash
        session.config.stash[QUEUED] = f"the torchscript environment could not be made: {exc}"
        return
    session.config.stash[QUEUED] = Regenerations(python, names)


def pytest_sessionfinish(session: pytest.Session) -> None:
    queued = session.config.stash.get(QUEUED, None)
    if isinstance(queued, Regenerations):
        queued.close()


@pytest.fixture(scope="session")
def regenerations(request: pytest.FixtureRequest) -> Regenerations:
    queued = request.config.stash.get(QUEUED, None)
    if not isinstance(queued, Regenerations):
        pytest.fail(queued or "no regeneration is queued: mark the test @pytest.mark.regenerates(NAME)")
    return queued


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def check_golden(name: str, text: str, update: bool) -> None:
    """Compare with tests/golden/<name>; only `--update-golden` writes it (a missing golden file fails)."""
    path = ROOT / "tests" / "golden" / name
    if update:
        path.write_text(text)
    if not path.exists():
        pytest.fail(f"golden file tests/golden/{name} is missing; write it with --update-golden and review it")
    assert text == path.read_text(), f"{name} differs from its golden file; rerun with --update-golden if intended"


def exportctl(*args: str | Path, store: Path | None = None, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as users and CI do."""
    full_env = {**os.environ, **(env or {})}
    if store is not None:
        full_env["EXPORTCTL_STORE"] = str(store)
    argv = [str(a) for a in args]
    if argv[:1] == ["build"] and not any(a.startswith("--backend") for a in argv):
        argv += ["--backend", "local"]  # tiers stay apart: only the docker tier asks for docker, explicitly
    done = subprocess.run([sys.executable, "-m", "exportctl", *argv], env=full_env,
                          capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"exportctl {args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


# Latency is measured in every cell by default (220 timed runs: up to 80 % of a small cell's time, 194 s of an
# RT-DETR demo cell's 239); tests that do not look at latency skip it. It is in no key: digests are unchanged.
NO_PROFILE = "--no-profile"


def build_json(recipe: Path, store: Path, *extra: str, check: bool = True) -> tuple[int, dict]:
    done = exportctl("build", recipe, "--json", *extra, store=store, check=check)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.fixture(scope="session")
def quickstart_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The quickstart built into two empty stores (environments are shared through the user cache), one cell at
    a time and measuring latency, two at once without (`--no-profile`): the bundle must depend on neither."""
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is required for the slow tier: apt-get install bubblewrap")
    base = tmp_path_factory.mktemp("quickstart")
    first, second = base / "store-a", base / "store-b"
    _, a = build_json(QUICKSTART, first, "--jobs", "1")
    _, b = build_json(QUICKSTART, second, "--jobs", "2", "--no-profile")
    return {"store": first, "other_store": second, "a": a, "b": b}


@pytest.fixture(scope="session")
def registry_tools() -> None:
    reason = service.ensure_packages()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def plain_registry(registry_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[service.Service]:
    """Debian's docker-registry on 127.0.0.1 without TLS or auth (registry tier; the hardening tests pull from it)."""
    with service.registry(tmp_path_factory.mktemp("registry-plain")) as running:
        yield running


def full_matrix_recipe(directory: Path, scenes: Path, text: str | None = None) -> Path:
    """recipes/full-matrix.yaml with its scenes, labelled set and checkpoint at absolute paths (the bundle keeps
    only names)."""
    text = (text or FULL_MATRIX.read_text()).replace("../tests/fixtures/scenes", str(scenes))
    text = text.replace("dataset: data/shapes-val/data.yaml", f"dataset: {DATASET}")
    path = directory / "full-matrix.yaml"
    path.write_text(text.replace("../tests/fixtures/detector.pt", str(DETECTOR)))
    return path


@dataclass
class MatrixBuild:
    """The full-matrix recipe building in the background (`exportctl build --json`) into its own store."""

    recipe: Path
    scenes: Path
    store: Path
    process: subprocess.Popen[str]
    _summary: dict[str, Any] | None = field(default=None, repr=False)

    def result(self) -> dict[str, Any]:
        """The build's JSON summary, once it finished (it must succeed)."""
        if self._summary is None:
            out, err = self.process.communicate()
            assert self.process.returncode == 0, err[-3000:]
            self._summary = json.loads(out)
        return self._summary


@pytest.fixture(scope="session")
def full_matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixBuild]:
    """Every format x precision on the trained test detector, built once per session. It runs in the background
    from the moment a test asks for it, so a fixture can build other things beside it (tests/integration/
    test_formats.py builds the partial bundles and regenerates the detector meanwhile); `.result()` waits."""
    from exportctl.env.uvenv import ensure_env
    from tests.fixtures.shapes import write_fixture_scenes

    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is required for the slow tier: apt-get install bubblewrap")
    base = tmp_path_factory.mktemp("matrix")
    write_fixture_scenes(base / "scenes")
    recipe = full_matrix_recipe(base, base / "scenes")
    for toolchain in ("torchscript", "onnx", "openvino", "litert", "coreml"):
        ensure_env(toolchain)  # once, before concurrent builds would race to create them
    store = base / "store-a"
    process = subprocess.Popen([sys.executable, "-m", "exportctl", "build", str(recipe), "--json", "--backend",
                                "local"], cwd=ROOT, text=True, env={**os.environ, "EXPORTCTL_STORE": str(store)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield MatrixBuild(recipe, base / "scenes", store, process)
    finally:
        if process.poll() is None:  # the session ended before anyone waited for it
            process.kill()
            process.communicate()


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    """A live TCP listener on every host address: cells must not reach it; it records what connected."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("0.0.0.0", 0))
    server.listen(4)
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()
