"""Reading a recipe: YAML with the line of every key, validated into `Recipe`, every failure a RecipeError
that names the field, its `file:line` and a fix ("did you mean" for unknown keys).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from exportctl import errors
from exportctl.recipe.model import Recipe, nearest_line


def load_recipe(path: Path) -> Recipe:
    """Read, parse and validate a recipe file, turning every failure into a RecipeError with a line number."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise errors.ConfigError(f"cannot read recipe {path}: {exc.strerror}", hint="check the path") from exc
    return parse_recipe(text, source=str(path), base_dir=path.parent)


def parse_recipe(text: str, *, source: str = "<recipe>", base_dir: Path = Path(".")) -> Recipe:
    try:
        data = yaml.safe_load(text)
        lines = key_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise errors.ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                                 hint="fix the YAML syntax (indentation, quotes, colons)") from exc
    if not isinstance(data, dict):
        raise errors.ConfigError(f"{source}: a recipe is a YAML mapping with 'name', 'checkpoint', 'formats'")
    for internal in ("base_dir", "source", "positions"):
        if internal in data:
            line = lines.get((internal,))
            raise errors.RecipeError(internal, "unknown key", location=f"{source}:{line}",
                                     hint="remove it; exportctl sets it from where the recipe is read")
    try:
        return Recipe.model_validate({**data, "base_dir": base_dir, "source": source, "positions": lines})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = nearest_line(lines, loc)
        location = f"{source}:{line}" if line else source
        problem, hint = _describe(first, loc)
        raise errors.RecipeError(field, problem, location=location, hint=hint) from exc


def _describe(err: Any, loc: tuple[Any, ...]) -> tuple[str, str | None]:
    if err["type"] == "extra_forbidden":
        known = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(sorted(known))}"
        return "unknown key", hint
    if err["type"] == "missing":
        return "is required", "add it to the recipe"
    if err["type"] == "string_type" and isinstance(err.get("input"), (int, float)):
        return f"expected text, YAML read a number ({err['input']!r})", "quote the value, e.g. sha256: '0123…'"
    if err["type"] == "enum":
        return f"{err['msg'].lower()} (got {err.get('input')!r})", None
    return f"{err['msg']} (got {err.get('input')!r})", None


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that sits at `loc` inside a Recipe, for "did you mean" suggestions."""
    model: Any = Recipe
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(part))
        if field is None:  # a dict key (format name, precision): step into the dict's value type
            continue
        model = _model_in(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [n for n, f in model.model_fields.items() if not f.exclude]
    return []


def _model_in(annotation: Any) -> Any:
    for arg in (*getattr(annotation, "__args__", ()), annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _model_in(arg) if getattr(arg, "__args__", None) else None
        if inner is not None:
            return inner
    return None



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
