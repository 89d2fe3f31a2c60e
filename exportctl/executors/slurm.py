"""The Slurm executor: one array task per uncached cell, parts through an OCI registry, merged like `--only` parts.

The coordinator (this module, on the submit host) plans, computes the demo checkpoint and the reference once,
pushes them with the recipe's inputs as one artifact (or writes it to `--shared-dir`), submits one
`sbatch --array` per resource class (GPU cells ask `--gres=gpu:1`, on `--gpu-partition` when given), polls
`scontrol show job` with progress, pulls each task's partial bundle from the registry, merges them (a bundle is a
pure function of its parts, so the digest is the one-machine build's), stores it, adds a run record naming every
task's job and array ids and node, and pushes the merged bundle. Cells already in the store's action cache are
not submitted: they are assembled locally from the cache. Ctrl-C cancels the submitted arrays (`scancel`).
Every Slurm command goes through exportctl.proc (submitit would pickle Python callables onto a shared
filesystem; the CLI needs nothing shared but the registry).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exportctl import errors, proc
from exportctl.build.actions import ActionResult
from exportctl.executors.inputs import action_layers, file_layers, push_inputs
from exportctl.executors.shared import SharedDir
from exportctl.executors.task import DONE_MARK, error_for
from exportctl.plan.matrix import Cell
from exportctl.registry.client import Registry
from exportctl.registry.pull import pull
from exportctl.registry.reference import Reference
from exportctl.registry.transport import TransportOptions

Report = Callable[[str, str], None]
# Slurm job states in which a task will not run on, and what the scheduler did to those it ended itself.
ENDED_BY_SLURM = {"TIMEOUT": "timed out", "DEADLINE": "missed its deadline", "CANCELLED": "was cancelled",
                  "PREEMPTED": "was preempted", "NODE_FAIL": "lost its node", "BOOT_FAIL": "could not boot its node",
                  "OUT_OF_MEMORY": "ran out of memory"}
TERMINAL = {"COMPLETED", "FAILED", *ENDED_BY_SLURM}



@dataclass(frozen=True)
class SlurmOptions:
    registry: Reference  # the merged bundle goes here (its tag, if any); parts go to the same repository
    backend: str
    sandbox: str
    log_dir: Path
    partition: str | None = None
    gpu_partition: str | None = None
    time_limit: str | None = None
    transport: TransportOptions = field(default_factory=TransportOptions)
    poll_seconds: float = 2.0
    shared_dir: Path | None = None  # inputs through this directory (mounted on every node), not the registry


@dataclass
class Task:
    cell: str
    array_job: str
    index: int
    state: str = "PENDING"
    exit_code: int | None = None
    node: str | None = None
    job_id: str | None = None
    seconds: str | None = None
    slurm_exit: str | None = None  # Slurm's ExitCode, "code:signal" (a task killed for its time limit: 0:15)

    @property
    def log(self) -> str:
        return f"{self.array_job}_{self.index}.log"


def slurm_env() -> dict[str, str]:
    """The Slurm client commands' environment: the host's SLURM_CONF (which cluster), nothing else extra."""
    return proc.clean_env({k: os.environ[k] for k in ("SLURM_CONF", "HOME") if k in os.environ})


def _script(cells: list[Cell], inputs: str, opts: SlurmOptions) -> str:
    names = " ".join(shlex.quote(c.name) for c in cells)
    task = [sys.executable, "-m", "exportctl", "cell-task", "--inputs", inputs, "--cell", '"$cell"',
            "--part", f"{opts.registry.host}/{opts.registry.repository}:part-${{SLURM_ARRAY_JOB_ID}}-"
                      "${SLURM_ARRAY_TASK_ID}", "--backend", opts.backend, "--sandbox", opts.sandbox]
    if opts.shared_dir is not None:
        task += ["--shared-dir", shlex.quote(str(opts.shared_dir))]
    if opts.transport.ca_file:
        task += ["--ca-file", shlex.quote(str(opts.transport.ca_file))]
    if opts.transport.insecure:
        task.append("--insecure")
    return "\n".join(["#!/bin/bash", "# exportctl: one cell per array task (exportctl/executors/slurm.py)",
                      "set -u", f"cells=({names})", 'cell="${cells[$SLURM_ARRAY_TASK_ID]}"',
                      'cd "${TMPDIR:-/tmp}"  # not the submitter\'s directory', "exec " + " ".join(task), ""])


def submit(cells: list[Cell], gpu: bool, inputs: str, opts: SlurmOptions) -> list[Task]:
    opts.log_dir.mkdir(parents=True, exist_ok=True)
    script = opts.log_dir / f"exportctl-{'gpu' if gpu else 'cpu'}-{os.getpid()}.sh"
    script.write_text(_script(cells, inputs, opts))
    argv = ["sbatch", "--parsable", f"--array=0-{len(cells) - 1}", "--job-name=exportctl",
            f"--output={opts.log_dir}/%A_%a.log"]
    partition = opts.gpu_partition if gpu and opts.gpu_partition else opts.partition
    argv += [f"--partition={partition}"] if partition else []
    argv += [f"--time={opts.time_limit}"] if opts.time_limit else []
    argv += ["--gres=gpu:1"] if gpu else []
    done = proc.run([*argv, script], env=slurm_env(), timeout=120)
    if done.returncode != 0:
        raise errors.RegistryError(f"sbatch refused the array: {done.tail(5)}",
                                   hint="check the partition, --time and that slurmctld answers (sinfo)")
    array_job = done.output.strip().split(";")[0]
    return [Task(cell.name, array_job, i) for i, cell in enumerate(cells)]


def _fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def _indexes(array_task_id: str) -> list[int]:
    """`3`, or a still-pending remainder of the array: `0-3`, `1,4-5`, `0-7%2` (at most 2 at once)."""
    found: list[int] = []
    for part in array_task_id.split("%")[0].split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found += range(int(first), int(last or first) + 1)
    return found


def refresh(tasks: list[Task]) -> None:
    """Update every task's state from `scontrol show job -o`: one line per array task once it started, and one
    for the remainder that has not (which a cancellation ends too)."""
    by_key = {(t.array_job, t.index): t for t in tasks}
    for array_job in sorted({t.array_job for t in tasks}):
        done = proc.run(["scontrol", "show", "job", "-o", array_job], env=slurm_env(), timeout=60)
        for line in done.output.splitlines():
            f = _fields(line)
            for index in _indexes(f.get("ArrayTaskId", "")):
                task = by_key.get((array_job, index))
                if task is None:
                    continue
                task.state, task.job_id = f.get("JobState", task.state), f.get("JobId")
                task.node = f.get("NodeList") if f.get("NodeList") not in (None, "(null)") else task.node
                task.slurm_exit = f.get("ExitCode", "0:0")
                task.exit_code = int(task.slurm_exit.split(":")[0])
                task.seconds = f.get("RunTime")


def wait(tasks: list[Task], opts: SlurmOptions, report: Report) -> None:
    seen: dict[tuple[str, int], str] = {}
    try:
        while True:
            refresh(tasks)
            for t in tasks:
                if seen.get((t.array_job, t.index)) != t.state:
                    seen[(t.array_job, t.index)] = t.state
                    where = f" on {t.node}" if t.node and t.state != "PENDING" else ""
                    report(t.cell, f"slurm {t.array_job}_{t.index} {t.state.lower()}{where}")
            if all(t.state in TERMINAL for t in tasks):
                return
            time.sleep(opts.poll_seconds)
    except KeyboardInterrupt:
        proc.run(["scancel", *sorted({t.array_job for t in tasks})], env=slurm_env(), timeout=60)
        raise


def _tail(opts: SlurmOptions, task: Task, lines: int = 25) -> str:
    try:
        text = (opts.log_dir / task.log).read_text(errors="replace")
    except OSError:
        return f"(no log at {opts.log_dir / task.log})"
    return "\n".join(text.splitlines()[-lines:])


def check(tasks: list[Task], opts: SlurmOptions) -> None:
    """Raise for the first task without a part: its cell's exit code and log tail, or what Slurm did to it."""
    for t in tasks:
        if t.state == "COMPLETED" or (t.state == "FAILED" and t.exit_code == errors.VALIDATION_FAILED):
            continue
        where = f"Slurm task {t.array_job}_{t.index} ({t.cell})"
        if t.state in ENDED_BY_SLURM:  # the scheduler stopped it: not the cell's verdict, so exit 14
            what = ENDED_BY_SLURM[t.state]
            raise errors.RegistryError(f"{where} {what} after {t.seconds} (Slurm state {t.state}, exit code "
                                       f"{t.slurm_exit}):\n{_tail(opts, t)}", hint=f"log: {opts.log_dir / t.log}"
                                       + ("; raise --time" if t.state in ("TIMEOUT", "DEADLINE") else ""))
        raise error_for(t.exit_code or errors.EXPORT_FAILED, f"{where} failed with exit {t.exit_code}:\n"
                        f"{_tail(opts, t)}", hint=f"log: {opts.log_dir / t.log}")


def collect(tasks: list[Task], opts: SlurmOptions, store: Any) -> dict[str, str]:
    """Pull every task's part from the registry (checked as it streams); cell -> part digest."""
    parts = {}
    for t in tasks:
        ref = Reference(opts.registry.host, opts.registry.repository, f"part-{t.array_job}-{t.index}")
        parts[t.cell] = pull(store, ref, opts.transport).digest
    return parts


def task_record(t: Task, part: str | None, opts: SlurmOptions) -> dict[str, Any]:
    record = {"cell": t.cell, "executor": "slurm", "slurm_job": t.job_id, "slurm_array_job": t.array_job,
              "slurm_array_task": t.index, "node": t.node, "state": t.state, "exit_code": t.exit_code,
              "run_time": t.seconds, "part": part, "log": t.log}
    with contextlib.suppress(OSError, ValueError, StopIteration):  # the task's closing record, from its log
        line = next(x for x in (opts.log_dir / t.log).read_text(errors="replace").splitlines()
                    if x.startswith(DONE_MARK))
        done = json.loads(line[len(DONE_MARK):])
        record.update({"reference_cached": done.get("reference_cached"),
                       "checkpoint_cached": done.get("checkpoint_cached")})
    return record


def ship_inputs(recipe_file: Path, recipe: Any, store: Any, actions: Iterable[ActionResult],
                opts: SlurmOptions) -> str:
    """Push the inputs (and the prepared actions) where the tasks fetch them; returns what `--inputs` names."""
    layers = file_layers(recipe_file, recipe) + action_layers(store, actions)
    if opts.shared_dir is not None:
        return push_inputs(SharedDir(opts.shared_dir), layers)
    registry = Registry(Reference(opts.registry.host, opts.registry.repository), opts.transport)
    return f"{opts.registry.host}/{opts.registry.repository}@{push_inputs(registry, layers)}"


def run_cells(recipe_file: Path, recipe: Any, cells: list[Cell], store: Any, opts: SlurmOptions,
              report: Report, actions: Iterable[ActionResult] = ()) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Submit `cells`, wait, check, pull: (cell -> part digest, one run-record entry per task)."""
    inputs = ship_inputs(recipe_file, recipe, store, actions, opts)
    report("inputs", f"{'wrote' if opts.shared_dir else 'pushed'} {inputs}"
                     + (f" to {opts.shared_dir}" if opts.shared_dir else ""))
    tasks: list[Task] = []
    for gpu in (False, True):
        group = [c for c in cells if c.format.requires_gpu == gpu]
        if group:
            tasks += submit(group, gpu, inputs, opts)
            report("slurm", f"array {tasks[-1].array_job}: {len(group)} {'GPU' if gpu else 'CPU'} task(s)")
    wait(tasks, opts, report)
    check(tasks, opts)
    parts = collect(tasks, opts, store)
    return parts, [task_record(t, parts.get(t.cell), opts) for t in tasks]
