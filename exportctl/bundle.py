"""Assemble a build's outputs into one OCI manifest: the bundle.

The bundle digest is the manifest digest, so the manifest holds only what determines the artifacts and
their validation: the canonical recipe, the lockfiles, the reference outputs, and per cell the artifact,
its metadata.json and validation.json. Run facts (times, host, backend, cache hits) go in run records.
Layer order is fixed (recipe, locks, reference, cells in plan order) so equal inputs give equal bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import EXPORTER_VERSION
from .actions import ActionResult
from .canonical import canonical_json
from .locks import lock_digest, lock_path
from .plan import Cell, Plan
from .sources import cell_code_digest
from .store import mediatypes as mt
from .store.layout import Descriptor, Store

CELL_FILES = {"metadata.json": (mt.WEIGHT_CONFIG_RAW, "metadata"), "validation.json": (mt.VALIDATION, "validation")}


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    result: ActionResult
    validation: dict[str, Any] | None

    @property
    def status(self) -> str:
        if self.validation is None:
            return "not-validated"
        return str(self.validation["status"])


def _layer(desc: Descriptor, media_type: str, title: str, role: str, cell: str | None = None) -> dict[str, Any]:
    annotations = {mt.ANNOTATION_TITLE: title, mt.ANNOTATION_FILEPATH: title, mt.ANNOTATION_ROLE: role}
    if cell:
        annotations[mt.ANNOTATION_CELL] = cell
    return Descriptor(media_type, desc.digest, desc.size, annotations).to_json()


def assemble(store: Store, plan: Plan, checkpoint: str, reference: ActionResult,
             outcomes: list[CellOutcome], isolation_degraded: str | None) -> dict[str, Any]:
    recipe = plan.recipe
    recipe_blob = store.put_bytes(canonical_json(recipe.canonical()), mt.RECIPE)
    layers = [_layer(recipe_blob, mt.RECIPE, "recipe.json", "recipe")]
    for toolchain in plan.toolchains:
        desc = store.put_file(lock_path(toolchain), mt.LOCKFILE)
        layers.append(_layer(desc, mt.LOCKFILE, f"lockfiles/{lock_path(toolchain).name}", "lockfile"))
    for name, desc in sorted(reference.outputs.items()):
        layers.append(_layer(desc, mt.REFERENCE, f"reference/{name}", "reference"))
    cells = []
    for outcome in outcomes:
        cell = outcome.cell
        artifact = outcome.result.blob(cell.toolchain.artifact)
        layers.append(_layer(artifact, mt.WEIGHT_RAW, f"{cell.slug}/{cell.toolchain.artifact}", "artifact", cell.name))
        for file, (media_type, role) in CELL_FILES.items():
            if file in outcome.result.outputs:
                layers.append(_layer(outcome.result.outputs[file], media_type, f"{cell.slug}/{file}", role, cell.name))
        cells.append({"cell": cell.name, "status": outcome.status, "artifact": artifact.digest,
                      "size": artifact.size, "key": cell.key})
    exportctl: dict[str, Any] = {
        "exporter_version": EXPORTER_VERSION,
        "cell_code": cell_code_digest(),
        "checkpoint": checkpoint,
        "toolchains": {t: {"lock": lock_digest(t)} for t in plan.toolchains},
        "cells": cells,
    }
    if isolation_degraded:
        exportctl["isolation_degraded"] = isolation_degraded
    config = {
        "descriptor": {"name": recipe.name, "family": "yolo"},
        "config": {"format": sorted({c.toolchain.name for c in plan.cells}),
                   "precision": sorted({c.precision.value for c in plan.cells})},
        "modelfs": {"type": "layers", "diffIds": [layer["digest"] for layer in layers
                                                  if layer["mediaType"] == mt.WEIGHT_RAW]},
        "exportctl": exportctl,
    }
    config_desc = store.put_bytes(canonical_json(config), mt.MODEL_CONFIG)
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.MODEL_ARTIFACT_TYPE,
        "config": config_desc.to_json(),
        "layers": layers,
        "annotations": {mt.ANNOTATION_TITLE: recipe.name, "dev.exportctl.checkpoint": checkpoint},
    }
