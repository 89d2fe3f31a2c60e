"""Neutralise what would make a cell's bytes depend on when and where it ran.

Ultralytics writes `datetime.now()` into every format's metadata and ignores SOURCE_DATE_EPOCH, so the
exporter module's clock is replaced by one fixed at SOURCE_DATE_EPOCH. Seeds and thread counts are fixed
so traced graphs and reference numerics do not vary between runs or machines.
"""

from __future__ import annotations

import datetime as _dt
import random

from exportctl.formats.spec import source_date


class FixedClock(_dt.datetime):
    """A datetime whose now()/today()/utcnow() all return SOURCE_DATE_EPOCH."""

    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
        fixed = source_date()  # naive when no tz is asked for, as datetime.now() is
        return fixed.astimezone(tz) if tz is not None else fixed.replace(tzinfo=None)

    @classmethod
    def today(cls) -> _dt.datetime:  # type: ignore[override]
        return source_date()

    @classmethod
    def utcnow(cls) -> _dt.datetime:  # type: ignore[override]
        return source_date().replace(tzinfo=None)


def seal(seed: int = 0) -> None:
    """Call before importing ultralytics' exporter: fixed clock, seeds, one thread."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    import ultralytics.engine.exporter as exporter

    exporter.datetime = FixedClock


def created_at() -> str:
    """The export guide's `created_at`, from SOURCE_DATE_EPOCH."""
    return source_date().strftime("%Y-%m-%dT%H:%M:%SZ")
