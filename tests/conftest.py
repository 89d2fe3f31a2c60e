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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from current output")


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
