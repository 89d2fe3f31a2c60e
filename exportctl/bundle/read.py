"""Read a stored bundle back: its manifest, config, recipe, lockfiles, references and per-cell layers.

What bundle/assemble.py writes, this reads. It is the one reader of bundle contents: show, audit, diff, merge,
rebuild, provenance, verify and the catalog all start here, so the manifest is walked, the layer roles and
titles are interpreted and the config's fields are named in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from exportctl.errors import VerifyFailed
from exportctl.store import mediatypes as mt
from exportctl.store.layout import Store

# The layers each cell has, in the order a bundle lists them.
CELL_ROLES = (mt.Role.ARTIFACT, mt.Role.METADATA, mt.Role.VALIDATION)


@dataclass(frozen=True)
class Layer:
    title: str  # "" when the layer has no title annotation
    role: str
    cell: str | None
    digest: str
    size: int
    media_type: str
    # As stored: names are checked by verify, and merge re-composes manifests from the very descriptors.
    annotations: dict[str, str] = field(compare=False, repr=False)
    descriptor: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class CellRecord:
    """A cell's entry in the bundle config: what `ls` and `show` list without reading any layer."""

    name: str  # "<format>/<precision>"
    status: str | None
    artifact: str | None
    size: int | None
    key: str | None
    platform: str | None  # where the cell ran: a merged bundle may hold cells of several platforms
    isolation_degraded: str | None  # set on the cells of a merged part that ran with weaker isolation
    entry: dict[str, Any] = field(compare=False, repr=False)  # shown whole by `show`, compared whole by merge


@dataclass(frozen=True)
class BundleInfo:
    digest: str
    size: int
    config_digest: str
    config: dict[str, Any] = field(repr=False)
    layers: tuple[Layer, ...]
    cells: tuple[CellRecord, ...]

    def _field(self, key: str) -> Any:
        return (self.config.get("exportctl") or {}).get(key)

    @property
    def name(self) -> str:
        return str(self.config.get("descriptor", {}).get("name", "?"))

    @property
    def checkpoint(self) -> str:
        return str(self._field("checkpoint") or "")

    @property
    def exporter_version(self) -> str | None:
        return self._field("exporter_version")  # type: ignore[no-any-return]

    @property
    def cell_code(self) -> str | None:
        return self._field("cell_code")  # type: ignore[no-any-return]

    @property
    def platform(self) -> str | None:
        """Where the build ran; None for bundles made before platforms were recorded."""
        return self._field("platform")  # type: ignore[no-any-return]

    @property
    def toolchains(self) -> dict[str, dict[str, Any]]:
        return dict(self._field("toolchains") or {})

    @property
    def calibration(self) -> dict[str, Any] | None:
        return self._field("calibration")  # type: ignore[no-any-return]

    @property
    def isolation_degraded(self) -> str | None:
        return self._field("isolation_degraded")  # type: ignore[no-any-return]

    def by_role(self, role: str) -> list[Layer]:
        return [la for la in self.layers if la.role == role]

    def cell_layer(self, cell: str, role: str) -> Layer | None:
        return next((la for la in self.layers if la.cell == cell and la.role == role), None)

    def cell_layers(self, cell: str) -> list[Layer]:
        return [la for la in self.layers if la.cell == cell]


def _layer(raw: dict[str, Any]) -> Layer:
    ann = {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()}
    return Layer(title=ann.get(mt.ANNOTATION_TITLE, ""), role=ann.get(mt.ANNOTATION_ROLE, ""),
                 cell=ann.get(mt.ANNOTATION_CELL), digest=str(raw["digest"]), size=int(raw["size"]),
                 media_type=str(raw["mediaType"]), annotations=ann, descriptor=raw)


def _cell(entry: dict[str, Any]) -> CellRecord:
    size = entry.get("size")
    return CellRecord(name=str(entry["cell"]), status=entry.get("status"), artifact=entry.get("artifact"),
                      size=None if size is None else int(size), key=entry.get("key"), platform=entry.get("platform"),
                      isolation_degraded=entry.get("isolation_degraded"), entry=entry)


def read_bundle(store: Store, digest: str) -> BundleInfo:
    """The bundle `digest` (a full digest: resolve prefixes with `Store.resolve` first)."""
    raw = store.read_blob(digest)
    try:
        manifest = json.loads(raw)
        config = json.loads(store.read_blob(manifest["config"]["digest"]))
        layers = tuple(_layer(la) for la in manifest["layers"])
        cells = tuple(_cell(c) for c in (config.get("exportctl") or {}).get("cells", []))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise VerifyFailed(f"bundle {digest} is not a manifest exportctl wrote ({type(e).__name__})",
                           hint=f"run `exportctl verify {digest}`") from e
    return BundleInfo(digest, len(raw), str(manifest["config"]["digest"]), config, layers, cells)


def read_json_layer(store: Store, layer: Layer | None) -> Any:
    return None if layer is None else json.loads(store.read_blob(layer.digest))


def read_text_layer(store: Store, layer: Layer | None) -> str | None:
    return None if layer is None else store.read_blob(layer.digest).decode()


def recipe_of(store: Store, info: BundleInfo) -> dict[str, Any]:
    """The canonical recipe the bundle was built from."""
    layers = info.by_role(mt.Role.RECIPE)
    if not layers:
        raise VerifyFailed(f"bundle {info.digest} has no recipe layer")
    return dict(read_json_layer(store, layers[0]))


def validation_of(store: Store, info: BundleInfo, cell: str) -> dict[str, Any] | None:
    """The cell's validation.json, or None for a cell that was not validated."""
    found = read_json_layer(store, info.cell_layer(cell, mt.Role.VALIDATION))
    return None if found is None else dict(found)

