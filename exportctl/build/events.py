"""What a build tells whoever watches it: tasks (toolchain environments, the demo checkpoint, the reference,
each cell) changing state and step, notices, and the cells' output lines. `views/progress.py` renders them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# Task states; a cell ends as one of its verdicts (passed, failed, not-validated), "cached" or "export failed".
QUEUED, RUNNING, WAITING, DONE, CACHED = "queued", "running", "waiting for memory", "done", "cached"
# Steps a running cell is in: its environment, then the phases the cell announces (cell/phases.py).
STEP_ENV = "env"


class Progress(Protocol):
    def notice(self, text: str, *, warning: bool = False) -> None:
        """A line for the user: a recipe warning, degraded isolation, a backend fallback."""
        ...

    def task(self, name: str, state: str, *, step: str = "", detail: str = "") -> None:
        """`name` (a cell, `env <toolchain>`, `checkpoint`, `reference`) is now in `state` (and `step`)."""
        ...

    def log(self, name: str, line: str) -> None:
        """One line of a running task's output."""
        ...


class ReportProgress:
    """A plain `report(subject, message)` callback as a Progress (rebuild --check, tests)."""

    def __init__(self, report: Callable[[str, str], None]) -> None:
        self.report = report

    def notice(self, text: str, *, warning: bool = False) -> None:
        self.report("warning" if warning else "notice", text)

    def task(self, name: str, state: str, *, step: str = "", detail: str = "") -> None:
        if state not in (QUEUED, RUNNING) or not step:
            self.report(name, " ".join(part for part in (state, detail) if part))

    def log(self, name: str, line: str) -> None:
        pass
