"""Base images pinned by digest: `images/base-images.toml`, read here and nowhere else.

A tag can be moved to different bytes at any time; a digest cannot. So an entry without a digest is
refused when the file is read (naming file and line), not when a build later pulls whatever the tag
means that day. Only `nox -s update_pins` rewrites the file.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from exportctl import errors
from exportctl.canonical import is_digest
from exportctl.paths import IMAGES_DIR

PINS_FILE = IMAGES_DIR / "base-images.toml"
REQUIRED = ("image", "tag", "python", "glibc")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


@dataclass(frozen=True)
class BasePin:
    name: str
    image: str  # repository, e.g. "python" or "nvcr.io/nvidia/tensorrt"
    tag: str  # for humans and for re-resolving; Docker ignores it next to a digest
    digest: str
    python: str  # the interpreter version the image provides (cell environments are locked for it)
    glibc: str  # decides which manylinux wheels of a lock the image can use
    verified: bool  # re-resolved from a registry by `nox -s update_pins`
    line: int

    @property
    def reference(self) -> str:
        return f"{self.image}:{self.tag}@{self.digest}"


def _lines(text: str) -> dict[tuple[str, str], int]:
    """(table, key) -> line number, and (table, "") -> the table header's line."""
    found: dict[tuple[str, str], int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TABLE.match(line):
            table = header.group(1)
            found[(table, "")] = number
        elif (key := _KEY.match(line)) and table:
            found[(table, key.group(1))] = number
    return found


def load(path: Path = PINS_FILE) -> dict[str, BasePin]:
    """Every pin in `path`; a missing or malformed digest (or field) is refused with `file:line`."""
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise errors.ConfigError(f"the base-image pins file {path} is missing",
                                 hint="install exportctl from its source tree (`pip install -e .`)") from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the syntax") from None
    lines = _lines(text)
    pins = {}
    for name, entry in data.items():
        where = f"{path}:{lines.get((name, ''), 1)}"
        if not isinstance(entry, dict):
            raise errors.ConfigError(f"{where}: '{name}' must be a table ([{name}]) of image fields")
        missing = [k for k in REQUIRED if not isinstance(entry.get(k), str) or not entry[k]]
        if missing:
            raise errors.ConfigError(f"{where}: base image '{name}' has no {', '.join(missing)}",
                                     hint=f"every entry needs: {', '.join(REQUIRED)}, digest")
        digest = entry.get("digest")
        shown = f"{entry['image']}:{entry['tag']}"
        if not digest:
            raise errors.ConfigError(
                f"{where}: base image '{name}' ({shown}) has no digest; a tag alone can change under us",
                hint="pin it: run `nox -s update_pins` where a registry is reachable, or add "
                     "digest = \"sha256:…\" from `docker buildx imagetools inspect " + shown + "`",
            )
        if not isinstance(digest, str) or not is_digest(digest):
            at = f"{path}:{lines.get((name, 'digest'), lines.get((name, ''), 1))}"
            raise errors.ConfigError(f"{at}: base image '{name}' has a malformed digest {digest!r}",
                                     hint="a digest is sha256: followed by 64 lowercase hex digits")
        pins[name] = BasePin(name, entry["image"], entry["tag"], digest, entry["python"], entry["glibc"],
                             bool(entry.get("verified", False)), lines.get((name, ""), 1))
    return pins


@functools.cache
def pins() -> dict[str, BasePin]:
    return load()


def with_digest(text: str, name: str, digest: str) -> str:
    """`text` (the pins file) with entry `name` pinned to `digest` and marked verified; comments are kept."""
    if not is_digest(digest):
        raise errors.ConfigError(f"refusing to pin '{name}' to malformed digest {digest!r}")
    lines, table, seen = text.splitlines(keepends=True), "", set()
    for i, line in enumerate(lines):
        if header := _TABLE.match(line):
            table = header.group(1)
        elif table == name and (key := _KEY.match(line)) and key.group(1) in ("digest", "verified"):
            value = f'"{digest}"' if key.group(1) == "digest" else "true"
            comment = line[line.index("#"):].rstrip("\n") if "#" in line else ""
            lines[i] = f"{key.group(1)} = {value}{'  ' + comment if comment else ''}\n"
            seen.add(key.group(1))
    if "digest" not in seen:
        raise errors.ConfigError(f"the pins file has no digest line for '{name}' to update")
    return "".join(lines)
