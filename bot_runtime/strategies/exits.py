"""Built-in exit logic mixins. They read the position through a PositionView, so they also protect a
position adopted after a restart (entry price restored from the database)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bot_runtime.btcompat import bt
from bot_runtime.strategies.logic import ExitLogic, PositionView, exit_logics
from bot_runtime.strategies.params import ParamsModel


class StopLossParams(ParamsModel):
    stop_loss_pct: float = Field(0.02, gt=0, lt=1, description="Exit when price falls this fraction below entry.")


@exit_logics.register
class StopLoss(ExitLogic):
    name = "stop_loss"
    description = "Exit when the close is stop_loss_pct below the entry price."
    Params = StopLossParams

    def exit_reason(self, position: PositionView) -> str | None:
        floor = position.entry_price * (1 - self.p.stop_loss_pct)
        return f"stop loss at {floor:.8g}" if position.close <= floor else None


class TakeProfitParams(ParamsModel):
    take_profit_pct: float = Field(0.04, gt=0, le=100, description="Exit when price rises this fraction above entry.")


@exit_logics.register
class TakeProfit(ExitLogic):
    name = "take_profit"
    description = "Exit when the close is take_profit_pct above the entry price."
    Params = TakeProfitParams

    def exit_reason(self, position: PositionView) -> str | None:
        target = position.entry_price * (1 + self.p.take_profit_pct)
        return f"take profit at {target:.8g}" if position.close >= target else None


class TrailingStopParams(ParamsModel):
    trail_pct: float = Field(0.03, gt=0, lt=1, description="Exit when price falls this fraction below its high.")


@exit_logics.register
class TrailingStop(ExitLogic):
    name = "trailing_stop"
    description = "Exit when the close falls trail_pct below the highest close since entry."
    Params = TrailingStopParams

    def exit_reason(self, position: PositionView) -> str | None:
        floor = position.high_since_entry * (1 - self.p.trail_pct)
        return f"trailing stop at {floor:.8g}" if position.close <= floor else None


class RsiExitParams(ParamsModel):
    period: int = Field(14, ge=2, le=200, description="RSI period in bars.")
    overbought: float = Field(70.0, gt=0, lt=100, description="Exit when RSI reaches this level.")


@exit_logics.register
class RsiExit(ExitLogic):
    name = "rsi_exit"
    description = "Exit when RSI reaches the overbought level."
    Params = RsiExitParams

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.rsi = bt.indicators.RSI(data.close, period=params.period, safediv=True)

    @classmethod
    def lookback(cls, params: Any) -> int:
        return int(params.period) + 1

    def exit_reason(self, position: PositionView) -> str | None:
        return f"RSI {self.rsi[0]:.1f} >= {self.p.overbought:g}" if self.rsi[0] >= self.p.overbought else None


class TimeExitParams(ParamsModel):
    max_bars: int = Field(60, ge=1, le=100_000, description="Exit after holding the position this many bars.")


@exit_logics.register
class TimeExit(ExitLogic):
    name = "time_exit"
    description = "Exit after max_bars bars in the position."
    Params = TimeExitParams

    def exit_reason(self, position: PositionView) -> str | None:
        return f"held {position.bars_held} bars" if position.bars_held >= self.p.max_bars else None
