"""Where exportctl's own files live (images, lockfiles, runtimes, in-cell code) and what they hash to.

The source tree keeps the templates, locks and runtime wrappers at its top level (images/, lockfiles/,
runtimes/), beside the package, so that the layout shows them. A wheel carries them inside the package, under
`exportctl/_data/` (hatchling's force-include in pyproject.toml maps them at build time). Installed from a wheel,
exportctl finds them there; installed editable (or run from the tree), beside the package. The in-cell code
keeps the same names either way (`runtimes/...`), so its digest does not depend on how exportctl was installed.
"""

from __future__ import annotations

import functools
from pathlib import Path

from exportctl import errors
from exportctl.canonical import digest_files, tree_files

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DATA_DIR = PACKAGE_DIR / "_data"  # only in a wheel install
CELL_DIR = PACKAGE_DIR / "cell"


def _data(name: str) -> Path:
    """A data folder: inside the installed package (wheel), else the source tree's top-level one."""
    installed = DATA_DIR / name
    return installed if installed.is_dir() else PROJECT_ROOT / name


RUNTIMES_DIR = _data("runtimes") / "python"
LOCKFILES_DIR = _data("lockfiles")
IMAGES_DIR = _data("images")


def require(path: Path) -> Path:
    if not path.exists():
        raise errors.ConfigError(
            f"exportctl's data file {path} is missing",
            hint="reinstall exportctl from a wheel built by its build backend (`uv build`, `python -m build`: it "
                 "carries images/, lockfiles/ and runtimes/ under exportctl/_data/), or `pip install -e .` from "
                 "the source tree",
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


def package_source_digest() -> str:
    """Digest of exportctl's own package source, without the data a wheel carries (the same for both installs)."""
    return digest_files({p.relative_to(PACKAGE_DIR).as_posix(): p for p in tree_files(PACKAGE_DIR)
                         if not p.is_relative_to(DATA_DIR)})
