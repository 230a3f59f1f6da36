"""Parameter models: each strategy and logic mixin declares its parameters as a pydantic model, so
the registry can list them, validate a spec against them and explain what is allowed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ParamsModel(BaseModel):
    """Base of every parameter model: unknown names are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
