"""Toolchain Dockerfiles: `images/<toolchain>/Dockerfile.j2` rendered with the pinned base images.

Rendering needs no network and no daemon, and it is deterministic: the same template, pins, lock digest and
cell environment give the same bytes (tests/golden/Dockerfile.* hold them). Every image bakes in the local
backend's cell environment, so a cell sees the same world whichever backend runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

from exportctl import __version__, errors
from exportctl.cell.view import CELL_CODE, CELL_ENV, CELL_HOME, CELL_OUT, environment
from exportctl.env.locks import lock_digest
from exportctl.env.pins import pins
from exportctl.paths import IMAGES_DIR

CELL_UID = 10001  # the non-root user cells run as inside images
INTERPRETER_PIN = "python"  # every image's cell interpreter comes from this pin (TensorRT copies it in)
_PER_CELL = ("SOURCE_DATE_EPOCH", "EXPORTCTL_CELL")  # set by the runner for each cell, not baked in
_ARG = re.compile(r"^ARG\s+([A-Z_][A-Z0-9_]*)=(\S+)\s*$", re.MULTILINE)


def template(toolchain: str) -> Path:
    """The toolchain's template file, or a ConfigError saying how to add one."""
    path = IMAGES_DIR / toolchain / "Dockerfile.j2"
    if not path.is_file():
        raise errors.ConfigError(f"toolchain '{toolchain}' has no image template ({path})",
                                 hint=f"add images/{toolchain}/Dockerfile.j2 (extend _python/Dockerfile.j2), "
                                      "or build with --backend local")
    return path


def image_environment() -> dict[str, str]:
    """The cell environment every image bakes in: the local backend's, minus per-cell values."""
    env = environment(source_date_epoch=0, label="")
    return {k: v for k, v in sorted(env.items()) if k not in _PER_CELL}


def labels(toolchain: str) -> dict[str, str]:
    """OCI labels of the toolchain's image; the lock digest lets a stale install stage be found and pruned."""
    return {
        "org.opencontainers.image.title": f"exportctl-{toolchain}",
        "org.opencontainers.image.description": f"exportctl cell image for the {toolchain} toolchain",
        "org.opencontainers.image.source": f"images/{toolchain}/Dockerfile.j2",
        "org.opencontainers.image.version": __version__,
        "dev.exportctl.toolchain": toolchain,
        "dev.exportctl.lock": lock_digest(toolchain),
    }


def dockerfile(toolchain: str) -> str:
    """The rendered Dockerfile of `toolchain` (text, exactly as written into its build context)."""
    import jinja2  # host-only and slow to import: only rendering needs it

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(IMAGES_DIR), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    all_pins = pins()
    return env.get_template(template(toolchain).relative_to(IMAGES_DIR).as_posix()).render(
        toolchain=toolchain, pins=all_pins, base=all_pins[INTERPRETER_PIN], labels=labels(toolchain),
        env=image_environment(), uid=CELL_UID, env_root=CELL_ENV, code_root=CELL_CODE, home=CELL_HOME,
        out=CELL_OUT,
    )


def base_args(text: str) -> dict[str, str]:
    """The Dockerfile's base-image ARGs (those whose default is a pinned reference)."""
    references = {p.reference for p in pins().values()}
    return {name: value for name, value in _ARG.findall(text) if value in references}
