"""Read a stored bundle back: its manifest, config, recipe, lockfiles and per-cell layers.

What bundle.py writes, this reads; audit, diff, rebuild, provenance and the index all start here, so the
layer roles and titles are interpreted in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from exportctl.errors import VerifyFailed
from exportctl.store import mediatypes as mt
from exportctl.store.layout import Store


@dataclass(frozen=True)
class Layer:
    title: str
    role: str
    cell: str | None
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class BundleInfo:
    digest: str
    size: int
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: tuple[Layer, ...]

    @property
    def name(self) -> str:
        return str(self.config.get("descriptor", {}).get("name", "?"))

    @property
    def exportctl(self) -> dict[str, Any]:
        return dict(self.config.get("exportctl", {}))

    @property
    def checkpoint(self) -> str:
        return str(self.exportctl.get("checkpoint", ""))

    @property
    def cells(self) -> list[dict[str, Any]]:
        return list(self.exportctl.get("cells", []))

    def by_role(self, role: str) -> list[Layer]:
        return [la for la in self.layers if la.role == role]

    def cell_layer(self, cell: str, role: str) -> Layer | None:
        return next((la for la in self.layers if la.cell == cell and la.role == role), None)


def read_bundle(store: Store, digest: str) -> BundleInfo:
    """The bundle `digest` (a full digest: resolve prefixes with `Store.resolve` first)."""
    raw = store.read_blob(digest)
    try:
        manifest = json.loads(raw)
        config = json.loads(store.read_blob(manifest["config"]["digest"]))
        layers = tuple(
            Layer(title=str(ann.get(mt.ANNOTATION_TITLE, "")), role=str(ann.get(mt.ANNOTATION_ROLE, "")),
                  cell=ann.get(mt.ANNOTATION_CELL), digest=la["digest"], size=int(la["size"]),
                  media_type=la["mediaType"])
            for la in manifest["layers"] for ann in [la.get("annotations") or {}])
    except (ValueError, KeyError, TypeError) as e:
        raise VerifyFailed(f"bundle {digest} is not a manifest exportctl wrote ({type(e).__name__})",
                           hint=f"run `exportctl verify {digest}`") from e
    return BundleInfo(digest, len(raw), manifest, config, layers)


def read_json_layer(store: Store, layer: Layer | None) -> Any:
    return None if layer is None else json.loads(store.read_blob(layer.digest))


def recipe_of(store: Store, info: BundleInfo) -> dict[str, Any]:
    layers = info.by_role(mt.Role.RECIPE)
    if not layers:
        raise VerifyFailed(f"bundle {info.digest} has no recipe layer")
    return dict(read_json_layer(store, layers[0]))
