"""The Runner interface: run one job (an in-cell request) in a toolchain's environment, isolated, and say how.

Backends (local sandbox, docker) differ in how they provide the toolchain and the isolation; they share the
cell's view of the world defined here: fixed paths, a clean environment, one writable output directory, and
the command line. A runner maps the job's inputs (its request file among them) to its input directory and
builds the argv; it never reads or rewrites the request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from exportctl.cell.protocol import REQUEST_FILE, CellRequest
from exportctl.cell.view import CELL_CODE, CELL_ENV, CELL_HOME, CELL_IN, CELL_MODULE, CELL_OUT, environment


@dataclass(frozen=True)
class Job:
    toolchain: str
    inputs: Mapping[str, Path]  # name under the input dir -> host file or directory, mounted read-only
    output_dir: Path  # host directory mounted at /out, the only writable place that survives the cell
    source_date_epoch: int
    request: CellRequest | None = None  # what the cell is asked to do; written into the inputs as request.json
    label: str = ""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    module: str = CELL_MODULE  # run as `python -m module`
    args: tuple[str, ...] = ()  # further arguments (the export guide's, in contract tests)
    on_line: Callable[[str], None] | None = None  # each line of the cell's output as it comes (progress, -v)


@dataclass(frozen=True)
class JobResult:
    returncode: int
    log: str
    seconds: float


class Runner(Protocol):
    name: str
    # Whether jobs may run at once: each needs its own /tmp (cells work in the fixed /tmp/exportctl-work).
    concurrent: bool

    def isolation(self) -> dict[str, Any]:
        """Facts recorded in the bundle about how cells were isolated (backend, sandbox, opt-outs)."""
        ...

    def prepare(self, toolchain: str) -> dict[str, Any]:
        """Make the toolchain runnable (environment or image); return facts for the run record."""
        ...

    def run(self, job: Job) -> JobResult:
        ...

    def cancel(self) -> None:
        """Stop every job running now (Ctrl-C while cells run in worker threads); their `run` calls return."""
        ...


def job_inputs(job: Job, scratch: Path) -> dict[str, Path]:
    """The job's inputs plus its request file, written into `scratch` (a directory the runner owns)."""
    inputs = dict(job.inputs)
    if job.request is not None:
        inputs[REQUEST_FILE] = job.request.write(scratch / REQUEST_FILE)
    return inputs


def cell_argv(job: Job, python: str, input_dir: str, output_dir: str) -> list[str]:
    """The cell's command line, with the runner's own input and output directories."""
    argv = [python, "-B", "-s", "-m", job.module]
    if job.request is not None:
        argv += ["--request", f"{input_dir}/{REQUEST_FILE}", "--output_dir", output_dir]
    return [*argv, *job.args]


def cell_environment(job: Job, *, code_root: str = CELL_CODE, env_root: str = CELL_ENV,
                     home: str = CELL_HOME) -> dict[str, str]:
    """The job's cell environment: the cell view's, plus what the job adds."""
    env = environment(job.source_date_epoch, job.label or job.module, code_root=code_root, env_root=env_root,
                      home=home)
    env.update(job.extra_env)
    return env


__all__ = ["CELL_IN", "CELL_OUT", "Job", "JobResult", "Runner", "cell_argv", "cell_environment", "job_inputs"]
