"""The host's per-format option models, derived from each FormatSpec's option data.

Frozen pydantic models that refuse unknown keys (so a typo never silently does nothing), built once per
format with `create_model`; the cell reads the same `Option` data for its defaults.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from exportctl.formats.spec import FormatSpec
from exportctl.recipe.model import Recipe


@functools.cache
def options_model(spec: FormatSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {
        o.name: (Literal[o.choices] if o.choices else o.type,
                 Field(o.default, ge=o.ge, gt=o.gt, le=o.le, description=o.help or None))
        for o in spec.options
    }
    model: type[BaseModel] = create_model(f"{spec.name.title()}Options",
                                          __config__=ConfigDict(frozen=True, extra="forbid"), **fields)
    return model


def validate_options(recipe: Recipe, spec: FormatSpec, given: dict[str, Any]) -> dict[str, Any]:
    """The format's options from the recipe, every one filled in; a RecipeError naming the field otherwise."""
    model = options_model(spec)
    try:
        return model.model_validate(given).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ("formats", spec.name, "options", *(str(p) for p in first["loc"]))
        known = list(model.model_fields)
        close = difflib.get_close_matches(path[-1], known, n=1) if first["type"] == "extra_forbidden" else []
        option = next((o for o in spec.options if o.name == path[-1]), None)
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif option is not None and option.choices:
            hint = option.help
        else:
            hint = f"options for {spec.name}: {', '.join(known) or 'none'}"
        raise recipe.error(*path, problem=f"{first['msg']} (got {first.get('input')!r})", hint=hint) from exc
