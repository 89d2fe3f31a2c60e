"""Cached actions: run an in-cell job once per key, keep its outputs as blobs, answer repeats from the cache.

The demo checkpoint, the reference outputs and every export cell are actions. An action's key is a digest
of everything that determines its outputs (see plan.py), so a cache hit is as good as a re-run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import errors
from exportctl.canonical import digest_value
from exportctl.cell.protocol import REPORT_FILE, CellReport
from exportctl.runners import Job, Runner
from exportctl.store.atomic import scratch_dir
from exportctl.store.descriptor import Descriptor
from exportctl.store.housekeeping import temp_root
from exportctl.store.layout import Store
from exportctl.store.mediatypes import WEIGHT_TAR
from exportctl.store.tarball import write_canonical_tar

# Exit codes whose outputs are worth keeping: success, and "exported but outside tolerances" (deterministic).
CACHEABLE = (errors.OK, errors.VALIDATION_FAILED)
LOG_MEDIA_TYPE = "text/plain; charset=utf-8"
BLOB_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ActionResult:
    key: str
    returncode: int
    outputs: dict[str, Descriptor]  # top-level output name -> blob (a directory is stored as a canonical tar)
    log: str  # digest of the log blob
    seconds: float
    cached: bool
    report: CellReport | None = None  # the cell's report (kept in the cache entry, not among the outputs)

    def blob(self, name: str) -> Descriptor:
        try:
            return self.outputs[name]
        except KeyError:
            raise errors.ExportFailed(f"action {self.key} produced no '{name}'",
                                      hint=f"see its log: exportctl cat {self.log}") from None

    def mounts(self, prefix: str, store: Store) -> dict[str, Path]:
        """This action's file outputs as read-only inputs of another job, under `prefix/`."""
        return {f"{prefix}/{name}": store.blob_path(d.digest) for name, d in self.outputs.items()
                if d.mediaType == BLOB_MEDIA_TYPE}

    def to_json(self) -> dict[str, Any]:
        data = {"returncode": self.returncode, "log": self.log, "seconds": round(self.seconds, 3),
                "outputs": {k: v.to_json() for k, v in self.outputs.items()},
                "blobs": sorted({self.log, *(d.digest for d in self.outputs.values())})}
        if self.report is not None:
            data["report"] = self.report.to_json()
        return data

    @classmethod
    def from_json(cls, key: str, data: dict[str, Any]) -> ActionResult:
        outputs = {k: Descriptor.from_json(v) for k, v in data["outputs"].items()}
        report = CellReport.from_json(data["report"]) if data.get("report") else None
        return cls(key, int(data["returncode"]), outputs, data["log"], float(data["seconds"]), cached=True,
                   report=report)


def run_action(store: Store, runner: Runner, key: str, job_for: Any) -> ActionResult:
    """`job_for(output_dir) -> Job`; the job runs only when `key` is not already answered by the cache.

    Results made with degraded isolation are cached under a different key, so an unisolated run can
    never answer for an isolated build (the reverse is harmless and the bundle records the degradation).
    """
    degraded = runner.isolation().get("degraded")
    if degraded:
        key = digest_value({"action": key, "isolation_degraded": degraded})
    hit = store.cache_get(key)
    if hit is not None:
        return ActionResult.from_json(key, hit)
    # In the store's own temp area, named after this process: a killed build's outputs are found by `gc`.
    with scratch_dir(temp_root(store)) as scratch:
        out = Path(scratch) / "out"
        out.mkdir()
        job: Job = job_for(out)
        done = runner.run(job)
        if done.returncode not in CACHEABLE:
            _refuse_if_disk_full(store, out, job.label)
        log = store.put_bytes(done.log.encode(), LOG_MEDIA_TYPE)
        report = _take_report(out / REPORT_FILE)
        outputs = {p.name: _store_output(store, p, Path(scratch)) for p in sorted(out.iterdir())}
    result = ActionResult(key, done.returncode, outputs, log.digest, done.seconds, cached=False, report=report)
    if done.returncode in CACHEABLE:
        store.cache_put(key, result.to_json())
    return result


_NEARLY_FULL = 1 << 20  # a failed cell with less than this free beside its outputs most likely hit a full disk


def _refuse_if_disk_full(store: Store, out: Path, label: str) -> None:
    """A cell that failed because the store's filesystem filled is a store error (6), not an export failure."""
    free = shutil.disk_usage(out).free
    if free >= _NEARLY_FULL:
        return
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    raise errors.StoreError(f"no space left in the store at {store.root}: {label} had written {written} bytes of "
                            f"outputs when its filesystem filled ({free} bytes free); it needs more than "
                            f"{written + _NEARLY_FULL} bytes free",
                            hint="free space on its filesystem (`exportctl gc` removes what nothing references) "
                                 "and run again; nothing already stored was changed")


def _take_report(path: Path) -> CellReport | None:
    """The cell's report, removed from its outputs: it holds run facts (peak memory), not artifact bytes."""
    if not path.is_file() or path.is_symlink():
        return None
    try:
        report = CellReport.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.ExportFailed(f"the cell wrote an unreadable {REPORT_FILE}: {exc}") from exc
    path.unlink()
    return report


def _store_output(store: Store, path: Path, scratch: Path) -> Descriptor:
    if path.is_symlink():
        raise errors.ExportFailed(f"a cell wrote a symlink ({path.name}); artifacts must be regular files")
    if path.is_dir():  # directory artifacts (OpenVINO IR, .mlpackage) become one canonical tar
        packed = scratch / f"{path.name}.tar"
        with open(packed, "wb") as handle:
            write_canonical_tar(path, handle)
        return store.put_file(packed, WEIGHT_TAR)
    return store.put_file(path, BLOB_MEDIA_TYPE)
