"""Assemble a build's outputs into one OCI manifest: the bundle.

The bundle digest is the manifest digest, so the manifest holds only what determines the artifacts and
their validation: the canonical recipe, the lockfiles, the reference outputs, and per cell the artifact,
its metadata.json and validation.json. Run facts (times, host, backend, cache hits) go in run records.
A bundle is a pure function of its `Parts`: layer order is fixed (recipe, lockfiles and references by title,
cells by name), so equal inputs give equal bytes, and `exportctl merge` of partial builds (`--only`) made on one
machine gives exactly the bundle one full build there gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exportctl import EXPORTER_VERSION
from exportctl.canonical import canonical_json
from exportctl.env.locks import lock_digest, lock_path, platform_tag
from exportctl.paths import cell_code_digest
from exportctl.plan.matrix import Cell, Plan
from exportctl.store import mediatypes as mt
from exportctl.store.descriptor import Descriptor
from exportctl.store.layout import Store

CELL_FILES = {"metadata.json": (mt.WEIGHT_CONFIG_RAW, "metadata"), "validation.json": (mt.VALIDATION, "validation")}


@dataclass(frozen=True)
class CellResult:
    """What one cell left for the bundle: its stored outputs (by file name) and its verdict."""

    cell: Cell
    outputs: Mapping[str, Descriptor]
    status: str


def _layer(desc: Descriptor, media_type: str, title: str, role: str, cell: str | None = None) -> dict[str, Any]:
    annotations = {mt.ANNOTATION_TITLE: title, mt.ANNOTATION_FILEPATH: title, mt.ANNOTATION_ROLE: role}
    if cell:
        annotations[mt.ANNOTATION_CELL] = cell
    return Descriptor(media_type, desc.digest, desc.size, annotations).to_json()


@dataclass(frozen=True)
class CellPart:
    entry: dict[str, Any]  # the cell's record in the config (cell, status, artifact, size, key, platform)
    layers: tuple[dict[str, Any], ...]  # artifact, metadata.json, validation.json


@dataclass
class Parts:
    """Everything a bundle is made of; `compose` turns it into the manifest."""

    name: str
    checkpoint: str
    exporter_version: str
    cell_code: str
    platform: str  # where the build ran; cells record their own (a merge may bring others)
    recipe: dict[str, Any]  # the recipe layer
    locks: dict[str, dict[str, Any]] = field(default_factory=dict)  # title -> layer
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # title -> layer
    toolchains: dict[str, dict[str, Any]] = field(default_factory=dict)
    cells: dict[str, CellPart] = field(default_factory=dict)  # cell name -> part
    calibration: dict[str, Any] | None = None
    isolation_degraded: str | None = None


def assemble(store: Store, plan: Plan, checkpoint: str, reference: Mapping[str, Descriptor],
             results: list[CellResult], isolation_degraded: str | None) -> dict[str, Any]:
    recipe = plan.recipe
    recipe_blob = store.put_bytes(canonical_json(recipe.canonical()), mt.RECIPE)
    here = platform_tag()
    parts = Parts(recipe.name, checkpoint, EXPORTER_VERSION, cell_code_digest(), here,
                  _layer(recipe_blob, mt.RECIPE, "recipe.json", "recipe"), isolation_degraded=isolation_degraded)
    for toolchain in plan.toolchains:
        desc = store.put_file(lock_path(toolchain), mt.LOCKFILE)
        title = f"lockfiles/{lock_path(toolchain).name}"
        parts.locks[title] = _layer(desc, mt.LOCKFILE, title, "lockfile")
        parts.toolchains[toolchain] = {"lock": lock_digest(toolchain), "platform": here}
    for name, desc in reference.items():
        parts.references[f"reference/{name}"] = _layer(desc, mt.REFERENCE, f"reference/{name}", "reference")
    for result in results:
        cell = result.cell
        artifact = result.outputs[cell.format.artifact]
        weight_type = mt.weight_media_type(artifact.mediaType == mt.WEIGHT_TAR)  # directories arrive tarred
        layers = [_layer(artifact, weight_type, f"{cell.slug}/{cell.format.artifact}", "artifact", cell.name)]
        for file, (media_type, role) in CELL_FILES.items():
            if file in result.outputs:
                layers.append(_layer(result.outputs[file], media_type, f"{cell.slug}/{file}", role, cell.name))
        entry = {"cell": cell.name, "task": cell.request.task, "status": result.status, "artifact": artifact.digest,
                 "size": artifact.size,
                 "key": cell.key, "platform": here}
        parts.cells[cell.name] = CellPart(entry, tuple(layers))
    if plan.calibration is not None and any(r.cell.calibrates for r in results):
        parts.calibration = plan.calibration.record()
    return compose(store, parts)


def compose(store: Store, parts: Parts) -> dict[str, Any]:
    """The manifest of `parts` (its config blob is stored; the caller stores the manifest)."""
    layers = [parts.recipe, *(parts.locks[t] for t in sorted(parts.locks)),
              *(parts.references[t] for t in sorted(parts.references))]
    names = sorted(parts.cells)
    for name in names:
        layers += parts.cells[name].layers
    exportctl: dict[str, Any] = {
        "exporter_version": parts.exporter_version,
        "cell_code": parts.cell_code,
        "checkpoint": parts.checkpoint,
        "platform": parts.platform,
        "toolchains": dict(sorted(parts.toolchains.items())),
        "cells": [parts.cells[name].entry for name in names],
    }
    if parts.calibration is not None:
        exportctl["calibration"] = parts.calibration
    if parts.isolation_degraded:
        exportctl["isolation_degraded"] = parts.isolation_degraded
    config = {
        "descriptor": {"name": parts.name, "family": "yolo"},
        "config": {"format": sorted({n.split("/")[0] for n in names}),
                   "precision": sorted({n.split("/")[1] for n in names}),
                   # the checkpoint's Ultralytics task, as every cell recorded it
                   "task": sorted({str(parts.cells[n].entry.get("task")) for n in names if "task" in
                                   parts.cells[n].entry})},
        "modelfs": {"type": "layers", "diffIds": [layer["digest"] for layer in layers
                                                  if layer["mediaType"] in (mt.WEIGHT_RAW, mt.WEIGHT_TAR)]},
        "exportctl": exportctl,
    }
    config_desc = store.put_bytes(canonical_json(config), mt.MODEL_CONFIG)
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.MODEL_ARTIFACT_TYPE,
        "config": config_desc.to_json(),
        "layers": layers,
        "annotations": {mt.ANNOTATION_TITLE: parts.name, "dev.exportctl.checkpoint": parts.checkpoint},
    }
