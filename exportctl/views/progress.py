"""Build progress for people: a live table on a terminal, one plain line per event elsewhere (CI logs).

Live (stdout and stderr are terminals): one row per task (toolchain environments, demo checkpoint, reference,
each cell) with its state, the step it is in (env, imports, export, validate, finish) and its elapsed time,
redrawn in place; notices print above it. Plain: a line whenever a task changes state or step. `quiet`
keeps only warnings; `verbose` also streams every cell's output, prefixed with the cell's name.
Full digests appear only in printed lines, never in a table cell, and printed lines are never wrapped by rich,
so a digest always stays whole on one line (the table shows the 12-digit short form).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from exportctl.build.events import CACHED, DONE, QUEUED, RUNNING, WAITING

_STYLES = {"passed": "green", DONE: "green", CACHED: "cyan", "ready": "green", "created": "green",
           "not-validated": "yellow", WAITING: "yellow", RUNNING: "bold", QUEUED: "dim"}


@dataclass
class _Row:
    state: str = QUEUED
    step: str = ""
    detail: str = ""
    started: float | None = None
    ended: float | None = None

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or now) - self.started:.1f}s"


class ConsoleProgress:
    """Implements build.events.Progress on a rich console (stderr: stdout stays the result)."""

    def __init__(self, console: Console, *, live: bool, quiet: bool = False, verbose: bool = False) -> None:
        self.console, self.quiet, self.verbose = console, quiet, verbose
        self.rows: dict[str, _Row] = {}
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._live = Live(console=console, refresh_per_second=4, transient=False,
                          get_renderable=self._table) if live and not quiet else None

    def __enter__(self) -> ConsoleProgress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.stop()

    # -- events -----------------------------------------------------------------------------------------------
    def notice(self, text: str, *, warning: bool = False) -> None:
        if self.quiet and not warning:
            return
        self._print(Text(text, style="yellow" if warning else ""))

    def task(self, name: str, state: str, *, step: str = "", detail: str = "") -> None:
        now = time.monotonic()
        with self._lock:
            row = self.rows.setdefault(name, _Row())
            changed = (row.state, row.step) != (state, step) or detail != row.detail
            if state == RUNNING and row.started is None:
                row.started = now
            if state not in (QUEUED, RUNNING, WAITING):
                row.ended = now
            row.state, row.step, row.detail = state, step, detail
        if changed and self._live is None and not self.quiet:
            where = f" ({step})" if step else ""
            tail = f" {detail}" if detail else ""
            self._print(Text.assemble((f"[{now - self._start:7.1f}s] ", "dim"), (name, "cyan"), ": ",
                                      (state, _STYLES.get(state, "red")), where, tail))

    def log(self, name: str, line: str) -> None:
        if self.verbose:
            self._print(Text.assemble((f"{name} | ", "dim"), line))

    # -- rendering --------------------------------------------------------------------------------------------
    def _print(self, text: Text) -> None:
        # Not under self._lock: a live refresh takes it (through _table) while holding rich's own locks.
        console = self._live.console if self._live is not None else self.console
        console.print(text, soft_wrap=True, highlight=False)  # never wrapped: digests stay whole

    def _table(self) -> Group:
        now = time.monotonic()
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("task", no_wrap=True, style="cyan")
        table.add_column("state", no_wrap=True)
        table.add_column("step", no_wrap=True)
        table.add_column("elapsed", no_wrap=True, justify="right")
        with self._lock:
            for name, row in self.rows.items():
                spinner = "⠿ " if row.state == RUNNING else "  "
                table.add_row(name, Text(spinner + row.state, style=_STYLES.get(row.state, "red")), row.step,
                              row.elapsed(now))
        return Group(table)
