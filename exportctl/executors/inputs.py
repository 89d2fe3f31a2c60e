"""A recipe's inputs as one OCI artifact, so cluster nodes get them by digest instead of by the submit host's paths.

The layers are the recipe file and every file it names (checkpoint, validation images, the calibration
directory, or a data yaml with the directory it sits in; the labelled set's data yaml with its directory), titled
by their path relative to the deepest directory holding them all. A node rebuilds that tree in its own working
directory, so the recipe's relative paths resolve there. The recipe's canonical form (what the bundle hashes) names
files by name and digest only, so where the tree lands does not change any key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from exportctl.canonical import canonical_json, digest_bytes, digest_file
from exportctl.errors import ConfigError, VerifyFailed
from exportctl.recipe.model import Recipe
from exportctl.registry.client import Registry
from exportctl.store import mediatypes as mt
from exportctl.store.atomic import write_temp

INPUTS_TYPE = "application/vnd.exportctl.inputs.v1"
RECIPE_ROLE = "dev.exportctl.recipe-file"
_EMPTY = b"{}"


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


def push_inputs(registry: Registry, recipe_file: Path, recipe: Recipe) -> tuple[str, str]:
    """Upload the inputs; returns (manifest digest, the recipe's title inside the tree)."""
    files = input_files(recipe_file, recipe)
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    layers: list[dict[str, Any]] = []
    for path in files:
        title = path.relative_to(root).as_posix()
        digest, size = digest_file(path), path.stat().st_size
        registry.put_blob(digest, size, path, [])
        annotations = {mt.ANNOTATION_TITLE: title}
        if path == recipe_file.resolve():
            annotations[mt.ANNOTATION_ROLE] = RECIPE_ROLE
        layers.append({"mediaType": "application/octet-stream", "digest": digest, "size": size,
                       "annotations": annotations})
    registry.put_blob(digest_bytes(_EMPTY), len(_EMPTY), _EMPTY, [])
    manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": INPUTS_TYPE,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_bytes(_EMPTY),
                           "size": len(_EMPTY)}, "layers": layers}
    raw = canonical_json(manifest)
    registry.put_manifest(raw, mt.OCI_MANIFEST, digest_bytes(raw))
    return digest_bytes(raw), recipe_file.resolve().relative_to(root).as_posix()


def fetch_inputs(registry: Registry, digest: str, dest: Path) -> Path:
    """Rebuild the inputs tree under `dest` (every file checked as it streams); returns the recipe's path."""
    found = registry.get_manifest(digest)
    assert found is not None
    manifest = json.loads(found[0])
    recipe: Path | None = None
    for layer in manifest.get("layers", []):
        title = str((layer.get("annotations") or {}).get(mt.ANNOTATION_TITLE, ""))
        parts = PurePosixPath(title).parts
        if not title or PurePosixPath(title).is_absolute() or ".." in parts or "\\" in title:
            raise VerifyFailed(f"inputs {digest}: layer title '{title}' escapes the working directory")
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp, _, _ = write_temp(target.parent, registry.blob_chunks(layer["digest"], int(layer["size"]), title))
        os.replace(tmp, target)
        if (layer.get("annotations") or {}).get(mt.ANNOTATION_ROLE) == RECIPE_ROLE:
            recipe = target
    if recipe is None:
        raise VerifyFailed(f"inputs {digest} carry no recipe file")
    return recipe

