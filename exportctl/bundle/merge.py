"""`exportctl merge`: combine bundles of one recipe and checkpoint (partial builds, `--only`) into one bundle.

The merged bundle is `bundle.compose` of the union of the parts, the function every build ends with, so
merging partial builds made on one machine gives the digest of one full build there. Parts must agree on
everything a bundle claims about them: the canonical recipe, the checkpoint, the in-cell code, the isolation,
the calibration set, and any cell present in two of them (same key, same bytes). A part built on another
platform (CoreML on a Mac) brings its own lockfiles, toolchains and reference outputs, kept under its platform
(`reference@darwin-arm64/...`, `torchscript@darwin-arm64`); every cell records the platform it ran on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from exportctl import errors
from exportctl.bundle import bom
from exportctl.bundle.assemble import CellPart, Parts, compose
from exportctl.bundle.read import BundleInfo, read_bundle
from exportctl.store import mediatypes as mt
from exportctl.store.layout import Store


def parts_of(info: BundleInfo) -> Parts:
    """A stored bundle taken apart again (the inverse of `compose`)."""
    recipe = [la.descriptor for la in info.by_role(mt.Role.RECIPE)]
    if len(recipe) != 1 or info.platform is None or info.exporter_version is None or info.cell_code is None:
        raise errors.ConfigError(f"bundle {info.digest} was not made by a build this exportctl can merge",
                                 hint="rebuild it with this version of exportctl")
    parts = Parts(info.name, info.checkpoint, info.exporter_version, info.cell_code, info.platform, recipe[0],
                  toolchains=info.toolchains, calibration=info.calibration,
                  isolation_degraded=info.isolation_degraded)
    parts.locks = {la.title: la.descriptor for la in info.by_role(mt.Role.LOCKFILE)}
    parts.references = {la.title: la.descriptor for la in info.by_role(mt.Role.REFERENCE)}
    for cell in info.cells:
        parts.cells[cell.name] = CellPart(cell.entry, tuple(la.descriptor for la in info.cell_layers(cell.name)))
    return parts


def _same(what: str, a: Any, b: Any, first: BundleInfo, other: BundleInfo, hint: str) -> None:
    if a != b:
        raise errors.ConfigError(f"cannot merge {other.digest} into {first.digest}: {what} differ ({a} vs {b})",
                                 hint=hint)


def _foreign(parts: Parts, platform: str) -> Parts:
    """A part from another platform: references and toolchains renamed under that platform, and its isolation
    (a Mac has no bubblewrap: `--sandbox none`) recorded on its own cells rather than on the whole bundle."""
    refs = {}
    for title, raw in parts.references.items():
        renamed = title.replace("reference/", f"reference@{platform}/", 1)
        refs[renamed] = {**raw, "annotations": {**raw["annotations"], mt.ANNOTATION_TITLE: renamed,
                                                mt.ANNOTATION_FILEPATH: renamed}}
    parts.references = refs
    parts.toolchains = {f"{name}@{platform}": t for name, t in parts.toolchains.items()}
    if parts.isolation_degraded:
        parts.cells = {name: CellPart({**c.entry, "isolation_degraded": parts.isolation_degraded}, c.layers)
                       for name, c in parts.cells.items()}
        parts.isolation_degraded = None
    return parts


def merge_parts(infos: list[BundleInfo]) -> Parts:
    first, merged = infos[0], parts_of(infos[0])
    for info in infos[1:]:
        part = parts_of(info)
        if part.platform != merged.platform:
            part = _foreign(part, part.platform)
        for what, a, b, hint in (
            ("recipes", merged.recipe["digest"], part.recipe["digest"], "merge builds of the same recipe only"),
            ("checkpoints", merged.checkpoint, part.checkpoint, "merge builds of the same checkpoint only"),
            ("in-cell code", (merged.exporter_version, merged.cell_code), (part.exporter_version, part.cell_code),
             "build every part with the same exportctl version"),
            ("isolation", merged.isolation_degraded, part.isolation_degraded,
             "build every part with the same sandbox"),
        ):
            _same(what, a, b, first, info, hint)
        if part.calibration is not None and merged.calibration is not None:
            _same("calibration sets", merged.calibration, part.calibration, first, info,
                  "build every part with the same calibration images")
        for title, raw in {**part.references, **part.locks}.items():
            mine = merged.references.get(title) or merged.locks.get(title)
            if mine is not None:
                _same(title, mine["digest"], raw["digest"], first, info, "the two builds' inputs differ")
        for name, t in part.toolchains.items():
            if name in merged.toolchains:
                _same(f"toolchain {name} locks", merged.toolchains[name], t, first, info,
                      "build each toolchain's cells from one lockfile")
        for name, cell in part.cells.items():
            if name in merged.cells:  # built twice: both builds must have made the very same bytes
                _same(f"cell {name}", merged.cells[name].entry, cell.entry, first, info,
                      "a cell that differs between builds is not reproducible: rebuild it in one store")
        merged.references.update(part.references)
        merged.locks.update(part.locks)
        merged.toolchains.update(part.toolchains)
        merged.cells.update(part.cells)
        merged.calibration = merged.calibration or part.calibration
    return merged


def merge(store: Store, refs: list[str]) -> tuple[str, Parts]:
    """Merge the bundles `refs` (digests or unique prefixes) into one stored bundle; returns its digest."""
    if len(refs) < 2:
        raise errors.ConfigError("merge needs at least two bundles", hint="exportctl merge DIGEST DIGEST [...]")
    infos = [read_bundle(store, store.resolve(ref).digest) for ref in refs]
    parts = merge_parts(infos)
    manifest = compose(store, parts)
    desc = store.add_manifest(manifest, {mt.ANNOTATION_RECIPE: parts.name})
    now = dt.datetime.now(dt.UTC).isoformat()
    store.add_run_record(desc.digest, {"bundle": desc.digest, "recipe": parts.name, "started": now, "finished": now,
                                       "merged_from": [i.digest for i in infos], "cells": _built_cells(store, infos)})
    bom.attach(store, desc.digest)  # as a build does: the merged bundle has its own BOM
    return desc.digest, parts


def _built_cells(store: Store, infos: list[BundleInfo]) -> list[dict[str, Any]]:
    """Each cell's facts (phases, latency) from the newest run record of the part that brought it, so the merged
    bundle shows, e.g., a Mac's latency for its CoreML cells; a cell in several parts: the first part's."""
    found: dict[str, dict[str, Any]] = {}
    for info in infos:
        runs = store.run_records(info.digest)
        for cell in runs[-1].get("cells", []) if runs else []:
            found.setdefault(cell["cell"], {**cell, "part": info.digest})
    return [found[name] for name in sorted(found)]
