"""Run independent cells concurrently: at most `jobs` at once, within a memory budget.

Each task carries an estimate of its peak memory (the peak RSS its cell reported last time it ran, from
`PeakMemory`). A task starts only when a slot is free and its estimate fits in what the running tasks leave of
the budget; a task that fits nowhere starts alone (it could never run otherwise). Tasks are tried in their
given order, and a later one that fits may start before an earlier one that waits for memory. Results do not
depend on the order tasks finish in: they are returned by name.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
UNKNOWN_PEAK_MIB = 1536  # a cell never measured here: about what an fp32 export of a small YOLO needs


@dataclass(frozen=True)
class Task(Generic[T]):
    name: str
    estimate_mib: int
    run: Callable[[], T]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def available_memory_mib() -> int:
    """What the machine can give cells now: MemAvailable (Linux), else physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)


def run_all(tasks: list[Task[T]], *, jobs: int, budget_mib: int,
            waiting: Callable[[str], None] = lambda name: None,
            interrupt: Callable[[], None] = lambda: None) -> dict[str, T]:
    """Run every task; the first failure is raised once the running ones have finished (none start after it).

    One job runs the tasks in this thread, in order. Ctrl-C (KeyboardInterrupt, which only the main thread
    receives) calls `interrupt` to stop the running tasks, waits for them, and is raised.
    """
    if jobs <= 1:
        return {task.name: task.run() for task in tasks}
    return _concurrently(tasks, jobs, budget_mib, waiting, interrupt)


def _concurrently(tasks: list[Task[T]], jobs: int, budget_mib: int, waiting: Callable[[str], None],
                  interrupt: Callable[[], None]) -> dict[str, T]:
    pending: list[Task[T]] = list(tasks)
    running: dict[Future[T], Task[T]] = {}
    results: dict[str, T] = {}
    failure: BaseException | None = None
    told: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="cell") as pool:
        while running or (pending and failure is None):
            free = budget_mib - sum(t.estimate_mib for t in running.values())
            for task in list(pending) if failure is None else []:
                if len(running) >= max(1, jobs):
                    break
                if task.estimate_mib <= free or not running:
                    pending.remove(task)
                    running[pool.submit(task.run)] = task
                    free -= task.estimate_mib
                elif task.name not in told:
                    told.add(task.name)
                    waiting(task.name)
            try:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:  # stop the running tasks before the pool waits for them on the way out
                interrupt()
                raise
            for future in done:
                task = running.pop(future)
                try:
                    results[task.name] = future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others finished
                    failure = failure or exc
    if failure is not None:
        raise failure
    return results


class PeakMemory:
    """The last peak RSS each kind of cell (e.g. `onnx/fp32`) reported on this machine, in the user cache."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._seen: dict[str, int] = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            self._seen = {}

    def estimate(self, name: str) -> int:
        return self._seen.get(name, UNKNOWN_PEAK_MIB)

    def record(self, name: str, peak_mib: int) -> None:
        if peak_mib <= 0:
            return
        with self._lock:
            self._seen[name] = peak_mib
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_text(json.dumps(self._seen, sort_keys=True, indent=1) + "\n")
            os.replace(partial, self.path)  # readers see the old or the new file, never a half-written one


def own_peak_rss_mib() -> int:
    """This process's peak RSS so far (the orchestrator alone: cells are other processes)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
