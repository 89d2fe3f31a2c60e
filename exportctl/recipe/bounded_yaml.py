"""YAML read with bounds, so that no recipe (typed by a tired person or crafted by a hostile one) can hang,
exhaust memory or crash the reader: a size limit, a small alias budget (no "billion laughs"), a nesting
limit below Python's recursion limit, a node budget for the expanded tree, integers of sane length, and
duplicate keys refused with both lines named (YAML says keys are unique; PyYAML silently keeps the last).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from exportctl import errors, readlog

MAX_BYTES = 1 << 20  # a recipe is a few hundred bytes; a megabyte is generous and still instant to parse
MAX_ALIASES = 32  # YAML anchors are handy for shared tolerances; dozens are plenty, thousands are an attack
MAX_DEPTH = 64  # the schema is 6 levels deep; 64 stays far from Python's recursion limit
MAX_NODES = 20_000  # nodes visited with aliases expanded: bounds what validation walks
MAX_INT_DIGITS = 40  # beyond any field's range; Python refuses to parse 4300+ digits with a ValueError


def read_text(path: Path) -> str:
    """The recipe file's text: a regular file, at most MAX_BYTES, UTF-8."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise errors.ConfigError(f"recipe {path} is a directory", hint="pass the recipe's .yaml file")
        if not stat.S_ISREG(mode):
            raise errors.ConfigError(f"recipe {path} is not a regular file (a device, pipe or socket)",
                                     hint="pass the recipe's .yaml file")
        with open(path, "rb") as f:
            readlog.noting_stat(path, os.fstat(f.fileno()))  # the recipe as read (build/noop.py checks it)
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise errors.ConfigError(f"cannot read recipe {path}: {exc.strerror}", hint="check the path") from exc
    return decode(data, str(path))


def decode(data: bytes, source: str) -> str:
    if len(data) > MAX_BYTES:
        raise errors.ConfigError(f"{source}: the recipe is larger than {MAX_BYTES} bytes",
                                 hint="a recipe names files; it does not contain them")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise errors.ConfigError(f"{source}:{line}: not UTF-8 text (byte {exc.start})",
                                 hint="save the recipe as UTF-8") from None


def check_size(text: str, source: str) -> None:
    if len(text) > MAX_BYTES:  # characters >= bytes/4: cheap first check before encoding
        raise errors.ConfigError(f"{source}: the recipe is larger than {MAX_BYTES} characters",
                                 hint="a recipe names files; it does not contain them")
    # PyYAML's scanner is quadratic in flow nesting ([[[[...), so deep flow collections are refused before
    # it sees them: brackets outside quotes, counted in one pass over the few characters that matter.
    depth, quote, line = 0, "", 1
    for match in _FLOW.finditer(text):
        char = match.group()
        if char == "\n":  # an apostrophe in a plain scalar or a comment must not hide the next lines
            line, quote = line + 1, ""
        elif quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise errors.ConfigError(f"{source}:{line}: nested more than {MAX_DEPTH} levels deep",
                                         hint="a recipe is a few levels of mappings and lists")
        else:
            depth = max(0, depth - 1)


_FLOW = re.compile(r"[\[\]{}\"'\n]")


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and nesting while composing, before anything is built from them."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self._source, self._aliases, self._depth = source, 0, 0

    def _where(self) -> str:
        mark = self.peek_event().start_mark if self.check_event() else None  # type: ignore[no-untyped-call]
        return f"{self._source}:{mark.line + 1}" if mark else self._source

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise errors.ConfigError(f"{self._where()}: more than {MAX_ALIASES} YAML aliases (*name)",
                                         hint="write the values out; a recipe needs few anchors")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise errors.ConfigError(f"{self._where()}: nested more than {MAX_DEPTH} levels deep",
                                     hint="a recipe is a few levels of mappings and lists")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose(text: str, source: str) -> yaml.Node | None:
    """The document's node tree, bounded; YAML syntax errors are left to the caller."""
    check_size(text, source)
    loader = _BoundedLoader(text, source)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def construct(node: yaml.Node | None) -> Any:
    if node is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def key_lines(root: yaml.Node | None, source: str) -> dict[tuple[str, ...], int]:
    """{('formats', 'onnx', 'options'): 12, ...}: the 1-based line of each key (or list item). Also refuses
    duplicate keys, over-long integers, and trees too big once aliases are expanded."""
    lines: dict[tuple[str, ...], int] = {}
    budget = [MAX_NODES]
    if root is not None:
        _walk(root, (), lines, source, budget)
    return lines


def _walk(node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int], source: str,
          budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise errors.ConfigError(f"{source}: the recipe expands to more than {MAX_NODES} values",
                                 hint="aliases that refer to aliases multiply; write the values out")
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:int" and len(str(node.value)) > MAX_INT_DIGITS:
            field = ".".join(path) or "(top level)"
            raise errors.RecipeError(field, f"YAML read a number of {len(str(node.value))} digits, out of range "
                                     "for any number field", location=f"{source}:{line}",
                                     hint="if it is text (a digest), quote the value, e.g. sha256: '0123…'")
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "<complex key>"
            key_line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in seen:
                raise errors.RecipeError(".".join(child), f"duplicate key (lines {seen[key]} and {key_line}); "
                                         "YAML keys are unique", location=f"{source}:{key_line}",
                                         hint="keep one of them")
            seen[key] = key_line
            lines.setdefault(child, key_line)
            _walk(value_node, child, lines, source, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, str(index))
            lines.setdefault(child, item.start_mark.line + 1)
            _walk(item, child, lines, source, budget)
