"""`--backend auto` with a daemon running: docker only when it can have the toolchain image or its base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import QUICKSTART, exportctl

pytestmark = pytest.mark.docker


def test_auto_falls_back_to_local_when_no_image_or_base_can_be_had(tmp_path: Path, docker_host: str) -> None:
    # A base no daemon holds (and no registry is reachable here): docker would fail to pull it.
    env = {"DOCKER_HOST": docker_host, "EXPORTCTL_BASE_IMAGE_PYTHON": "exportctl-missing-base:0"}
    store = tmp_path / "store"
    done = exportctl("build", QUICKSTART, "--backend", "auto", "--only", "torchscript", "--json", store=store,
                     env=env)
    notices = [line for line in done.stderr.splitlines() if line.startswith("--backend auto:")]
    assert len(notices) == 1 and "using the local backend" in notices[0], done.stderr
    assert "exportctl-missing-base:0" in notices[0] and "exportctl base-image" in notices[0]
    result = json.loads(done.stdout)
    assert result["exit_code"] == 0
    run = json.loads(exportctl("show", result["bundle"], "--json", store=store).stdout)["runs"][-1]
    assert run["isolation"]["backend"] == "local"


def test_auto_uses_docker_when_the_base_is_in_the_daemon(docker_env: dict[str, str]) -> None:
    from exportctl.runners import get_runner

    notices: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        for key, value in docker_env.items():
            patch.setenv(key, value)
        runner = get_runner("auto", toolchains=("torchscript",), notice=notices.append)
    assert runner.name == "docker" and not notices
