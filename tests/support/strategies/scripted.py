"""A strategy whose orders a test can predict: it buys a fixed amount on its first live bar when flat,
and its stop-loss sells the whole position. Loaded by the runtime from BOTOPS_STRATEGY_PATHS."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bot_runtime.params.logic import StopLossParams
from bot_runtime.strategies import BotStrategy, ParamsModel
from bot_runtime.strategies.exits import StopLoss


class ScriptedParams(ParamsModel):
    buy_amount: float = Field(0.5, gt=0, description="Base units bought on the first live bar when flat.")
    entries: int = Field(1, ge=0, description="Entries this run makes at most.")
    wait_bars: int = Field(0, ge=0, description="Live bars to let pass before the first entry.")
    stop_loss_pct: float = Field(0.2, gt=0, lt=1, description="The stop-loss below the entry price.")


class Scripted(BotStrategy):
    strategy_name = "Scripted"
    description = "Test strategy: a fixed buy, then a stop-loss."
    Params = ScriptedParams

    def build(self) -> None:
        self.entries = 0
        self.live_bars = 0
        self.stop_loss = StopLoss(self, self.data, StopLossParams(stop_loss_pct=self.cfg.stop_loss_pct))

    def decide(self) -> None:
        if self.position.size > 0:
            self.apply_exits([self.stop_loss])
        elif self.live_bars < self.cfg.wait_bars:
            self.live_bars += 1
        elif self.entries < self.cfg.entries:
            self.entries += 1
            self.enter_long(self.cfg.buy_amount, "scripted entry")

    @classmethod
    def max_lookback(cls, params: Any) -> int:
        return 0
