"""Guards for layouts handed over by someone else: bounded JSON, known layer types, tars that stay inside.

`verify`, `merge` and `audit` read layouts they did not write. Whatever they hold (a JSON document nested a
million deep, an `oci-layout` that is a list, a 100 MB index, a tar layer with `../` members or links to
/etc/passwd, a layer type exportctl never writes) ends in VerifyFailed (exit 7) naming the file, never a
traceback and never a write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exportctl import errors
from exportctl.bundle.read import BundleInfo
from exportctl.store import mediatypes as mt
from exportctl.store.layout import Store
from exportctl.store.tarball import check_members

MAX_JSON_BYTES = 16 << 20  # index.json, oci-layout and manifests are kilobytes; 16 MiB is far beyond honest
MAX_JSON_DEPTH = 100  # OCI documents are 5 levels deep
LAYER_TYPES = frozenset({mt.WEIGHT_RAW, mt.WEIGHT_TAR, mt.WEIGHT_CONFIG_RAW, mt.VALIDATION, mt.RECIPE,
                         mt.LOCKFILE, mt.REFERENCE})


def fail(message: str) -> errors.VerifyFailed:
    return errors.VerifyFailed(message, hint="re-export the bundle from a store that verifies, or rebuild it")


def _depth(text: bytes) -> int:
    """Bracket nesting of a JSON text (strings skipped): checked before parsing, which would recurse."""
    deepest = depth = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def read_json(path: Path, what: str, kind: type = dict) -> Any:
    """A small JSON document of the expected top-level type, or VerifyFailed naming it."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise fail(f"{what} is {size} bytes; an OCI document of a bundle is at most {MAX_JSON_BYTES}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail(f"{what} is missing: the layout is truncated") from None
    except OSError as e:
        raise fail(f"{what} cannot be read ({e.strerror})") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise fail(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise fail(f"{what} is not valid JSON ({str(e)[:200]})") from None
    if not isinstance(value, kind):
        raise fail(f"{what} is a JSON {type(value).__name__}, not a JSON {'object' if kind is dict else 'array'}")
    return value


def check_layers(info: BundleInfo, store: Store) -> None:
    """Every layer is of a type exportctl writes; every tar layer's entries are plain and stay inside."""
    for i, layer in enumerate(info.layers):
        if layer.media_type not in LAYER_TYPES:
            raise fail(f"layer {i} has media type {layer.media_type!r}, which no exportctl bundle holds")
        if layer.media_type == mt.WEIGHT_TAR:
            check_members(store.blob_path(layer.digest))
