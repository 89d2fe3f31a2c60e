"""The wheelhouse of an image: exactly the wheels a toolchain's lock pins, for the base image's interpreter.

Why pip downloads and uv does not: uv (0.5 to at least 0.13) has no download command (astral-sh/uv#3163);
`uv pip install --target` unpacks wheels instead of keeping them, and the image build installs from wheel
files with the image's own pip (the Dockerfile stays as it is). So pip fetches, but from exactly the inputs
uv gets when it builds a local environment, all decided in one place:

* what: the same lockfile (`locks.lock_path`), every wheel checked against its hashes (`--require-hashes`),
  nothing beyond it (`--no-deps`), wheels only (`--only-binary=:all:`);
* where from: the same `locks.wheel_sources()` arguments (`--index-url`/`--find-links` mean the same to both);
* what the installer sees of the host: the same `uvenv.installer_environment()` through `proc.run`, and pip's
  own configuration switched off as uv's is with `--no-config`: `--isolated` ignores pip.conf files and PIP_*
  variables (the environment holds none anyway);
* which platform: the base image's Python and glibc from its pin (`wheel_platforms`), not the host's.

The pip that runs is the one of exportctl's own interpreter, a declared dependency (pyproject.toml).
"""

from __future__ import annotations

import sys
from pathlib import Path

from exportctl import errors, proc
from exportctl.canonical import digest_file
from exportctl.env.locks import lock_path, platform_tag, wheel_sources
from exportctl.env.pins import BasePin
from exportctl.env.uvenv import cache_root, file_lock, installer_environment
from exportctl.store.atomic import link_or_copy

OLDEST_MANYLINUX_MINOR = 17  # manylinux_2_17 == manylinux2014, the oldest glibc tag pip still spells this way


def wheel_platforms(pin: BasePin) -> list[str]:
    """pip --platform values for an image: every manylinux its glibc runs, newest first (as pip on it would)."""
    arch = platform_tag().split("-", 1)[1]
    major, minor = (int(x) for x in pin.glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, OLDEST_MANYLINUX_MINOR - 1, -1)]
    return [*tags, f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]


def _download_argv(toolchain: str, pin: BasePin) -> list[str]:
    """`pip download` of the lock for the image's interpreter, blind to the host's pip configuration."""
    target = ["--only-binary", ":all:", "--python-version", pin.python, "--implementation", "cp",
              "--abi", "cp" + pin.python.replace(".", ""),
              *(arg for platform in wheel_platforms(pin) for arg in ("--platform", platform))]
    return [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--require-hashes",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
            *target, "--requirement", str(lock_path(toolchain))]


def fetch_wheels(toolchain: str, pin: BasePin, dest: Path) -> None:
    """Put exactly the lock's wheels for `pin`'s interpreter into `dest`, every one hash-checked.

    Wheels are kept in a cache shared by all toolchains; pip is asked offline first (so rendering works
    without a network once the cache is warm) and reaches the wheel sources only for what is missing.
    """
    cache = cache_root() / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    download = _download_argv(toolchain, pin)
    env = installer_environment()
    offline = [*download, "--no-index", "--find-links", str(cache), "--dest", str(dest)]
    with file_lock(cache / ".lock"):
        done = proc.run(offline, env=env)
        if done.returncode != 0:
            online = proc.run([*download, *wheel_sources(), "--dest", str(cache)], env=env)
            done = proc.run(offline, env=env) if online.returncode == 0 else online
        if done.returncode == 0:
            _share_with_cache(dest, cache)
    if done.returncode != 0:
        raise errors.EnvironmentFailed(
            f"could not collect the wheels of {lock_path(toolchain).name} for Python {pin.python} "
            f"(glibc {pin.glibc}):\n{done.tail(15)}",
            hint="check that the wheel sources are reachable (EXPORTCTL_INDEX_URL, EXPORTCTL_FIND_LINKS); "
                 "a hash mismatch means a source serves different bytes than the lock pins",
        )


def _share_with_cache(wheelhouse: Path, cache: Path) -> None:
    """pip copies wheels; hard links to the cache's identical files keep each rendered context small."""
    for wheel in wheelhouse.iterdir():
        cached = cache / wheel.name
        if cached.is_file() and digest_file(cached) == digest_file(wheel):
            wheel.unlink()
            link_or_copy(cached, wheel)
