"""Registries that are folders: every module of a package that defines a spec object is one entry.

`formats/` and `tasks/` are such packages: adding a format or a task is adding a module, and nothing else in
exportctl names it (tests/unit/test_registries.py holds that). Stdlib only: cells import it too.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


Spec = TypeVar("Spec", bound=Named)


def discover(package: str, path: Iterable[str], attribute: str, kind: type[Spec],
             skip: frozenset[str] = frozenset()) -> dict[str, Spec]:
    """`spec.name -> spec` for each module of `package` (except `skip` and private ones) whose `attribute`
    is a `kind`, in module-name order."""
    found: dict[str, Spec] = {}
    for module in sorted(pkgutil.iter_modules(list(path)), key=lambda m: m.name):
        if module.name in skip or module.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{package}.{module.name}"), attribute, None)
        if isinstance(spec, kind):
            found[str(spec.name)] = spec
    return found
