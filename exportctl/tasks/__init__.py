"""The registry of model tasks: every module of this package that defines `TASK` is one.

Adding a task is adding `tasks/<name>.py`: the registry finds it here, and nothing else in exportctl names it.
"""

from __future__ import annotations

import functools

from exportctl.discovery import discover
from exportctl.tasks.spec import MetadataFacts, TaskSpec, Thresholds, ToleranceKey

_NOT_TASKS = frozenset({"spec", "common", "instances"})  # what specs share


@functools.cache
def registry() -> dict[str, TaskSpec]:
    """Name -> spec, in name order."""
    return discover(__name__, __path__, "TASK", TaskSpec, _NOT_TASKS)


def get(name: str) -> TaskSpec | None:
    return registry().get(name)


def default_task() -> TaskSpec:
    """The task of recipes that name none (the recipe has no task field yet)."""
    return next(spec for spec in registry().values() if spec.default)


__all__ = ["MetadataFacts", "TaskSpec", "Thresholds", "ToleranceKey", "default_task", "get", "registry"]
