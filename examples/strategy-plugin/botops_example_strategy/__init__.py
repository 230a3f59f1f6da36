"""BreakoutMomentum: buy a breakout above the N-bar high when momentum agrees; exit below the M-bar low."""

from __future__ import annotations

from typing import Any

from botops_example_strategy_params import SCHEMA, BreakoutParams

from bot_runtime.btcompat import bt
from bot_runtime.strategies import BotStrategy


class BreakoutMomentum(BotStrategy):
    strategy_name = SCHEMA.name
    description = SCHEMA.description
    Params = BreakoutParams

    @classmethod
    def max_lookback(cls, params: Any) -> int:
        return SCHEMA.max_lookback(params)

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
