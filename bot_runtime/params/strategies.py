"""Parameters of the built-in strategies, their semantic checks and lookbacks."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from bot_runtime.params.base import ParamsModel, model_errors
from bot_runtime.params.logic import LogicSchema, LogicSchemas, entry_logic_schemas, exit_logic_schemas


class LogicRef(ParamsModel):
    name: str = Field(description="Registered logic mixin name.")
    params: dict[str, Any] = Field(default_factory=dict, description="The mixin's own parameters.")


def _as_ref(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


def check_logic_ref(schemas: LogicSchemas, ref: LogicRef, path: str) -> list[tuple[str, str]]:
    """Errors of one mixin reference: an unknown name, or parameters its model refuses."""
    schema = schemas.get(ref.name)
    if schema is None:
        return [(f"{path}.name", f"unknown {schemas.kind} logic {ref.name!r}; allowed: {', '.join(schemas.names())}")]
    return [(f"{path}.params{sub}", msg) for sub, msg in model_errors(schema.Params, ref.params)]


def resolve_logic(schemas: LogicSchemas, ref: LogicRef) -> tuple[LogicSchema, ParamsModel]:
    schema = schemas.get(ref.name)
    if schema is None:
        raise ValueError(f"unknown {schemas.kind} logic {ref.name!r}")
    return schema, schema.Params(**ref.params)


def logic_lookback(schemas: LogicSchemas, ref: LogicRef) -> int:
    schema, params = resolve_logic(schemas, ref)
    return int(schema.lookback(params))


# --------------------------------------------------------------------------------- CustomStrategy


class CustomStrategyParams(ParamsModel):
    entry_logic: LogicRef = Field(
        default_factory=lambda: LogicRef(name="sma_crossover"),
        description="Entry mixin: a name or {name, params}.",
    )
    exit_logic: list[LogicRef] = Field(
        default_factory=lambda: [LogicRef(name="stop_loss")],
        description="Exit mixins: a name, {name, params}, or a list of them; any one may close the position.",
    )
    stake: float = Field(0.95, gt=0, le=1, description="Fraction of free cash used per entry.")
    exit_on_opposite_signal: bool = Field(True, description="Also exit when the entry mixin turns bearish.")

    @field_validator("entry_logic", mode="before")
    @classmethod
    def _entry_ref(cls, value: Any) -> Any:
        return _as_ref(value)

    @field_validator("exit_logic", mode="before")
    @classmethod
    def _exit_refs(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        return [_as_ref(v) for v in items]


def check_custom(params: Any) -> list[tuple[str, str]]:
    errors = check_logic_ref(entry_logic_schemas, params.entry_logic, ".entry_logic")
    for i, ref in enumerate(params.exit_logic):
        errors += check_logic_ref(exit_logic_schemas, ref, f".exit_logic[{i}]")
    return errors


def custom_lookback(params: Any) -> int:
    refs = [(entry_logic_schemas, params.entry_logic)] + [(exit_logic_schemas, r) for r in params.exit_logic]
    return max(logic_lookback(schemas, ref) for schemas, ref in refs)


# ---------------------------------------------------------------------- AdvancedStrategyFramework


class WeightedSignal(LogicRef):
    weight: float = Field(1.0, gt=0, le=100, description="Weight of this signal's bias in the score.")


class AdvancedStrategyParams(ParamsModel):
    signals: list[WeightedSignal] = Field(
        default_factory=lambda: [
            WeightedSignal(name="ema_crossover", weight=2.0),
            WeightedSignal(name="rsi_threshold", weight=1.0),
            WeightedSignal(name="macd_cross", weight=1.0),
        ],
        min_length=1,
        max_length=10,
        description="Entry mixins whose bias (+1 bullish, -1 bearish) is weighed.",
    )
    threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Enter when the weighted score reaches this; exit at -threshold.",
    )
    risk_fraction: float = Field(0.01, gt=0, le=0.2, description="Fraction of equity risked per trade (to the stop).")
    stop_loss_pct: float = Field(0.02, gt=0, lt=1, description="Protective stop below entry; also sizes positions.")
    take_profit_pct: float | None = Field(None, gt=0, le=100, description="Optional take-profit above entry.")
    trailing_stop_pct: float | None = Field(None, gt=0, lt=1, description="Optional trailing stop below the high.")

    @model_validator(mode="after")
    def _unique_signals(self) -> AdvancedStrategyParams:
        names = [s.name for s in self.signals]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"signals names must be unique; repeated: {', '.join(duplicates)}")
        return self


def check_advanced(params: Any) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for i, signal in enumerate(params.signals):
        errors += check_logic_ref(entry_logic_schemas, signal, f".signals[{i}]")
    return errors


def advanced_lookback(params: Any) -> int:
    return max(logic_lookback(entry_logic_schemas, s) for s in params.signals)
