"""--require-isolation (and EXPORTCTL_REQUIRE_ISOLATION=1) refuse a degraded sandbox before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportctl import errors
from tests.conftest import QUICKSTART, exportctl


@pytest.mark.parametrize("how", ["flag", "env"])
def test_degraded_isolation_is_refused_with_exit_4(tmp_path: Path, how: str) -> None:
    store = tmp_path / "store"
    args = ["build", QUICKSTART, "--sandbox", "unshare", "--json"] + (["--require-isolation"] if how == "flag" else [])
    env = {"EXPORTCTL_REQUIRE_ISOLATION": "1"} if how == "env" else {}
    done = exportctl(*args, store=store, check=False, env=env)
    assert done.returncode == errors.SANDBOX_UNAVAILABLE, done.stderr
    failure = json.loads(done.stdout)
    assert "--require-isolation" in failure["error"] and "bubblewrap" in failure["hint"]
    assert not store.exists(), "nothing ran, nothing was stored"


def test_full_isolation_passes_the_requirement(tmp_path: Path) -> None:
    # bwrap is the README test command's prerequisite; the bad --only stops the build before any cell runs.
    done = exportctl("build", QUICKSTART, "--sandbox", "bwrap", "--require-isolation", "--only", "nosuchformat",
                     store=tmp_path / "store", check=False)
    assert done.returncode == errors.CONFIG_ERROR, done.stderr  # refused for the bad --only, not for isolation
    assert "isolation" not in done.stderr
