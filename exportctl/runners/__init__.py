"""Runner backends, one module each, behind the `Runner` interface in `base`."""

from __future__ import annotations

from .. import errors
from .base import Job, JobResult, Runner

BACKENDS = ("local",)


def get_runner(backend: str = "auto", *, sandbox: str = "auto") -> Runner:
    if backend in ("auto", "local"):
        from .local import LocalRunner

        return LocalRunner(sandbox)
    raise errors.BackendUnavailable(f"unknown backend '{backend}'", hint=f"use one of: auto, {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Job", "JobResult", "Runner", "get_runner"]
