"""The registry of model tasks: every module of this package that defines `TASK` is one.

Adding a task is adding `tasks/<name>.py`: the registry finds it here, and nothing else in exportctl names it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from exportctl.tasks.spec import MetadataFacts, TaskSpec, Thresholds, ToleranceKey

_NOT_TASKS = {"spec"}


@functools.cache
def registry() -> dict[str, TaskSpec]:
    """Task name -> spec, in name order."""
    found: dict[str, TaskSpec] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name in _NOT_TASKS or module.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TASK", None)
        if isinstance(spec, TaskSpec):
            found[spec.name] = spec
    return found


def get(name: str) -> TaskSpec | None:
    return registry().get(name)


def default_task() -> TaskSpec:
    """The task of recipes that name none (the recipe has no task field yet)."""
    return next(spec for spec in registry().values() if spec.default)


__all__ = ["MetadataFacts", "TaskSpec", "Thresholds", "ToleranceKey", "default_task", "get", "registry"]
