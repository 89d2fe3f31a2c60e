"""The Runner interface: run one job (an in-cell module) for a toolchain, isolated, and say how.

Backends (local sandbox, docker) differ in how they provide the toolchain and the isolation; they share the
cell's view of the world defined here: fixed paths, a clean environment, one writable output directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Fixed paths inside every cell, so no host path can reach an artifact.
CELL_IN = "/in"
CELL_OUT = "/out"
CELL_ENV = "/opt/env"
CELL_CODE = "/opt/exportctl"
CELL_HOME = "/tmp/home"


@dataclass(frozen=True)
class Job:
    toolchain: str
    module: str  # run as `python -m module`
    args: tuple[str, ...]
    inputs: Mapping[str, Path]  # name under /in -> host file or directory, mounted read-only
    output_dir: Path  # host directory mounted at /out, the only writable place that survives the cell
    source_date_epoch: int
    label: str = ""
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult:
    returncode: int
    log: str
    seconds: float


class Runner(Protocol):
    name: str

    def isolation(self) -> dict[str, Any]:
        """Facts recorded in the bundle about how cells were isolated (backend, sandbox, opt-outs)."""
        ...

    def prepare(self, toolchain: str) -> dict[str, Any]:
        """Make the toolchain runnable (environment or image); return facts for the run record."""
        ...

    def run(self, job: Job) -> JobResult:
        ...


def cell_environment(job: Job, *, code_root: str = CELL_CODE, env_root: str = CELL_ENV,
                     home: str = CELL_HOME) -> dict[str, str]:
    """Everything a cell's process sees in its environment: nothing from the host."""
    env = {
        "PATH": f"{env_root}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": f"{code_root}:{code_root}/runtimes:{code_root}/exportctl/cell/site",
        "SOURCE_DATE_EPOCH": str(job.source_date_epoch),
        # Ultralytics: no DNS online check, no pip auto-install, settings inside the cell.
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_CONFIG_DIR": f"{home}/.config/Ultralytics",
        # One thread: float reductions then run in one order, so outputs do not depend on the core count.
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # Documented opt-out, but openvino-telemetry 2025.2 ignores it: the OpenVINO cell also writes the
        # consent file before OpenVINO loads (see cell/exporters.py). Kept for other versions.
        "OPENVINO_TELEMETRY_OPT_OUT": "1",
        "EXPORTCTL_CELL": job.label or job.module,
    }
    env.update(job.extra_env)
    return env
