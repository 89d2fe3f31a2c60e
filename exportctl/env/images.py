"""Toolchain images: render a self-contained Docker build context per toolchain from `images/`.

A context holds the Dockerfile (from `images/<toolchain>/Dockerfile.j2` and the pinned bases in
`images/base-images.toml`), the toolchain's lockfile, a wheelhouse of exactly the wheels the lock pins for
the image's Python and glibc (pip checks each against the lock's hashes), and the in-cell code. Building it
needs no network; its digest (over every file) names the image the Docker backend builds from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from exportctl import __version__, errors, proc
from exportctl.canonical import digest_file, digest_value, short
from exportctl.env.locks import lock_digest, lock_path, platform_tag, wheel_sources
from exportctl.env.pins import BasePin, pins
from exportctl.env.uvenv import NETWORK_VARIABLES, cache_root, file_lock
from exportctl.paths import CELL_DIR, IMAGES_DIR, PACKAGE_DIR, RUNTIMES_DIR, cell_code_digest
from exportctl.runners.base import CELL_CODE, CELL_ENV, CELL_HOME, CELL_OUT, Job, cell_environment
from exportctl.store.atomic import link_or_copy

CELL_UID = 10001  # the non-root user cells run as inside images
INTERPRETER_PIN = "python"  # every image's cell interpreter comes from this pin (TensorRT copies it in)
_PER_CELL = ("SOURCE_DATE_EPOCH", "EXPORTCTL_CELL")  # set by the runner for each cell, not baked in
_ARG = re.compile(r"^ARG\s+([A-Z_][A-Z0-9_]*)=(\S+)\s*$", re.MULTILINE)
MARKER = "context.json"


@dataclass(frozen=True)
class Context:
    path: Path
    digest: str  # over every file of the context: the image's name derives from it
    base_args: dict[str, str]  # build ARG -> pinned base image reference (the Dockerfile's defaults)


def template(toolchain: str) -> Path:
    path = IMAGES_DIR / toolchain / "Dockerfile.j2"
    if not path.is_file():
        raise errors.ConfigError(f"toolchain '{toolchain}' has no image template ({path})",
                                 hint=f"add images/{toolchain}/Dockerfile.j2 (extend _python/Dockerfile.j2), "
                                      "or build with --backend local")
    return path


def image_environment() -> dict[str, str]:
    """The cell environment every image bakes in: the local backend's, minus per-cell values."""
    env = cell_environment(Job(toolchain="", module="", args=(), inputs={}, output_dir=Path(CELL_OUT),
                               source_date_epoch=0))
    return {k: v for k, v in sorted(env.items()) if k not in _PER_CELL}


def labels(toolchain: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": f"exportctl-{toolchain}",
        "org.opencontainers.image.description": f"exportctl cell image for the {toolchain} toolchain",
        "org.opencontainers.image.source": f"images/{toolchain}/Dockerfile.j2",
        "org.opencontainers.image.version": __version__,
        "dev.exportctl.toolchain": toolchain,
        "dev.exportctl.lock": lock_digest(toolchain),
    }


def dockerfile(toolchain: str) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(IMAGES_DIR), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    all_pins = pins()
    text = env.get_template(template(toolchain).relative_to(IMAGES_DIR).as_posix()).render(
        toolchain=toolchain, pins=all_pins, base=all_pins[INTERPRETER_PIN], labels=labels(toolchain),
        env=image_environment(), uid=CELL_UID, env_root=CELL_ENV, code_root=CELL_CODE, home=CELL_HOME,
        out=CELL_OUT,
    )
    return text


def base_args(text: str) -> dict[str, str]:
    """The Dockerfile's base-image ARGs (those whose default is a pinned reference)."""
    references = {p.reference for p in pins().values()}
    return {name: value for name, value in _ARG.findall(text) if value in references}


def wheel_platforms(pin: BasePin) -> list[str]:
    """pip --platform values for an image: every manylinux its glibc runs, newest first (as pip on it would)."""
    arch = platform_tag().split("-", 1)[1]
    major, minor = (int(x) for x in pin.glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    return [*tags, f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]


def fetch_wheels(toolchain: str, dest: Path) -> None:
    """Put exactly the lock's wheels for the image's interpreter into `dest`, every one hash-checked.

    Wheels are kept in a cache shared by all toolchains; pip is asked offline first (so rendering works
    without a network once the cache is warm) and reaches the wheel sources only for what is missing.
    """
    pin = pins()[INTERPRETER_PIN]
    cache = cache_root() / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    target = ["--only-binary", ":all:", "--python-version", pin.python, "--implementation", "cp",
              "--abi", "cp" + pin.python.replace(".", ""),
              *(arg for platform in wheel_platforms(pin) for arg in ("--platform", platform))]
    common = [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps",
              "--require-hashes", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
              *target, "--requirement", str(lock_path(toolchain))]
    env = proc.clean_env({"HOME": str(cache_root()), **{k: os.environ[k] for k in NETWORK_VARIABLES
                                                          if k in os.environ}})
    offline = [*common, "--no-index", "--find-links", str(cache), "--dest", str(dest)]
    with file_lock(cache / ".lock"):
        done = proc.run(offline, env=env)
        if done.returncode != 0:
            online = proc.run([*common, *wheel_sources(), "--dest", str(cache)], env=env)
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


def digest_tree(root: Path) -> str:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return digest_value({p.relative_to(root).as_posix(): digest_file(p) for p in files})


def render_context(toolchain: str, dest: Path) -> Context:
    """Write the build context of `toolchain` into the new directory `dest`."""
    text = dockerfile(toolchain)
    dest.mkdir(parents=True)
    (dest / "Dockerfile").write_text(text)
    shutil.copyfile(lock_path(toolchain), dest / "lock.txt")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(CELL_DIR, dest / "exportctl" / "cell", ignore=ignore)
    for name in ("__init__.py", "errors.py"):  # the only exportctl modules the cell code imports
        shutil.copyfile(PACKAGE_DIR / name, dest / "exportctl" / name)
    shutil.copytree(RUNTIMES_DIR, dest / "runtimes", ignore=ignore)
    fetch_wheels(toolchain, dest / "wheelhouse")
    return Context(dest, digest_tree(dest), base_args(text))


def ensure_context(toolchain: str) -> Context:
    """The rendered context of `toolchain`, from the cache when its inputs are unchanged."""
    text = dockerfile(toolchain)
    key = digest_value({"dockerfile": text, "lock": lock_digest(toolchain), "code": cell_code_digest(),
                        "platforms": wheel_platforms(pins()[INTERPRETER_PIN])})
    home = cache_root() / "images" / f"{toolchain}-{short(key, 16)}"
    marker = home / MARKER
    if not marker.is_file():
        with file_lock(home.parent / ".lock"):
            if not marker.is_file():
                shutil.rmtree(home, ignore_errors=True)  # a marker-less leftover is never trusted
                context = render_context(toolchain, home / "context")
                marker.write_text(json.dumps({"toolchain": toolchain, "digest": context.digest}) + "\n")
    return Context(home / "context", json.loads(marker.read_text())["digest"], base_args(text))
