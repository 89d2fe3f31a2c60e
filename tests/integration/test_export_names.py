"""Exported layouts name the bundle (org.opencontainers.image.ref.name), so OCI tools can address it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from exportctl import errors
from tests.conftest import exportctl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def umoci() -> str:
    """umoci from Debian, installed by the test when missing (as root, like the README's test command)."""
    if shutil.which("umoci") is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "umoci"], check=False, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    path = shutil.which("umoci")
    if path is None:
        pytest.fail("umoci is required: apt-get install umoci (the README's test command installs it)")
    return path


def test_umoci_lists_an_exported_bundle_by_its_names(quickstart_builds, umoci: str, tmp_path: Path) -> None:
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    layout = tmp_path / "layout"
    done = exportctl("export", digest, layout, "--tag", "release-1.0", "--json", store=store)
    default = f"quickstart-{digest.split(':')[1][:12]}"
    assert json.loads(done.stdout)["names"] == [default, "release-1.0"]
    listed = subprocess.run([umoci, "ls", "--layout", str(layout)], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == [default, "release-1.0"]
    for name in (default, "release-1.0"):  # skopeo addresses the bundle by either name
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:{name}"], capture_output=True, text=True,
                             check=True).stdout
        assert json.loads(raw)["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert exportctl("verify", layout).returncode == 0


def test_a_bad_tag_is_refused_naming_the_option(quickstart_builds, tmp_path: Path) -> None:
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    done = exportctl("export", digest, tmp_path / "layout", "--tag", "../escape", store=store, check=False)
    assert done.returncode == errors.CONFIG_ERROR and "--tag" in done.stderr
    assert not (tmp_path / "layout").exists()
