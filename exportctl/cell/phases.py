"""Where a cell's time goes: named phases, timed in the cell and announced on its output as they begin.

The host reads the announcements (`[exportctl cell] phase export`) to show which step a running cell is in,
and the timings from the cell's report to keep them in the run record. Monotonic clock: durations only, never
a date (the cell's dates come from SOURCE_DATE_EPOCH).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

MARKER = "[exportctl cell] phase "


def process_age() -> float:
    """Seconds since this process started (Linux; 0 elsewhere): the interpreter's start and module imports."""
    try:
        stat = Path("/proc/self/stat").read_text()
        started_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the command name
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class Phases:
    """Starts with `imports` already running: the time since the process started (Python, torch, Ultralytics
    imported by the cell's modules) belongs to it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._current: str | None = "imports"
        self._since = time.monotonic() - process_age()
        print(MARKER + "imports", flush=True)

    def begin(self, name: str) -> None:
        self.end()
        self._current, self._since = name, time.monotonic()
        print(MARKER + name, flush=True)
        sys.stderr.flush()

    def end(self) -> None:
        if self._current is not None:
            elapsed = time.monotonic() - self._since
            self.seconds[self._current] = round(self.seconds.get(self._current, 0.0) + elapsed, 3)
            self._current = None


def phase_of(line: str) -> str | None:
    """The phase a line of cell output announces, if it is an announcement."""
    return line[len(MARKER):].strip() if line.startswith(MARKER) else None
