"""Calibration images for static quantization (int8, w8a16): which files, in which order, and their digest.

The recipe names a directory of images or an Ultralytics data yaml (its `val` split, the split Ultralytics
calibrates on); the first `count` images in path order are used. Their digests go into the cell keys of the
cells that calibrate, the files are mounted read-only into those cells only, and the bundle records the set.
Nothing is ever downloaded: a data yaml whose images are missing is an error, whatever its `download` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import errors
from exportctl.canonical import digest_file, digest_value
from exportctl.cell.protocol import Calibration
from exportctl.formats.ultralytics import CALIBRATION_RECOMMENDED, CALIBRATION_SUFFIXES
from exportctl.plan.datayaml import images_in, read_data_yaml
from exportctl.recipe.model import Recipe


@dataclass(frozen=True)
class CalibrationSet:
    source: str  # the recipe's `images` entry, by name (host paths stay out of bundles)
    files: tuple[Path, ...]
    digests: tuple[str, ...]

    @property
    def digest(self) -> str:
        return digest_value(list(self.digests))

    @property
    def warnings(self) -> tuple[str, ...]:
        if len(self.files) >= CALIBRATION_RECOMMENDED:
            return ()
        return (f"calibration uses {len(self.files)} images; Ultralytics recommends more than "
                f"{CALIBRATION_RECOMMENDED} for INT8 (quantized cells may be less accurate)",)

    def mounts(self, prefix: str = "calibration") -> dict[str, Path]:
        """Cell input names -> files; numbered so the cell sees the recipe's order, not the files' names."""
        return {f"{prefix}/{i:05d}{p.suffix.lower()}": p for i, p in enumerate(self.files)}

    def request(self, prefix: str = "calibration") -> Calibration:
        """What a calibrating cell's request (and so its key) holds about the set."""
        return Calibration(count=len(self.files), digest=self.digest, directory=prefix)

    def record(self) -> dict[str, Any]:
        """What the bundle records."""
        return {"source": self.source, "count": len(self.files), "digest": self.digest}


def select(recipe: Recipe) -> CalibrationSet:
    spec = recipe.calibration
    if spec is None:
        raise errors.ConfigError("the recipe has no calibration section")
    path = recipe.resolve(spec.images)
    if path.is_dir():
        files = images_in(path)
    elif path.is_file() and path.suffix in (".yaml", ".yml"):
        files = read_data_yaml(recipe, path, ("calibration", "images"), "calibrates").images
    else:
        raise recipe.error("calibration", "images",
                           problem=f"{path} is neither a directory of images nor a data yaml",
                           hint="give a directory of images, or an Ultralytics data yaml whose 'val' images exist")
    if not files:
        raise recipe.error("calibration", "images", problem=f"no images ({', '.join(CALIBRATION_SUFFIXES)}) in {path}",
                           hint="point it at the images static quantization should calibrate on")
    if spec.count is not None:
        if spec.count > len(files):
            raise recipe.error("calibration", "count", problem=f"asks for {spec.count} images, {path.name} has "
                                                               f"{len(files)}",
                               hint=f"lower count to at most {len(files)}, or leave it out to use all of them")
        files = files[: spec.count]
    return CalibrationSet(spec.images.name, tuple(files), tuple(digest_file(p) for p in files))
