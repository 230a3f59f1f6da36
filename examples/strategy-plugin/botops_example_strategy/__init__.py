"""BreakoutMomentum: buy a breakout above the N-bar high when momentum agrees; exit below the M-bar low."""

from __future__ import annotations

from pydantic import Field, model_validator

from bot_runtime.btcompat import bt
from bot_runtime.strategies import BotStrategy, ParamsModel


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


class BreakoutMomentum(BotStrategy):
    strategy_name = "BreakoutMomentum"
    description = "Donchian breakout entries filtered by momentum; exit below the recent low."
    Params = BreakoutParams

    @classmethod
    def max_lookback(cls, params: BreakoutParams) -> int:  # type: ignore[override]
        return max(params.entry_period, params.momentum_period) + 1

    def build(self) -> None:
        self.high = bt.indicators.Highest(self.data.high(-1), period=self.cfg.entry_period)
        self.low = bt.indicators.Lowest(self.data.low(-1), period=self.cfg.exit_period)
        self.momentum = bt.indicators.Momentum(self.data.close, period=self.cfg.momentum_period)

    def decide(self) -> None:
        close = float(self.data.close[0])
        if self.position.size > 0:
            if close < self.low[0]:
                self.exit_long(f"close {close:g} below {self.cfg.exit_period}-bar low")
        elif close > self.high[0] and self.momentum[0] > 0:
            self.enter_long(self.broker.getcash() * self.cfg.stake / close, "breakout with momentum")
