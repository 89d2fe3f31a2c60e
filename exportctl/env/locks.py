"""Lockfiles: which file pins a toolchain on this platform, its digest, and where its wheels may come from.

Hashes in the lock decide *what* is installed; the wheel sources below only say *where to look*. That is
why reading a find-links directory from the machine's pip configuration is safe: a wheel found there is
installed only if its hash is in the lock.
"""

from __future__ import annotations

import configparser
import functools
import os
import platform
import sys
from pathlib import Path

from exportctl import errors
from exportctl.canonical import digest_file
from exportctl.paths import LOCKFILES_DIR

_PIP_CONFIG_FILES = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")


def platform_tag() -> str:
    return f"{sys.platform}-{platform.machine().lower()}"


def lockfiles_dir() -> Path:
    # EXPORTCTL_LOCKFILES_DIR: a patched copy of lockfiles/ (trying a pin, rebuilding an old bundle's locks).
    return Path(os.environ.get("EXPORTCTL_LOCKFILES_DIR") or LOCKFILES_DIR)


def lock_path(toolchain: str, tag: str | None = None) -> Path:
    return lockfiles_dir() / f"{toolchain}-{tag or platform_tag()}.txt"


@functools.cache
def lock_digest(toolchain: str) -> str:
    path = lock_path(toolchain)
    if not path.is_file():
        raise errors.ConfigError(
            f"toolchain '{toolchain}' has no lockfile for {platform_tag()} (looked for {path})",
            hint="generate it with `nox -s lock` on a machine of this platform",
        )
    return digest_file(path)


def wheel_sources() -> list[str]:
    """Where wheels may be fetched from (never what: the lock's hashes decide), as installer arguments.

    The one source list of both installers: uv (local environments) and pip (image wheelhouses) spell
    `--index-url` and `--find-links` alike, so both get exactly these arguments.
    """
    args: list[str] = []
    if index := os.environ.get("EXPORTCTL_INDEX_URL"):
        args += ["--index-url", index]
    for link in find_links():
        args += ["--find-links", link]
    return args


def find_links() -> list[str]:
    """EXPORTCTL_FIND_LINKS (os.pathsep-separated), else the find-links the machine's pip configuration names."""
    explicit = os.environ.get("EXPORTCTL_FIND_LINKS")
    if explicit is not None:
        return [p for p in explicit.split(os.pathsep) if p]
    links: list[str] = []
    for name in _PIP_CONFIG_FILES:
        parser = configparser.ConfigParser()
        try:
            parser.read(os.path.expanduser(name))
        except configparser.Error:
            continue
        links += parser.get("global", "find-links", fallback="").split()
    links += os.environ.get("PIP_FIND_LINKS", "").split()
    return sorted(set(links))
