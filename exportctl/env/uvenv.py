"""Toolchain environments for the local backend: one virtual environment per lockfile digest.

Created by uv from the lock with hashes required, in a scratch directory renamed into place when complete,
so a crash or Ctrl-C never leaves a half environment that a later build would trust. uv runs without the
host's configuration (`--no-config`, no PIP_*/UV_* variables): only the lock decides what is installed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from exportctl import errors, proc
from exportctl.canonical import short
from exportctl.env.locks import lock_digest, lock_path, wheel_sources

MARKER = ".exportctl-env.json"
# How to reach a wheel source (TLS roots, proxies): never what gets installed, so uv may see them.
NETWORK_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
                     "https_proxy", "http_proxy", "no_proxy")
LOCK_PYTHON = (3, 11)


def cache_root() -> Path:
    if explicit := os.environ.get("EXPORTCTL_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "exportctl"


def installer_environment() -> dict[str, str]:
    """The whole process environment of uv and of pip (the wheelhouse): nothing that says what to install."""
    return proc.clean_env({"HOME": str(cache_root()),
                           **{k: os.environ[k] for k in NETWORK_VARIABLES if k in os.environ}})


def uv_binary() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def env_dir(toolchain: str) -> Path:
    return cache_root() / "envs" / f"{toolchain}-{short(lock_digest(toolchain), 16)}"


def ensure_env(toolchain: str) -> tuple[Path, bool]:
    """The environment for `toolchain`'s lock, creating it if needed. Returns (path, created_now)."""
    target = env_dir(toolchain)
    if (target / MARKER).is_file():
        return target, False
    with file_lock(target.parent / ".lock"):
        if (target / MARKER).is_file():
            return target, False
        scratch = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            _create(toolchain, scratch)
            shutil.rmtree(target, ignore_errors=True)  # a marker-less leftover is never trusted
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target, True


def _create(toolchain: str, scratch: Path) -> None:
    uv = uv_binary()
    env = installer_environment()
    common = ["--no-config", "--cache-dir", str(cache_root() / "uv")]
    python = sys.executable if sys.version_info[:2] == LOCK_PYTHON else ".".join(map(str, LOCK_PYTHON))
    # Bytecode is compiled here because cells cannot write it (their env is read-only): saves seconds per cell.
    steps = [
        [uv, "venv", *common, "--quiet", "--relocatable", "--python", python, str(scratch)],
        [uv, "pip", "sync", *common, "--require-hashes", "--compile-bytecode",
         "--python", str(scratch / "bin" / "python"), *wheel_sources(), str(lock_path(toolchain))],
    ]
    for argv in steps:
        done = proc.run(argv, env=env)
        if done.returncode != 0:
            raise errors.EnvironmentFailed(
                f"could not create the '{toolchain}' environment from {lock_path(toolchain).name}:\n{done.tail(15)}",
                hint="check that the wheel sources are reachable (EXPORTCTL_INDEX_URL, EXPORTCTL_FIND_LINKS); "
                     "a hash mismatch means a source serves different bytes than the lock pins",
            )
    (scratch / MARKER).write_text(json.dumps({"toolchain": toolchain, "lock": lock_digest(toolchain)}) + "\n")


def base_interpreter_prefix(env: Path) -> Path:
    """The prefix of the interpreter a venv links to (it must be visible inside the sandbox too)."""
    for line in (env / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip()).resolve().parent
    raise errors.EnvironmentFailed(f"{env}/pyvenv.cfg names no base interpreter", hint=f"delete {env} and rebuild")
