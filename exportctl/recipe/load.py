"""Reading a recipe: bounded YAML (recipe/bounded_yaml.py) with the line of every key, validated into
`Recipe`, every failure a RecipeError that names the field, its `file:line` and a fix ("did you mean" for unknown keys).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from exportctl import errors
from exportctl.recipe import bounded_yaml
from exportctl.recipe.model import Recipe, nearest_line


def load_recipe(path: Path) -> Recipe:
    """Read, parse and validate a recipe file, turning every failure into a RecipeError with a line number."""
    return parse_recipe(bounded_yaml.read_text(path), source=str(path), base_dir=path.parent)


def parse_recipe(text: str, *, source: str = "<recipe>", base_dir: Path = Path(".")) -> Recipe:
    try:
        root = bounded_yaml.compose(text, source)
        lines = bounded_yaml.key_lines(root, source)  # before constructing: refuses what would blow up
        data = bounded_yaml.construct(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise errors.ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                                 hint="fix the YAML syntax (indentation, quotes, colons)") from exc
    except (ValueError, OverflowError, RecursionError) as exc:  # a scalar YAML resolves but cannot build
        raise errors.ConfigError(f"{source}: a value cannot be read ({type(exc).__name__}: {str(exc)[:200]})",
                                 hint="check the numbers and dates in the recipe") from None
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
        return f"expected text, YAML read a number ({_short(err['input'])})", "quote the value, e.g. sha256: '0123…'"
    if err["type"] == "string_pattern_mismatch" and loc[-2:] == ("demo", "arch"):
        return (f"{_short(err.get('input'))} is not an Ultralytics detection architecture",
                "name one, e.g. yolo11n.yaml, yolov8s.yaml, yolo12m.yaml")
    if err["type"] == "enum":
        return f"{err['msg'].lower()} (got {_short(err.get('input'))})", None
    return f"{err['msg']} (got {_short(err.get('input'))})", None


def _short(value: Any) -> str:
    """A value quoted in a message, cut short: a 50 MB string must not become a 50 MB error."""
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:100]}… ({len(text)} characters)"


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
