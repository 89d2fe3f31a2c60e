"""The cell scheduler: real threads, real waiting; it never exceeds its slots or its memory budget."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from exportctl.build.schedule import UNKNOWN_PEAK_MIB, PeakMemory, Task, run_all


class Meter:
    """Records how many tasks (and how much estimated memory) ran at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running, self.memory, self.most, self.most_memory = 0, 0, 0, 0
        self.started: list[str] = []

    def task(self, name: str, mib: int, seconds: float = 0.15) -> Task[str]:
        def run() -> str:
            with self.lock:
                self.started.append(name)
                self.running += 1
                self.memory += mib
                self.most, self.most_memory = max(self.most, self.running), max(self.most_memory, self.memory)
            time.sleep(seconds)
            with self.lock:
                self.running -= 1
                self.memory -= mib
            return name.upper()

        return Task(name, mib, run)


def test_runs_up_to_jobs_at_once_and_returns_every_result_by_name() -> None:
    meter = Meter()
    results = run_all([meter.task(f"c{i}", 100) for i in range(6)], jobs=3, budget_mib=10_000)
    assert results == {f"c{i}": f"C{i}" for i in range(6)}
    assert meter.most == 3


def test_a_cell_that_would_exceed_the_memory_budget_waits() -> None:
    meter, waited = Meter(), []
    tasks = [meter.task("big-a", 600), meter.task("big-b", 600), meter.task("small", 300)]
    run_all(tasks, jobs=4, budget_mib=1000, waiting=waited.append)
    assert meter.most_memory <= 1000
    assert "big-b" in waited
    assert meter.started[:2] == ["big-a", "small"], "a later cell that fits starts before one that waits"


def test_a_cell_larger_than_the_budget_still_runs_alone() -> None:
    meter = Meter()
    run_all([meter.task("huge", 5000), meter.task("other", 100)], jobs=2, budget_mib=1000)
    assert meter.most == 1


def test_a_failure_is_raised_after_the_running_cells_finish_and_nothing_new_starts() -> None:
    meter = Meter()

    def boom() -> str:
        raise RuntimeError("cell exploded")

    tasks = [Task("bad", 10, boom), meter.task("slow", 10, 0.3), meter.task("later-1", 10), meter.task("later-2", 10)]
    with pytest.raises(RuntimeError, match="cell exploded"):
        run_all(tasks, jobs=2, budget_mib=1000)
    assert meter.running == 0 and "later-2" not in meter.started


def test_peak_memory_remembers_the_last_measurement(tmp_path: Path) -> None:
    path = tmp_path / "peak-rss.json"
    peaks = PeakMemory(path)
    assert peaks.estimate("onnx/fp32") == UNKNOWN_PEAK_MIB
    peaks.record("onnx/fp32", 512)
    peaks.record("onnx/fp32", 0)  # no measurement (an old report) keeps the last one
    assert PeakMemory(path).estimate("onnx/fp32") == 512
    path.write_text("not json")
    assert PeakMemory(path).estimate("onnx/fp32") == UNKNOWN_PEAK_MIB


def test_ctrl_c_stops_the_running_cells_and_is_raised() -> None:
    """Ctrl-C reaches only the main thread; the running children (real processes) must be stopped, not awaited."""
    from exportctl import proc

    def sleeper() -> int:
        return proc.run(["sleep", "60"], env=proc.clean_env(), on_line=lambda line: None).returncode

    # A process started in the background by a non-interactive shell inherits SIGINT ignored, and then Python
    # raises no KeyboardInterrupt: restore what a terminal's Ctrl-C reaches, for this test only.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # what Ctrl-C sends
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_all([Task("a", 10, sleeper), Task("b", 10, sleeper)], jobs=2, budget_mib=1000,
                    interrupt=proc.kill_streamed)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 20, "the sleeping children were waited for instead of stopped"
