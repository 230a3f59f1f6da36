"""The base of every parameter model, and its errors in words a user can act on."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class ParamsModel(BaseModel):
    """Base of every parameter model: unknown names are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def loc_path(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def model_errors(model: type[ParamsModel], data: Any) -> list[tuple[str, str]]:
    """Validate `data` against a parameter model; return (path, message) pairs a user can act on."""
    if not isinstance(data, dict):
        return [("", f"must be an object of parameters, got {type(data).__name__}")]
    try:
        model.model_validate(data)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown parameter; allowed: {', '.join(sorted(model.model_fields)) or '(none)'}"
            elif err["type"] in ("literal_error", "enum"):
                msg = f"{msg} (got {err.get('input')!r})"
            elif isinstance(err.get("input"), (str, int, float, bool)) and err["type"] != "missing":
                msg = f"{msg} (got {err['input']!r})"
            out.append((loc_path(tuple(err["loc"])), msg))
        return out
    return []
