"""Where exportctl's own files live (images, lockfiles, runtimes, in-cell code) and what they hash to.

exportctl is installed from its source tree (`pip install -e .`): the templates, locks and runtime wrappers
are data beside the package, not inside it, so that the layout shows them (see DEVELOPERS.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

from exportctl import errors
from exportctl.canonical import digest_file, digest_value

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


def _source_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


@functools.cache
def cell_code_digest() -> str:
    """Digest of everything that runs inside a cell: changing any of it changes every cell key."""
    files = {}
    for root, base in ((CELL_DIR, PACKAGE_DIR), (RUNTIMES_DIR, RUNTIMES_DIR), (PACKAGE_DIR / "errors.py", PACKAGE_DIR)):
        paths = [root] if root.is_file() else _source_files(require(root))
        for p in paths:
            files[p.relative_to(base.parent).as_posix()] = digest_file(p)
    return digest_value(files)
