"""Map recipe field paths to the YAML lines they came from, so errors can point into the file."""

from __future__ import annotations

import yaml


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """{('formats', 'onnx', 'options'): 12, ...}: 1-based line of each key (or list item) in the document."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[tuple[str, ...], int] = {}
    if root is not None:
        _walk(root, (), lines)
    return lines


def _walk(node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, str(index))
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines)
