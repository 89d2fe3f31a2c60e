"""Runner backends, one module each, behind the `Runner` interface in `base`."""

from __future__ import annotations

from exportctl import errors
from exportctl.runners.base import Job, JobResult, Runner

BACKENDS = ("local", "docker")


def get_runner(backend: str = "auto", *, sandbox: str = "auto") -> Runner:
    """`auto` prefers Docker when a daemon answers a ping, else the local sandbox."""
    if backend == "docker" or backend == "auto":
        from exportctl.runners.docker import DockerRunner, daemon_reachable

        if backend == "docker" or daemon_reachable():
            return DockerRunner()
    if backend in ("auto", "local"):
        from exportctl.runners.local import LocalRunner

        return LocalRunner(sandbox)
    raise errors.BackendUnavailable(f"unknown backend '{backend}'", hint=f"use one of: auto, {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Job", "JobResult", "Runner", "get_runner"]
