"""Strategies whose orders a test can predict, loaded by the runtime from BOTOPS_STRATEGY_PATHS.

Scripted buys a fixed amount on a live bar when flat, and its stop-loss (or trailing stop) sells the whole
position. DirectBuyer is a plug-in that ignores the helpers and calls Backtrader's `buy()` itself.
Bracketeer opens with Backtrader's `buy_bracket()`: a market buy with a stop and a take-profit.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from pydantic import Field

from bot_runtime.btcompat import bt
from bot_runtime.params.logic import StopLossParams, TrailingStopParams
from bot_runtime.strategies import BotStrategy, ParamsModel
from bot_runtime.strategies.exits import StopLoss, TrailingStop


class ScriptedParams(ParamsModel):
    buy_amount: float = Field(0.5, gt=0, description="Base units bought on a live bar when flat.")
    entries: int = Field(1, ge=0, description="Entries this run makes at most.")
    wait_bars: int = Field(0, ge=0, description="Live bars to let pass before the first entry.")
    buy_after: float = Field(0.0, ge=0, description="No entry on a bar closing before this time (epoch seconds).")
    stop_loss_pct: float = Field(0.2, gt=0, lt=1, description="The stop-loss below the entry price.")
    trail_pct: float | None = Field(None, gt=0, lt=1, description="A trailing stop instead of the stop-loss.")


class Scripted(BotStrategy):
    strategy_name = "Scripted"
    description = "Test strategy: a fixed buy, then a stop-loss."
    Params = ScriptedParams

    def build(self) -> None:
        self.entries = 0
        self.live_bars = 0
        if self.cfg.trail_pct:
            self.exits = [TrailingStop(self, self.data, TrailingStopParams(trail_pct=self.cfg.trail_pct))]
        else:
            self.exits = [StopLoss(self, self.data, StopLossParams(stop_loss_pct=self.cfg.stop_loss_pct))]

    def decide(self) -> None:
        if self.position.size > 0:
            self.apply_exits(self.exits)
        elif self.live_bars < self.cfg.wait_bars:
            self.live_bars += 1
        elif self.entries < self.cfg.entries and self.bar_time() >= self.cfg.buy_after:
            self.entries += 1
            self.enter_long(self.cfg.buy_amount, "scripted entry")

    def bar_time(self) -> float:
        when = bt.num2date(self.data.datetime[0]).replace(tzinfo=UTC)  # bar times are naive UTC
        return when.timestamp() if self.cfg.buy_after else 0.0

    @classmethod
    def max_lookback(cls, params: Any) -> int:
        return 0


class DirectBuyer(BotStrategy):
    strategy_name = "DirectBuyer"
    description = "Test plug-in: Backtrader's buy() on every bar, around the helpers."
    Params = ScriptedParams

    def decide(self) -> None:
        if not self.position.size:
            self.buy(size=self.cfg.buy_amount)


class Bracketeer(BotStrategy):
    strategy_name = "Bracketeer"
    description = "Test plug-in: one buy_bracket() with a stop below and a take-profit above."
    Params = ScriptedParams
    order_types = ("market", "stop", "limit", "bracket")

    def build(self) -> None:
        self.entries = 0

    def decide(self) -> None:
        if self.position.size or self.entries:
            return
        self.entries += 1
        close = float(self.data.close[0])
        self.buy_bracket(
            size=self.cfg.buy_amount,
            exectype=bt.Order.Market,
            stopprice=round(close * (1 - self.cfg.stop_loss_pct), 2),
            limitprice=round(close * 1.5, 2),
        )
