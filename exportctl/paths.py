"""Where exportctl's own files live (images, lockfiles, runtimes, in-cell code) and what they hash to.

exportctl is installed from its source tree (`pip install -e .`): the templates, locks and runtime wrappers
are data beside the package, not inside it, so that the layout shows them (see DEVELOPERS.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

from exportctl import errors
from exportctl.canonical import digest_files, tree_files

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
CELL_DIR = PACKAGE_DIR / "cell"
RUNTIMES_DIR = PROJECT_ROOT / "runtimes" / "python"
LOCKFILES_DIR = PROJECT_ROOT / "lockfiles"
IMAGES_DIR = PROJECT_ROOT / "images"


def require(path: Path) -> Path:
    if not path.exists():
        raise errors.ConfigError(
            f"exportctl's data file {path} is missing",
            hint="install exportctl from its source tree with `pip install -e .` (images/, lockfiles/ and "
                 "runtimes/ live beside the package)",
        )
    return path


# What runs inside a cell: these packages and modules of exportctl, and the runtime shipped to users.
_CELL_PACKAGES = ("cell", "formats", "tasks")
_CELL_MODULES = ("__init__.py", "errors.py", "discovery.py")


def cell_code_files() -> dict[str, Path]:
    """Everything a cell imports, by its path in the cell (`exportctl/...`, `runtimes/...`) -> host file.

    The one definition of the in-cell code: its digest keys every action, and Docker contexts copy it.
    """
    files = {f"exportctl/{p.relative_to(PACKAGE_DIR).as_posix()}": p
             for package in _CELL_PACKAGES for p in tree_files(require(PACKAGE_DIR / package))}
    files.update({f"exportctl/{name}": require(PACKAGE_DIR / name) for name in _CELL_MODULES})
    files.update({f"runtimes/{p.relative_to(RUNTIMES_DIR).as_posix()}": p for p in tree_files(require(RUNTIMES_DIR))})
    return files


@functools.cache
def cell_code_digest() -> str:
    """Digest of everything that runs inside a cell: changing any of it changes every cell key."""
    return digest_files(cell_code_files())
