"""The bot's own risk rules, the half of the order gate that needs no database: the trading state, the
daily-loss halt, the order types every broker accepts, and the spec's limits.

Trading states (NautilusTrader's RiskEngine has the same three; docs/research/venues.md): `active` trades;
`reducing` lets only orders that reduce the position through, so exits and stop-losses still fire while
nothing adds exposure; `halted` lets nothing through. A fleet halt, `onStart: halt` and the daily-loss
limit make a bot `reducing`; a fleet halt asked for as a full stop makes it `halted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from bot_runtime.api.models import RiskSpec

TradingState = Literal["active", "reducing", "halted"]
TRADING_STATES: tuple[TradingState, ...] = ("active", "reducing", "halted")
# What every broker accepts, paper and live alike: market and limit orders, a sell stop that protects a
# position (resting at the venue where it can), and brackets made of them.
ORDER_KINDS = ("market", "limit", "stop")


@dataclass(frozen=True)
class OrderRequest:
    side: str  # "buy" or "sell"
    size: float  # base units
    price: float  # the reference price: the last close, or the order's limit or stop price
    kind: str  # market | limit | stop | (anything else is refused)
    reduces: bool  # a sell of no more than the position
    client_order_id: str = ""
    reason: str = ""

    @property
    def notional(self) -> float:
        return self.size * self.price


@dataclass
class DailyLoss:
    """The loss since the UTC day's start, on live bars only. The day only moves forward (a bar from
    yesterday, a warm-up bar after a restart, never opens a new day), and a halt lasts until the day ends,
    restarts included (its reason is saved)."""

    max_daily_loss: float | None
    day: date | None = None
    day_start_equity: float = 0.0
    halted_reason: str | None = None

    def update(self, now: datetime, equity: float) -> str | None:
        today = now.date()
        if self.day is None or today > self.day:
            self.day, self.day_start_equity, self.halted_reason = today, equity, None
        if self.max_daily_loss is not None and self.halted_reason is None and today == self.day:
            loss = self.day_start_equity - equity
            if loss >= self.max_daily_loss:
                self.halted_reason = (
                    f"daily loss {loss:.2f} reached max_daily_loss {self.max_daily_loss:g}; "
                    f"entries halted until {today.isoformat()} 24:00 UTC"
                )
        return self.halted_reason


class RiskGate:
    """The spec's limits, the daily-loss halt and the trading state; the runtime adds the fleet's side."""

    def __init__(self, risk: RiskSpec) -> None:
        self.risk = risk
        self.daily = DailyLoss(risk.max_daily_loss)

    def state(self) -> tuple[TradingState, str | None]:
        if self.daily.halted_reason:
            return "reducing", self.daily.halted_reason
        return "active", None

    def release(self, client_order_id: str) -> None:
        """Nothing to release without a database (the runtime's gate releases cap reservations)."""

    def check(
        self,
        request: OrderRequest,
        position: float,
        open_orders: int,
        state: tuple[TradingState, str | None] | None = None,
    ) -> str | None:
        """A refusal reason, or None."""
        current, why = state or self.state()
        if request.kind not in ORDER_KINDS or (request.kind == "stop" and request.side == "buy"):
            return (
                f"{request.kind} {request.side} orders are not placed (paper and live accept market and limit "
                "orders, sell stops and brackets of them)"
            )
        if current == "halted":
            return f"trading halted: {why}"
        if current == "reducing" and not request.reduces:
            return f"reducing only (no new exposure): {why}"
        if request.size <= 0:
            return f"size {request.size:.8g} is not positive (max_position_size reached?)"
        if open_orders >= self.risk.max_open_orders and not request.reduces:
            return f"{open_orders} orders open, max_open_orders is {self.risk.max_open_orders}"
        limit = self.risk.max_position_size
        if limit is not None and request.side == "buy" and position + request.size > limit * (1 + 1e-9):
            return f"position would be {position + request.size:.8g}, max_position_size is {limit:g}"
        return None
