"""The typed cell protocol: the host writes one request into the cell's read-only inputs, the cell writes one
report into its output directory. Stdlib dataclasses with to/from JSON, so both sides share one definition.

Input names in a request are relative to the directory the request file sits in (the cell's input
directory), so the same request works wherever a runner mounts the inputs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

REQUEST_FILE = "request.json"  # in the cell's input directory
REPORT_FILE = "report.json"  # in the cell's output directory


class Kind(StrEnum):
    export = "export"  # export one artifact (and validate it against the reference)
    reference = "reference"  # PyTorch reference outputs on the validation images
    demo = "demo"  # make a demo checkpoint from an architecture yaml
    probe = "probe"  # report what the cell can reach (doctor, isolation tests)


class Verdict(StrEnum):
    passed = "passed"
    failed = "failed"
    not_validated = "not-validated"  # the runtime cannot run here (structure checked), or nothing to compare


@dataclass(frozen=True)
class Validation:
    reference: str  # input name of the reference outputs directory
    conf: float
    iou: float
    match_iou: float
    tolerance: dict[str, float | None]
    # accuracy metric -> the largest drop from the reference's value on the labelled set (None: reported only)
    max_drop: dict[str, float | None] | None = None


@dataclass(frozen=True)
class Dataset:
    """A labelled set (images + labels), mounted as `<directory>/images/NNNNN.<ext>` with the labels of each image
    at `<directory>/labels/NNNNN.txt` (none: no object in it): the reference and every cell measure on it."""

    count: int
    digest: str  # of the images, the labels and the class names: other data, other keys
    names: dict[str, str]  # class id (as text, like JSON keys) -> name
    directory: str = "dataset"


@dataclass(frozen=True)
class Calibration:
    count: int
    digest: str
    directory: str = "calibration"  # input name of the images' directory


@dataclass(frozen=True)
class Demo:
    arch: str
    seed: int


@dataclass(frozen=True)
class CellRequest:
    kind: Kind
    task: str = ""
    format: str = ""
    precision: str = "fp32"
    options: dict[str, Any] = field(default_factory=dict)
    imgsz: int = 640
    batch: int = 1
    source_date_epoch: int | None = None  # recorded (and keyed); the cell reads SOURCE_DATE_EPOCH, set alike
    checkpoint: str | None = None  # input name
    validation: Validation | None = None
    calibration: Calibration | None = None
    dataset: Dataset | None = None  # reference and export cells: measure the task's accuracy on it
    images: tuple[str, ...] = ()  # reference: validation images (input names); none: the toolchain's samples
    demo: Demo | None = None
    connect: tuple[tuple[str, int], ...] | None = None  # probe: addresses to try instead of its defaults

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data; fields that are None are left out."""
        data: dict[str, Any] = {"kind": self.kind.value, "task": self.task, "format": self.format,
                                "precision": self.precision, "options": dict(self.options), "imgsz": self.imgsz,
                                "batch": self.batch, "images": list(self.images)}
        for name in ("source_date_epoch", "checkpoint", "validation", "calibration", "dataset", "demo"):
            value = getattr(self, name)
            if value is not None:  # optional fields left unset stay out, so older requests keep their keys
                data[name] = value if isinstance(value, (str, int)) else {
                    k: v for k, v in asdict(value).items() if v is not None}
        if self.connect is not None:
            data["connect"] = [list(target) for target in self.connect]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRequest:
        def part(kind: Any, name: str) -> Any:
            return kind(**data[name]) if data.get(name) is not None else None

        connect = data.get("connect")
        # Interned like the literals they were before the protocol: a pickle (a checkpoint) stores one object
        # once and refers back to it, so an equal but distinct str would change its bytes.
        return cls(
            kind=Kind(data["kind"]), task=sys.intern(data.get("task", "")), format=sys.intern(data.get("format", "")),
            precision=sys.intern(data.get("precision", "fp32")), options=dict(data.get("options", {})),
            imgsz=int(data.get("imgsz", 640)), batch=int(data.get("batch", 1)),
            source_date_epoch=data.get("source_date_epoch"), checkpoint=data.get("checkpoint"),
            validation=part(Validation, "validation"), calibration=part(Calibration, "calibration"),
            dataset=part(Dataset, "dataset"), images=tuple(data.get("images", ())), demo=part(Demo, "demo"),
            connect=tuple((str(h), int(p)) for h, p in connect) if connect is not None else None,
        )

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), sort_keys=True, indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> CellRequest:
        return cls.from_json(json.loads(path.read_text()))


@dataclass(frozen=True)
class CellReport:
    kind: Kind
    verdict: Verdict | None = None  # export cells only
    reason: str | None = None  # why not validated
    violations: tuple[str, ...] = ()
    artifact: str | None = None  # its name in the output directory
    peak_rss_mib: int = 0  # what the cell needed, for sizing machines and scheduling (a run fact, not an artifact)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase (imports, export, validate, ...)
    # Latency of the artifact in its runtime on this machine (cell/profile.py), or why it was not measured: run
    # facts like the phases, never part of the bundle.
    profile: dict[str, Any] | None = None
    profile_skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"kind": self.kind.value, "verdict": self.verdict.value if self.verdict else None,
                "reason": self.reason, "violations": list(self.violations), "artifact": self.artifact,
                "peak_rss_mib": self.peak_rss_mib, "phases": dict(self.phases)}
        if self.profile is not None:
            data["profile"] = self.profile
        if self.profile_skipped is not None:
            data["profile_skipped"] = self.profile_skipped
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellReport:
        verdict = data.get("verdict")
        return cls(Kind(data["kind"]), Verdict(verdict) if verdict else None, data.get("reason"),
                   tuple(data.get("violations", ())), data.get("artifact"), int(data.get("peak_rss_mib", 0)),
                   {str(k): float(v) for k, v in data.get("phases", {}).items()}, data.get("profile"),
                   data.get("profile_skipped"))

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), sort_keys=True, indent=2) + "\n")
        return path
