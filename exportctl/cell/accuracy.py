"""Accuracy on a labelled set, inside cells: the reference measures the task's standard metric with PyTorch
(`accuracy.json` among its outputs), each export cell measures the same on its artifact in its own runtime and
gates on the drop.

The set arrives as the host mounted it (plan/dataset.py): `<dir>/images/NNNNN.<ext>`, labels at
`<dir>/labels/NNNNN.txt` (no file: no object). Stdlib and numpy-free here; the task's hook does the measuring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl.cell.protocol import Dataset
from exportctl.tasks.spec import Gate, LabelledImage, RunModel, TaskSpec

ACCURACY_FILE = "accuracy.json"  # among the reference's outputs


@dataclass(frozen=True)
class LabelledSet:
    record: Dataset
    images: tuple[LabelledImage, ...]

    @property
    def names(self) -> dict[int, str]:
        return {int(k): v for k, v in self.record.names.items()}

    def describe(self) -> dict[str, Any]:
        """How validation.json and accuracy.json name the set."""
        return {"digest": self.record.digest, "images": len(self.images)}


def load(directory: Path, record: Dataset) -> LabelledSet:
    images = sorted(p for p in (directory / "images").iterdir() if p.is_file())
    if len(images) != record.count:
        raise RuntimeError(f"the labelled set has {len(images)} images mounted, its request says {record.count}")
    found = []
    for image in images:
        label = directory / "labels" / f"{image.stem}.txt"
        rows = label.read_text().splitlines() if label.is_file() else []
        found.append(LabelledImage(image, tuple(tuple(float(v) for v in row.split()) for row in rows if row.strip())))
    return LabelledSet(record, tuple(found))


def measure(task: TaskSpec, run: RunModel, labelled: LabelledSet, imgsz: int) -> dict[str, float]:
    if task.accuracy is None:
        raise RuntimeError(f"task {task.name} measures no accuracy on a labelled set (the plan refuses it)")
    return task.accuracy.measure(run, labelled.images, imgsz, labelled.names)


def write_reference(out: Path, labelled: LabelledSet, metrics: Mapping[str, float]) -> None:
    data = {"dataset": labelled.describe(), "metrics": dict(metrics)}
    (out / ACCURACY_FILE).write_text(json.dumps(data, sort_keys=True, indent=2) + "\n")


def compare(ref_dir: Path, labelled: LabelledSet, measured: Mapping[str, float] | None,
            max_drop: Mapping[str, float | None], why: str = "") -> tuple[dict[str, Any], list[Gate]]:
    """validation.json's `accuracy` and the gates on each drop a bound is set for (drop = reference - artifact).
    `measured` None: the artifact could not be measured (`why`), so its gates do not run."""
    reference = json.loads((ref_dir / ACCURACY_FILE).read_text())
    if reference["dataset"]["digest"] != labelled.record.digest:
        raise RuntimeError("the reference measured another labelled set than this cell's request names")
    metrics, gates = {}, []
    for name, ref_value in reference["metrics"].items():
        value = None if measured is None else measured[name]
        drop = None if value is None else ref_value - value
        limit = max_drop.get(name)
        metrics[name] = {"reference": ref_value, "artifact": value, "drop": drop, "max_drop": limit,
                         "ok": drop is not None and (limit is None or drop <= limit)}
        if limit is not None:
            gates.append(Gate(f"accuracy.{name}", drop, limit, upper=True, why="" if drop is not None else why))
    return {"dataset": labelled.describe(), "metrics": metrics}, gates
