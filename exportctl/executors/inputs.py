"""A recipe's inputs as one OCI artifact, so cluster nodes get them by digest instead of by the submit host's paths.

The layers are the recipe file and every file it names (checkpoint, validation images, the calibration
directory, or a data yaml with the directory it sits in; the labelled set's data yaml with its directory),
titled by their path relative to the deepest directory holding them all. A node rebuilds that tree in its own
working directory, so the recipe's relative paths resolve there. The recipe's canonical form (what the bundle
hashes) names files by name and digest only, so where the tree lands does not change any key.

The coordinator may add *prepared actions*: the action cache entries of the demo checkpoint and the reference
outputs, which it computed once, with their blobs. A task puts them into its fresh store before it builds, so
its build answers both from the cache (their keys are the same on every node with the same installation)
instead of running torch again in every task. A node whose key differs (other isolation) just runs them.

The artifact goes to a registry (`Registry`) or to a directory every node mounts (`SharedDir`); both take
blobs by digest and hand them back checked as they stream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from exportctl.build.actions import ActionResult
from exportctl.canonical import canonical_json, digest_bytes, digest_file
from exportctl.errors import ConfigError, VerifyFailed
from exportctl.recipe.model import Recipe
from exportctl.registry.client import MAX_MANIFEST
from exportctl.store import mediatypes as mt
from exportctl.store.atomic import write_temp
from exportctl.store.layout import Store

INPUTS_TYPE = "application/vnd.exportctl.inputs.v1"
RECIPE_ROLE = "dev.exportctl.recipe-file"
ACTION_ROLE = "dev.exportctl.action"  # an action cache entry (JSON); its key in ACTION_KEY
ACTION_BLOB_ROLE = "dev.exportctl.action-blob"  # a blob an action cache entry names
ACTION_KEY = "dev.exportctl.action-key"
_EMPTY = b"{}"


class Sink(Protocol):
    def put_blob(self, digest: str, size: int, source: Path | bytes, mount_from: list[str]) -> None: ...

    def put_manifest(self, raw: bytes, media_type: str, target: str) -> Any: ...


class Source(Protocol):
    def get_manifest(self, target: str, *, missing_ok: bool = False) -> tuple[bytes, str] | None: ...

    def blob_chunks(self, digest: str, size: int, what: str) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class Layer:
    source: Path | bytes
    digest: str
    size: int
    annotations: dict[str, str]

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": "application/octet-stream", "digest": self.digest, "size": self.size,
                "annotations": self.annotations}


def input_files(recipe_file: Path, recipe: Recipe) -> list[Path]:
    files = [recipe_file.resolve()]
    if recipe.checkpoint.path is not None:
        files.append(recipe.resolve(recipe.checkpoint.path).resolve())
    files += [recipe.resolve(p).resolve() for p in recipe.validation.images]
    trees = [recipe.calibration.images] if recipe.calibration is not None else []
    trees += [recipe.validation.dataset.data] if recipe.validation.dataset is not None else []
    for named in trees:
        source = recipe.resolve(named).resolve()
        tree = source if source.is_dir() else source.parent  # a data yaml's images sit beside or below it
        files += sorted(p.resolve() for p in tree.rglob("*") if p.is_file())
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise ConfigError(f"recipe {recipe_file}: input file {missing[0]} does not exist",
                          hint="every file the recipe names must exist before a cluster build")
    return sorted(set(files))


def file_layers(recipe_file: Path, recipe: Recipe) -> list[Layer]:
    """The recipe and the files it names, titled relative to the deepest directory that holds them all."""
    files = input_files(recipe_file, recipe)
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    layers = []
    for path in files:
        annotations = {mt.ANNOTATION_TITLE: path.relative_to(root).as_posix()}
        if path == recipe_file.resolve():
            annotations[mt.ANNOTATION_ROLE] = RECIPE_ROLE
        layers.append(Layer(path, digest_file(path), path.stat().st_size, annotations))
    return layers


def title_of(layers: list[Layer], path: Path) -> str:
    """Where `path` (one of the input files) lands in a node's inputs tree."""
    return next(layer.annotations[mt.ANNOTATION_TITLE] for layer in layers if layer.source == path.resolve())


def action_layers(store: Store, results: Iterable[ActionResult]) -> list[Layer]:
    """Prepared actions: every blob an entry names (once), then the entries themselves."""
    blobs: dict[str, Layer] = {}
    entries = []
    for result in results:
        entry = result.to_json()
        for digest in entry["blobs"]:
            path = store.blob_path(digest)
            blobs.setdefault(digest, Layer(path, digest, path.stat().st_size, {mt.ANNOTATION_ROLE: ACTION_BLOB_ROLE}))
        raw = canonical_json(entry)
        entries.append(Layer(raw, digest_bytes(raw), len(raw), {mt.ANNOTATION_ROLE: ACTION_ROLE,
                                                                  ACTION_KEY: result.key}))
    return [*sorted(blobs.values(), key=lambda layer: layer.digest), *entries]


def manifest(layers: list[Layer]) -> bytes:
    """The inputs artifact's manifest, canonical: its digest is known before anything is uploaded."""
    return canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": INPUTS_TYPE,
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                      "digest": digest_bytes(_EMPTY), "size": len(_EMPTY)},
                           "layers": [layer.descriptor() for layer in layers]})


def push_inputs(sink: Sink, layers: list[Layer]) -> str:
    """Upload the layers and their manifest; returns the manifest's digest."""
    for layer in layers:
        sink.put_blob(layer.digest, layer.size, layer.source, [])
    sink.put_blob(digest_bytes(_EMPTY), len(_EMPTY), _EMPTY, [])
    raw = manifest(layers)
    sink.put_manifest(raw, mt.OCI_MANIFEST, digest_bytes(raw))
    return digest_bytes(raw)


def fetch_inputs(source: Source, digest: str, dest: Path, store: Store | None = None) -> Path:
    """Rebuild the inputs tree under `dest` and the prepared actions in `store` (every blob checked as it
    streams); returns the recipe's path."""
    found = source.get_manifest(digest)
    assert found is not None
    recipe: Path | None = None
    for layer in json.loads(found[0]).get("layers", []):
        annotations = layer.get("annotations") or {}
        role, title = annotations.get(mt.ANNOTATION_ROLE), str(annotations.get(mt.ANNOTATION_TITLE, ""))
        chunks = source.blob_chunks(layer["digest"], int(layer["size"]), title or str(role))
        if role in (ACTION_BLOB_ROLE, ACTION_ROLE):
            if store is not None:
                _import_action(store, role, annotations, layer, chunks)
            continue
        parts = PurePosixPath(title).parts
        if not title or PurePosixPath(title).is_absolute() or ".." in parts or "\\" in title:
            raise VerifyFailed(f"inputs {digest}: layer title '{title}' escapes the working directory")
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp, _, _ = write_temp(target.parent, chunks)
        os.replace(tmp, target)
        if role == RECIPE_ROLE:
            recipe = target
    if recipe is None:
        raise VerifyFailed(f"inputs {digest} carry no recipe file")
    return recipe


def _import_action(store: Store, role: str, annotations: dict[str, str], layer: dict[str, Any],
                   chunks: Iterator[bytes]) -> None:
    if role == ACTION_BLOB_ROLE:
        store.put_stream(chunks, "application/octet-stream", int(layer["size"]))
        return
    if int(layer["size"]) > MAX_MANIFEST:
        raise VerifyFailed(f"a prepared action entry of {layer['size']} bytes is larger than any exportctl writes")
    entry = json.loads(b"".join(chunks))
    store.cache_put(str(annotations.get(ACTION_KEY, "")), entry)  # refused unless its blobs came first
