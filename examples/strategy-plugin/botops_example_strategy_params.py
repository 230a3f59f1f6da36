"""The parameter schema of BreakoutMomentum: pure pydantic, so the operator can check a spec against it
without importing the strategy (entry-point group `botops.strategy_params`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from bot_runtime.params import ParamsModel, StrategySchema


class BreakoutParams(ParamsModel):
    entry_period: int = Field(20, ge=2, le=500, description="Bars of the breakout high.")
    exit_period: int = Field(10, ge=2, le=500, description="Bars of the exit low.")
    momentum_period: int = Field(10, ge=1, le=500, description="Bars of the momentum filter.")
    stake: float = Field(0.5, gt=0, le=1, description="Fraction of free cash per entry.")

    @model_validator(mode="after")
    def _exit_not_slower(self) -> BreakoutParams:
        if self.exit_period > self.entry_period:
            raise ValueError(f"exit_period ({self.exit_period}) must not exceed entry_period ({self.entry_period})")
        return self


def max_lookback(params: Any) -> int:
    return max(params.entry_period, params.momentum_period) + 1


SCHEMA = StrategySchema(
    "BreakoutMomentum",
    "Donchian breakout entries filtered by momentum; exit below the recent low.",
    BreakoutParams,
    max_lookback=max_lookback,
)
