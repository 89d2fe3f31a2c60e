"""Runner backends, one module each, behind the `Runner` interface in `base`.

This package's own names (BACKENDS, SANDBOXES) cost nothing to import: the CLI's options list them at start-up.
`Job`, `JobResult` and `Runner` are imported from `base` on first use, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from exportctl import errors

if TYPE_CHECKING:
    from exportctl.runners.base import Job, JobResult, Runner

BACKENDS = ("local", "docker")
SANDBOXES = ("bwrap", "unshare", "none")  # the local backend's --sandbox choices (besides auto)


def __getattr__(name: str) -> Any:
    if name in ("Job", "JobResult", "Runner"):
        from exportctl.runners import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_runner(backend: str = "auto", *, sandbox: str = "auto", toolchains: Sequence[str] = (),
               notice: Callable[[str], None] = lambda line: None) -> Runner:
    """`auto` uses Docker only when a daemon answers AND it can have every toolchain's image (the image, or its
    bases, present): a daemon without a reachable registry would otherwise fail where the local backend builds.
    Otherwise the local sandbox, with a one-line `notice` saying why.
    """
    if backend == "docker":
        from exportctl.runners.docker import DockerRunner

        return DockerRunner()
    if backend == "auto":
        from exportctl.runners.docker import DockerRunner, daemon_reachable

        if daemon_reachable():
            docker = DockerRunner()
            missing = [why for why in map(docker.missing, toolchains) if why is not None]
            if not missing:
                return docker
            notice(f"--backend auto: using the local backend, not docker ({'; '.join(missing)}; "
                   "`exportctl base-image` makes a local base offline)")
    if backend in ("auto", "local"):
        from exportctl.runners.local import LocalRunner

        return LocalRunner(sandbox)
    raise errors.BackendUnavailable(f"unknown backend '{backend}'", hint=f"use one of: auto, {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "SANDBOXES", "Job", "JobResult", "Runner", "get_runner"]
