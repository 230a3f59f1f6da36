"""Entry and exit logic mixins as schemas: name, description, parameters and lookback.

CustomStrategy composes them by name and AdvancedStrategyFramework weighs them; their Backtrader
implementations (bot_runtime.strategies.entry/exits) bind to these schemas by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from bot_runtime.params.base import ParamsModel


@dataclass(frozen=True)
class LogicSchema:
    kind: str  # "entry" or "exit"
    name: str
    description: str
    Params: type[ParamsModel]
    lookback: Callable[[Any], int]  # bars of history the logic needs, from its parameters


class LogicSchemas:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._by_name: dict[str, LogicSchema] = {}

    def register(self, schema: LogicSchema) -> LogicSchema:
        self._by_name[schema.name] = schema
        return schema

    def get(self, name: str) -> LogicSchema | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[LogicSchema]:
        return iter(schema for _, schema in sorted(self._by_name.items()))


entry_logic_schemas = LogicSchemas("entry")
exit_logic_schemas = LogicSchemas("exit")


def _entry(name: str, description: str, params: type[ParamsModel], lookback: Callable[[Any], int]) -> LogicSchema:
    return entry_logic_schemas.register(LogicSchema("entry", name, description, params, lookback))


def _exit(
    name: str, description: str, params: type[ParamsModel], lookback: Callable[[Any], int] = lambda p: 0
) -> LogicSchema:
    return exit_logic_schemas.register(LogicSchema("exit", name, description, params, lookback))


# ------------------------------------------------------------------------------------- entries


class CrossoverParams(ParamsModel):
    fast_period: int = Field(10, ge=1, le=500, description="Bars of the fast moving average.")
    slow_period: int = Field(30, ge=2, le=1000, description="Bars of the slow moving average.")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> CrossoverParams:
        if self.fast_period >= self.slow_period:
            raise ValueError(f"fast_period ({self.fast_period}) must be less than slow_period ({self.slow_period})")
        return self


class RsiParams(ParamsModel):
    period: int = Field(14, ge=2, le=200, description="RSI period in bars.")
    oversold: float = Field(30.0, gt=0, lt=100, description="Enter when RSI crosses up through this level.")
    overbought: float = Field(70.0, gt=0, lt=100, description="Bearish when RSI crosses down through this level.")

    @model_validator(mode="after")
    def _levels_ordered(self) -> RsiParams:
        if self.oversold >= self.overbought:
            raise ValueError(f"oversold ({self.oversold}) must be below overbought ({self.overbought})")
        return self


class BollingerParams(ParamsModel):
    period: int = Field(20, ge=2, le=500, description="Bars of the middle band (SMA).")
    devfactor: float = Field(2.0, gt=0, le=10, description="Band width in standard deviations.")


class MacdParams(ParamsModel):
    fast_period: int = Field(12, ge=1, le=500, description="Fast EMA period.")
    slow_period: int = Field(26, ge=2, le=1000, description="Slow EMA period.")
    signal_period: int = Field(9, ge=1, le=500, description="Signal line EMA period.")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast_period >= self.slow_period:
            raise ValueError(f"fast_period ({self.fast_period}) must be less than slow_period ({self.slow_period})")
        return self


SMA_CROSSOVER = _entry(
    "sma_crossover",
    "Enter when the fast simple moving average crosses above the slow one.",
    CrossoverParams,
    lambda p: int(p.slow_period) + 1,
)
EMA_CROSSOVER = _entry(
    "ema_crossover",
    "Enter when the fast exponential moving average crosses above the slow one.",
    CrossoverParams,
    lambda p: int(p.slow_period) + 1,
)
RSI_THRESHOLD = _entry(
    "rsi_threshold",
    "Enter when RSI recovers from oversold (crosses up through `oversold`).",
    RsiParams,
    lambda p: int(p.period) + 2,
)
BOLLINGER_BREAKOUT = _entry(
    "bollinger_breakout",
    "Enter when the close breaks above the upper Bollinger band.",
    BollingerParams,
    lambda p: int(p.period) + 1,
)
MACD_CROSS = _entry(
    "macd_cross",
    "Enter when the MACD line crosses above its signal line.",
    MacdParams,
    lambda p: int(p.slow_period) + int(p.signal_period) + 1,
)


# --------------------------------------------------------------------------------------- exits


class StopLossParams(ParamsModel):
    stop_loss_pct: float = Field(0.02, gt=0, lt=1, description="Exit when price falls this fraction below entry.")


class TakeProfitParams(ParamsModel):
    take_profit_pct: float = Field(0.04, gt=0, le=100, description="Exit when price rises this fraction above entry.")


class TrailingStopParams(ParamsModel):
    trail_pct: float = Field(0.03, gt=0, lt=1, description="Exit when price falls this fraction below its high.")


class RsiExitParams(ParamsModel):
    period: int = Field(14, ge=2, le=200, description="RSI period in bars.")
    overbought: float = Field(70.0, gt=0, lt=100, description="Exit when RSI reaches this level.")


class TimeExitParams(ParamsModel):
    max_bars: int = Field(60, ge=1, le=100_000, description="Exit after holding the position this many bars.")


STOP_LOSS = _exit("stop_loss", "Exit when the close is stop_loss_pct below the entry price.", StopLossParams)
TAKE_PROFIT = _exit("take_profit", "Exit when the close is take_profit_pct above the entry price.", TakeProfitParams)
TRAILING_STOP = _exit(
    "trailing_stop", "Exit when the close falls trail_pct below the highest close since entry.", TrailingStopParams
)
RSI_EXIT = _exit("rsi_exit", "Exit when RSI reaches the overbought level.", RsiExitParams, lambda p: int(p.period) + 1)
TIME_EXIT = _exit("time_exit", "Exit after max_bars bars in the position.", TimeExitParams)
