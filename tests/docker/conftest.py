"""The docker tier's machine: a reachable Docker daemon (started here when root and none answers) and the
local base image. Skipped, with the reason, where neither is possible."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from exportctl.env.uvenv import cache_root
from tests.conftest import exportctl

from . import daemon as machine


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """DOCKER_HOST of a daemon for this session: the one already running, else a private dockerd (as root).

    The private daemon keeps its data root in the user cache so images survive between runs (a warm run
    reuses them); its socket is private, so nothing outside these tests sees it (`--backend auto` elsewhere
    keeps choosing the local backend).
    """
    existing = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if machine.ping(existing):
        yield existing
        return
    if os.geteuid() != 0:
        pytest.skip(f"docker tier: no Docker daemon answers at {existing} and only root can start one "
                    "(run as root, or start dockerd and set DOCKER_HOST)")
    machine.ensure_packages()
    if machine.ping(existing):  # installing docker.io started the system's daemon (where systemd runs)
        yield existing
        return
    run_dir = Path(tempfile.mkdtemp(prefix="exportctl-dockerd-"))
    started = machine.start_dockerd(run_dir, cache_root() / "docker-tier" / "data-root")
    try:
        yield started.host
    finally:
        _tidy(started.host)
        machine.stop_dockerd(started)
        shutil.rmtree(run_dir, ignore_errors=True)


def _tidy(host: str) -> None:
    """Drop what this tier's own data root accumulates: images of older contexts, install stages of older locks.

    Install stages of current locks stay: they are the builder's cache, so a change of the in-cell code
    rebuilds an image in seconds instead of reinstalling every wheel.
    """
    import docker

    from exportctl.env.locks import lock_digest
    from exportctl.formats import registry

    client = docker.DockerClient(base_url=host, timeout=120)
    current = {lock_digest(spec.toolchain) for spec in registry().values()}
    for stage in client.images.list(filters={"label": "dev.exportctl.stage=install"}):
        if stage.labels.get("dev.exportctl.lock") not in current:
            client.images.remove(stage.id, force=True)
    in_use = {c.image.id for c in client.containers.list(all=True)}
    newest: dict[str, tuple[str, str]] = {}
    for image in client.images.list(name="exportctl/*"):
        repo = image.tags[0].split(":")[0] if image.tags else ""
        if repo and (repo not in newest or image.attrs["Created"] > newest[repo][0]):
            newest[repo] = (image.attrs["Created"], image.id)
    keep = {image_id for _, image_id in newest.values()} | in_use
    for image in client.images.list(name="exportctl/*"):
        if image.id not in keep:
            client.images.remove(image.id, force=True)
    client.close()


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[object]:
    import docker

    client = docker.DockerClient(base_url=docker_host, timeout=None)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_host: str) -> str:
    """The local base, made the way users make it: `exportctl base-image` (debootstrap + import, cached)."""
    done = exportctl("base-image", "--json", env={"DOCKER_HOST": docker_host})
    facts = json.loads(done.stdout)
    assert facts["variable"] == "EXPORTCTL_BASE_IMAGE_PYTHON" and facts["recipe_digest"].startswith("sha256:")
    return str(facts["image"])


@pytest.fixture(scope="session")
def docker_env(docker_host: str, base_image: str) -> dict[str, str]:
    """Environment for `exportctl` subprocesses: this daemon, and the local base instead of the pinned one."""
    return {"DOCKER_HOST": docker_host, "EXPORTCTL_BASE_IMAGE_PYTHON": base_image}


@pytest.fixture
def docker_runner(docker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> object:
    """A DockerRunner in this process, talking to the tier's daemon."""
    from exportctl.runners.docker import DockerRunner

    for key, value in docker_env.items():
        monkeypatch.setenv(key, value)
    return DockerRunner()
