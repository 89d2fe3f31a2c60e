"""A build with degraded isolation says so before the first cell runs and again under the summary."""

from __future__ import annotations

import pytest

from tests.conftest import QUICKSTART, exportctl

pytestmark = pytest.mark.slow


def test_unshare_build_announces_degraded_isolation_before_the_first_cell(tmp_path) -> None:
    done = exportctl("build", QUICKSTART, "--sandbox", "unshare", "--only", "torchscript", "--jobs", "1",
                     store=tmp_path / "store")
    lines = done.stderr.splitlines()
    warning = next(i for i, line in enumerate(lines) if line.startswith("isolation degraded: network cut"))
    first_cell = next(i for i, line in enumerate(lines) if "torchscript/fp32: running" in line)
    checkpoint = next(i for i, line in enumerate(lines) if "checkpoint: running" in line)
    assert warning < min(first_cell, checkpoint), done.stderr
    summary = done.stdout.splitlines()
    assert any(line.startswith("isolation degraded: network cut") for line in summary), done.stdout
    assert summary[-1].startswith("bundle sha256:")
