"""The labelled set (`validation.dataset`): which images and labels, their class names, and their digest.

An Ultralytics data yaml's `val` split gives the images (the first `count` in path order); each image's labels
are where Ultralytics looks for them (the last `/images/` of its path becomes `/labels/`, the suffix `.txt`; no
file: no object in that image). Labels are checked here, so a bad file is a configuration error that names it
and its line, not a failure inside a cell. The digest covers images, labels and names: it goes into the keys of
the reference and of every cell that measures on the set, and the files are mounted read-only into those cells.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import readlog
from exportctl.canonical import digest_file, digest_value
from exportctl.cell.protocol import Dataset
from exportctl.plan.datayaml import read_data_yaml
from exportctl.recipe.model import Recipe

FIELD = ("validation", "dataset", "data")
MAX_LABEL_BYTES = 1 << 20  # a label file is a few lines per object


@dataclass(frozen=True)
class LabelledSet:
    source: str  # the data yaml, by directory and name (host paths stay out of bundles)
    images: tuple[Path, ...]
    labels: tuple[Path | None, ...]  # per image; None: the image has no object
    names: dict[int, str]
    digest: str  # of images, labels and names (`content_digest`)

    def mounts(self, prefix: str = "dataset") -> dict[str, Path]:
        """Cell input names -> files, numbered in the set's order (labels beside their image's number)."""
        found = {f"{prefix}/images/{i:05d}{p.suffix.lower()}": p for i, p in enumerate(self.images)}
        found.update({f"{prefix}/labels/{i:05d}.txt": p for i, p in enumerate(self.labels) if p is not None})
        return found

    def request(self, prefix: str = "dataset") -> Dataset:
        return Dataset(count=len(self.images), digest=self.digest,
                       names={str(k): v for k, v in self.names.items()}, directory=prefix)

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "count": len(self.images), "digest": self.digest}


def content_digest(images: tuple[Path, ...], labels: tuple[Path | None, ...], names: dict[int, str]) -> str:
    return digest_value({"images": [digest_file(p) for p in images],
                         "labels": [digest_file(p) if p else None for p in labels],
                         "names": {str(k): v for k, v in names.items()}})


def label_path(image: Path) -> Path:
    """Where Ultralytics reads an image's labels (`img2label_paths`)."""
    marker, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = labels.join(str(image).rsplit(marker, 1))
    return Path(text).with_suffix(".txt")


def select_dataset(recipe: Recipe) -> LabelledSet | None:
    spec = recipe.validation.dataset
    if spec is None:
        return None
    path = recipe.resolve(spec.data)
    if not (path.is_file() and path.suffix in (".yaml", ".yml")):
        raise recipe.error(*FIELD, problem=f"{path} is not a data yaml file",
                           hint="give an Ultralytics data yaml (val split and names), relative to the recipe")
    data = read_data_yaml(recipe, path, FIELD, "measures accuracy")
    if not data.images:
        raise recipe.error(*FIELD, problem=f"{path.name}: the val split has no images")
    if not data.names:
        raise recipe.error(*FIELD, problem=f"{path.name} has no 'names'",
                           hint="list the class names in the order of the label files' class ids")
    images = data.images
    if spec.count is not None:
        if spec.count > len(images):
            raise recipe.error("validation", "dataset", "count",
                               problem=f"asks for {spec.count} images, {path.name}'s val split has {len(images)}",
                               hint=f"lower count to at most {len(images)}, or leave it out to use all of them")
        images = images[: spec.count]
    labels = tuple(p if readlog.is_file(p) else None for p in map(label_path, images))
    for label in labels:
        if label is not None:
            _check_labels(recipe, label, len(data.names))
    if not any(labels):
        raise recipe.error(*FIELD, problem=f"{path.name}: no label file for any of its {len(images)} images "
                                           f"(looked for {label_path(images[0])})",
                           hint="labels live beside the images with '/images/' replaced by '/labels/' (.txt)")
    return LabelledSet(f"{path.parent.name}/{path.name}", tuple(images), labels, data.names,
                       content_digest(tuple(images), labels, data.names))


def _check_labels(recipe: Recipe, path: Path, classes: int) -> None:
    """Each line: a class id among the names, then at least four finite numbers (a box, or a polygon)."""
    if path.stat().st_size > MAX_LABEL_BYTES:
        raise recipe.error(*FIELD, problem=f"label file {path} is larger than {MAX_LABEL_BYTES} bytes")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise recipe.error(*FIELD, problem=f"cannot read label file {path}: {exc}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"label file {path}:{number}"
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise recipe.error(*FIELD, problem=f"{where}: not numbers: {line.strip()[:80]!r}",
                               hint="each line: class x_center y_center width height (normalized)") from None
        if len(values) < 5 or not all(math.isfinite(v) for v in values):
            raise recipe.error(*FIELD, problem=f"{where}: expected a class id and at least 4 finite numbers, got "
                                               f"{line.strip()[:80]!r}",
                               hint="each line: class x_center y_center width height (normalized)")
        if not (values[0].is_integer() and 0 <= values[0] < classes):
            raise recipe.error(*FIELD, problem=f"{where}: class {values[0]:g} is not one of the data yaml's "
                                               f"{classes} names (0-{classes - 1})")
