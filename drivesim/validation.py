"""Pydantic validation errors as messages a user can act on: the field, the value, what is allowed."""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ValidationError


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _submodel(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(loc: tuple, root: type[BaseModel]) -> list[str]:
    """Field names of the model that holds the key at loc (for 'unknown key' errors)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, str) and model is not None and part in model.model_fields:
            model = _submodel(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def validation_problems(err: ValidationError, source: str, root: type[BaseModel], what: str) -> str:
    """Pydantic errors of a `root` model -> one line per problem naming field, value and what is allowed."""
    lines = [f"{source}: invalid {what} ({err.error_count()} problem(s))"]
    for e in err.errors():
        where = _loc(e["loc"])
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(e["loc"], root))
            lines.append(f"  {where}: unknown key; allowed keys here: {allowed}")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        value = "" if e["type"] == "missing" or not e["loc"] else f" = {e.get('input')!r}"
        lines.append(f"  {where}{value}: {msg}")
    return "\n".join(lines)
