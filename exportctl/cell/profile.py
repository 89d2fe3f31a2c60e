"""Latency of an artifact in its own runtime on the machine that built it: warm-up runs, then timed runs, each split
into preprocessing (reading the image file and letterboxing it), inference (the runtime's call) and postprocessing
(the task's decode: for detection, thresholds and NMS), as Ultralytics reports speed; p50/p90/p99 in milliseconds
and throughput, at one thread and at every core the cell may use.

A run fact, never part of the bundle: the cell returns it in its report (the host keeps it in the run record) and
writes nothing to its outputs. The host asks for it through the environment (`EXPORTCTL_PROFILE=WARMUP:RUNS[:SECONDS]`,
or `off` for `build --no-profile`), so asking or not changes no request and no key.

By default the timed runs of each thread setting stop at 100 runs or after 2 s (at least 10 runs), whichever comes
first: a latency is a run fact, and a fixed count made profiling most of a build (15-22 s of a quickstart cell's
23-29 s, 194 s of the RT-DETR demo cell's 239 s). The record says how many runs each figure rests on;
`build --profile-runs N` asks for exactly N.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl.cell.contract import Invocation
from exportctl.formats.spec import FormatSpec
from exportctl.tasks.spec import TaskSpec, Thresholds

PROFILE_ENV = "EXPORTCTL_PROFILE"
OFF = "off"
DEFAULT_WARMUP, DEFAULT_RUNS, DEFAULT_SECONDS = 3, 100, 2.0
MIN_RUNS = 10  # below this a p90 is one sample: the time budget never stops a profile earlier
STAGES = ("preprocess", "inference", "postprocess", "total")


@dataclass(frozen=True)
class Settings:
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    seconds: float | None = DEFAULT_SECONDS  # the timed runs' budget per thread setting; None: exactly `runs`

    def to_env(self) -> str:
        return f"{self.warmup}:{self.runs}" + (f":{self.seconds!r}" if self.seconds is not None else "")

    @classmethod
    def from_env(cls, text: str) -> Settings:
        warmup, runs, *budget = text.split(":")
        settings = cls(int(warmup), int(runs), float(budget[0]) if budget else None)
        budget_ok = settings.seconds is None or settings.seconds > 0
        if settings.warmup < 0 or settings.runs < 1 or len(budget) > 1 or not budget_ok:
            raise ValueError(f"{PROFILE_ENV}={text}: warm-up runs >= 0, timed runs >= 1, seconds > 0")
        return settings

    def enough(self, timed: int, spent: float) -> bool:
        """Whether `timed` runs that took `spent` seconds end the measurement."""
        if timed >= self.runs:
            return True
        return self.seconds is not None and timed >= MIN_RUNS and spent >= self.seconds


DEFAULT = Settings()


def requested() -> Settings | str:
    """What the host asked for: the settings, or why nothing is measured."""
    text = os.environ.get(PROFILE_ENV, "")
    if text == OFF:
        return "not measured: build --no-profile"
    if not text:
        return f"not measured: not asked for ({PROFILE_ENV} unset)"
    return Settings.from_env(text)


def cores() -> int:
    """The cores this process may run on (its affinity: a cgroup or taskset may give it fewer than the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def profile_cell(invocation: Invocation, spec: FormatSpec, task: TaskSpec, artifact: Path,
                 thresholds: Thresholds) -> tuple[dict[str, Any] | None, str | None]:
    """(the profile, None) or (None, why it was not measured). A profile is a run fact: a runtime that cannot run
    here, or one that fails only when asked for more threads, leaves the cell's artifact and verdict as they are."""
    from yolo_runtime import RuntimeUnavailable

    asked = requested()
    if isinstance(asked, str):
        return None, asked
    try:
        return profile(spec, task, artifact, images(invocation), invocation.request.imgsz, thresholds, asked), None
    except RuntimeUnavailable as exc:
        return None, f"not measured: {exc}"
    except Exception as exc:  # noqa: BLE001 - a failed measurement is reported, never a failed export
        return None, f"not measured: profiling failed ({type(exc).__name__}: {exc})"


def images(invocation: Invocation) -> list[Path]:
    """What the model is timed on: the labelled set, else the validation images, else Ultralytics' samples (the
    images the reference used when the recipe names none)."""
    request = invocation.request
    for directory in ([f"{request.dataset.directory}/images"] if request.dataset else []) + ["images"]:
        found = sorted(p for p in invocation.input(directory).glob("*") if p.is_file())
        if found:
            return found
    from ultralytics.utils import ASSETS

    return sorted(Path(ASSETS).glob("*.jpg"))


def profile(spec: FormatSpec, task: TaskSpec, artifact: Path, images: Sequence[Path], imgsz: int,
            thresholds: Thresholds, settings: Settings) -> dict[str, Any]:
    """The run record's `profile`: {warmup, runs (the most asked for), seconds (the budget), threads: {"1": T,
    "all": T}}, each T with the `runs` it made. Raises RuntimeUnavailable where the format's runtime cannot run here."""
    from yolo_runtime import open_backend

    measured: dict[str, Any] = {}
    for label, threads in (("1", 1), ("all", cores())):
        backend = open_backend(artifact, spec.backend, threads=threads)
        measured[label] = {"threads": threads, **_time(backend.run, task, images, imgsz, thresholds, settings)}
    return {"warmup": settings.warmup, "runs": settings.runs, "seconds": settings.seconds, "threads": measured}


def _time(run: Any, task: TaskSpec, images: Sequence[Path], imgsz: int, thresholds: Thresholds,
          settings: Settings) -> dict[str, Any]:
    import numpy as np

    seconds: dict[str, list[float]] = {stage: [] for stage in STAGES}
    spent, i = 0.0, 0
    while not settings.enough(len(seconds["total"]), spent):
        start = time.perf_counter()
        x = task.preprocess(images[i % len(images)], imgsz)
        inferred = time.perf_counter()
        outputs = run(x)
        decoded = time.perf_counter()
        if task.decode is not None:
            task.decode(outputs, thresholds)
        done = time.perf_counter()
        if i >= settings.warmup:
            for stage, value in zip(STAGES, (inferred - start, decoded - inferred, done - decoded, done - start),
                                    strict=True):
                seconds[stage].append(value)
            spent += done - start
        i += 1
    result: dict[str, Any] = {"runs": len(seconds["total"])}
    for stage, values in seconds.items():
        p50, p90, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 90, 99])
        result[f"{stage}_ms"] = {"p50": round(float(p50), 4), "p90": round(float(p90), 4), "p99": round(float(p99), 4)}
    result["throughput_ips"] = round(len(seconds["total"]) / sum(seconds["total"]), 2)
    return result
