"""The cell's view of the world, the same in every backend: fixed paths and an environment with nothing from
the host. Runners mount and start cells with these; Docker images bake the environment in.
"""

from __future__ import annotations

from exportctl import formats

# Fixed paths inside every cell, so no host path can reach an artifact.
CELL_IN = "/in"
CELL_OUT = "/out"
CELL_ENV = "/opt/env"
CELL_CODE = "/opt/exportctl"
CELL_HOME = "/tmp/home"
CELL_MODULE = "exportctl.cell"


def environment(source_date_epoch: int, label: str, *, code_root: str = CELL_CODE, env_root: str = CELL_ENV,
                home: str = CELL_HOME) -> dict[str, str]:
    """Everything a cell's process sees in its environment."""
    return {
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
        "SOURCE_DATE_EPOCH": str(source_date_epoch),
        # Ultralytics: no DNS online check, no pip auto-install, settings inside the cell.
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_CONFIG_DIR": f"{home}/.config/Ultralytics",
        # One thread: float reductions then run in one order, so outputs do not depend on the core count.
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # What the formats' toolchains need (in every cell: an image or environment may serve several).
        **formats.cell_environment(),
        "EXPORTCTL_CELL": label,
    }
