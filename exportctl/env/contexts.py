"""Docker build contexts: one self-contained directory per toolchain, named by the digest of its files.

A context holds the rendered Dockerfile (`templates`), the toolchain's lockfile, a wheelhouse of exactly the
wheels the lock pins for the image's Python and glibc (`wheelhouse`), and the in-cell code. Building it needs
no network; its digest (`canonical.digest_tree`, over every file) names the image the Docker backend builds.
Rendered contexts are cached by the digest of their inputs, so an unchanged toolchain is rendered once.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from exportctl.canonical import digest_tree, digest_value, short
from exportctl.env.locks import lock_digest, lock_path
from exportctl.env.pins import pins
from exportctl.env.templates import INTERPRETER_PIN, base_args, dockerfile
from exportctl.env.uvenv import cache_root, file_lock
from exportctl.env.wheelhouse import fetch_wheels, wheel_platforms
from exportctl.paths import cell_code_digest, cell_code_files

MARKER = "context.json"


@dataclass(frozen=True)
class Context:
    path: Path
    digest: str  # over every file of the context: the image's name derives from it
    base_args: dict[str, str]  # build ARG -> pinned base image reference (the Dockerfile's defaults)


def render_context(toolchain: str, dest: Path) -> Context:
    """Write the build context of `toolchain` into the new directory `dest`."""
    text = dockerfile(toolchain)
    dest.mkdir(parents=True)
    (dest / "Dockerfile").write_text(text)
    shutil.copyfile(lock_path(toolchain), dest / "lock.txt")
    for name, source in cell_code_files().items():  # the Dockerfile copies exportctl/ and runtimes/
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name)
    fetch_wheels(toolchain, pins()[INTERPRETER_PIN], dest / "wheelhouse")
    return Context(dest, digest_tree(dest), base_args(text))


def _home(toolchain: str, text: str) -> Path:
    key = digest_value({"dockerfile": text, "lock": lock_digest(toolchain), "code": cell_code_digest(),
                        "platforms": wheel_platforms(pins()[INTERPRETER_PIN])})
    return cache_root() / "images" / f"{toolchain}-{short(key, 16)}"


def cached_context(toolchain: str) -> Context | None:
    """The rendered context of `toolchain` if it is already cached (nothing is rendered or fetched)."""
    text = dockerfile(toolchain)
    marker = _home(toolchain, text) / MARKER
    if not marker.is_file():
        return None
    return Context(marker.parent / "context", str(json.loads(marker.read_text())["digest"]), base_args(text))


def ensure_context(toolchain: str) -> Context:
    """The rendered context of `toolchain`, from the cache when its inputs are unchanged."""
    text = dockerfile(toolchain)
    home = _home(toolchain, text)
    marker = home / MARKER
    if not marker.is_file():
        with file_lock(home.parent / ".lock"):
            if not marker.is_file():
                shutil.rmtree(home, ignore_errors=True)  # a marker-less leftover is never trusted
                context = render_context(toolchain, home / "context")
                marker.write_text(json.dumps({"toolchain": toolchain, "digest": context.digest}) + "\n")
    return Context(home / "context", str(json.loads(marker.read_text())["digest"]), base_args(text))
