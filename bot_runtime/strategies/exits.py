"""Built-in exit logic mixins. They read the position through a PositionView, so they also protect a
position adopted after a restart (entry price restored from the database)."""

from __future__ import annotations

from typing import Any

from bot_runtime.btcompat import bt
from bot_runtime.params import logic as schemas
from bot_runtime.strategies.logic import ExitLogic, PositionView, exit_logics


@exit_logics.register
class StopLoss(ExitLogic):
    schema = schemas.STOP_LOSS

    def exit_reason(self, position: PositionView) -> str | None:
        floor = self.stop_price(position)
        return f"stop loss at {floor:.8g}" if position.close <= floor else None

    def stop_price(self, position: PositionView) -> float:
        return float(position.entry_price * (1 - self.p.stop_loss_pct))


@exit_logics.register
class TakeProfit(ExitLogic):
    schema = schemas.TAKE_PROFIT

    def exit_reason(self, position: PositionView) -> str | None:
        target = position.entry_price * (1 + self.p.take_profit_pct)
        return f"take profit at {target:.8g}" if position.close >= target else None


@exit_logics.register
class TrailingStop(ExitLogic):
    schema = schemas.TRAILING_STOP

    def exit_reason(self, position: PositionView) -> str | None:
        floor = self.stop_price(position)
        return f"trailing stop at {floor:.8g}" if position.close <= floor else None

    def stop_price(self, position: PositionView) -> float:
        return float(position.high_since_entry * (1 - self.p.trail_pct))


@exit_logics.register
class RsiExit(ExitLogic):
    schema = schemas.RSI_EXIT

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.rsi = bt.indicators.RSI(data.close, period=params.period, safediv=True)

    def exit_reason(self, position: PositionView) -> str | None:
        return f"RSI {self.rsi[0]:.1f} >= {self.p.overbought:g}" if self.rsi[0] >= self.p.overbought else None


@exit_logics.register
class TimeExit(ExitLogic):
    schema = schemas.TIME_EXIT

    def exit_reason(self, position: PositionView) -> str | None:
        return f"held {position.bars_held} bars" if position.bars_held >= self.p.max_bars else None
