"""Ultralytics data yamls and image directories, read on the host: which image files a split names, in which order,
and the class names. Calibration (`calibration.images`) and the labelled set (`validation.dataset`) both read them.

A data yaml's `val` split is a directory, a list of them, or a .txt of image paths, relative to the yaml's `path`
(itself relative to the yaml). Nothing is ever downloaded: a split whose images are missing is an error, whatever
the yaml's `download` says. Every error names the recipe field that led here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exportctl import readlog
from exportctl.formats.ultralytics import CALIBRATION_SUFFIXES as IMAGE_SUFFIXES
from exportctl.recipe.model import Recipe


@dataclass(frozen=True)
class DataYaml:
    path: Path
    images: list[Path]  # the val split's images, in the split's order (directories: sorted by path)
    names: dict[int, str]  # class id -> name ({} when the yaml names none)


def images_in(directory: Path) -> list[Path]:
    """Image files under `directory` (recursively), sorted by their path relative to it."""
    found = [p for p in readlog.walk_files(directory) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def read_data_yaml(recipe: Recipe, path: Path, field: tuple[str, ...], purpose: str) -> DataYaml:
    """The val split of the data yaml at `path` (named by the recipe at `field`; `purpose`: what it is used for)."""
    try:
        readlog.note(path)
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise recipe.error(*field, problem=f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not data.get("val"):
        raise recipe.error(*field, problem=f"{path.name} has no 'val' split",
                           hint=f"exportctl {purpose} on the val split: add 'val: images/val' (or a list)")
    root = Path(str(data.get("path") or "."))
    root = root if root.is_absolute() else path.parent / root
    files: list[Path] = []
    for entry in data["val"] if isinstance(data["val"], list) else [data["val"]]:
        split = root / str(entry)
        if split.is_dir():
            files += images_in(split)
        elif split.is_file() and split.suffix == ".txt":  # one image path per line, relative to the list
            readlog.note(split)
            lines = [line.strip() for line in split.read_text().splitlines() if line.strip()]
            files += [p if p.is_absolute() else split.parent / p for p in map(Path, lines)]
        else:
            raise recipe.error(*field, problem=f"{path.name}: val split {split} does not exist",
                               hint="exportctl never downloads datasets: put the images there first")
    missing = [p for p in files if not readlog.is_file(p)]
    if missing:
        raise recipe.error(*field, problem=f"{path.name} lists {missing[0]}, which does not exist")
    return DataYaml(path, files, _names(recipe, path, data.get("names"), field))


def _names(recipe: Recipe, path: Path, names: Any, field: tuple[str, ...]) -> dict[int, str]:
    """Ultralytics accepts a list or an {id: name} mapping."""
    if names is None:
        return {}
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(k, int) and k >= 0 for k in names):
        raise recipe.error(*field, problem=f"{path.name}: 'names' must be a list or a mapping of class ids (0, 1, "
                                           f"...) to names", hint="e.g. names: {0: person, 1: bicycle}")
    return {int(k): str(v) for k, v in sorted(names.items())}
