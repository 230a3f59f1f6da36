"""BotStrategy: the Backtrader strategy base every registered strategy derives from.

It owns what every bot needs, whatever its logic: trade only while the feed is live, one order in
flight at a time, the spec's risk limits and the runtime's gate (lease, halts, caps) before every
order, a position view for exits, and snapshots for the runtime (never read across threads).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from bot_runtime.api.models import RiskSpec
from bot_runtime.btcompat import bt
from bot_runtime.params import ParamsModel, StrategySchema
from bot_runtime.strategies.logic import PositionView

log = logging.getLogger(__name__)

INTERFACE_VERSION = 1


@dataclass(frozen=True)
class OrderIntent:
    side: str  # "buy" or "sell"
    size: float
    price: float
    reason: str
    reduces_position: bool


@dataclass(frozen=True)
class Snapshot:
    """What the runtime reports; built on the strategy's thread, read by others."""

    bar_time: datetime | None
    close: float
    cash: float
    equity: float
    position: float
    entry_price: float
    open_orders: int
    trade_count: int
    realized_pnl: float
    live: bool
    halted: bool
    halt_reason: str | None
    entry_time: datetime | None = None
    high_since_entry: float = 0.0
    day: date | None = None
    day_start_equity: float = 0.0


class StrategyHooks:
    """The runtime's side of the contract. The defaults are what a backtest needs: no gate."""

    def order_gate(self, intent: OrderIntent) -> str | None:
        """The runtime's order gate: a refusal reason stops the order (lease lost, fleet halt, exposure cap)."""
        return None

    def on_refused(self, intent: OrderIntent, reason: str) -> None:
        log.info("order refused: %s %.8g (%s): %s", intent.side, intent.size, intent.reason, reason)

    def on_order(self, order: Any) -> None:
        pass

    def on_trade(self, trade: Any) -> None:
        pass

    def on_bar(self, snapshot: Snapshot) -> None:
        pass

    def on_feed_status(self, status: str) -> None:
        pass

    def on_halt(self, reason: str) -> None:
        pass

    def on_start(self, strategy: BotStrategy) -> None:
        """Restore what a previous runtime left (position, cash, counters) before the first bar."""

    def trading_halted(self) -> str | None:
        """Why orders may not be placed now (a fleet halt, an onStart halt), or None."""
        return None

    def flatten_requested(self) -> str | None:
        """Why the position must be closed now (fleet halt --flatten, onStart flatten), or None."""
        return None


@dataclass(frozen=True)
class RestoredPosition:
    """A position found at start (database or exchange) that the strategy adopts and protects."""

    size: float
    entry_price: float
    entry_time: datetime | None = None
    high_since_entry: float = 0.0


@dataclass
class DailyLossGuard:
    """Tracks the loss since the UTC day's start; once max_daily_loss is reached, entries halt."""

    max_daily_loss: float | None
    day: date | None = None
    day_start_equity: float = 0.0
    halted_reason: str | None = None

    def update(self, now: datetime, equity: float) -> str | None:
        today = now.date()
        if self.day != today:
            self.day, self.day_start_equity, self.halted_reason = today, equity, None
        if self.max_daily_loss is not None and self.halted_reason is None:
            loss = self.day_start_equity - equity
            if loss >= self.max_daily_loss:
                self.halted_reason = (
                    f"daily loss {loss:.2f} reached max_daily_loss {self.max_daily_loss:g}; "
                    f"entries halted until {today.isoformat()} 24:00 UTC"
                )
        return self.halted_reason


class BotStrategy(bt.Strategy):  # type: ignore[misc]
    """Base of registered strategies. Subclasses implement `build()` and `decide()`."""

    strategy_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    interface_version: ClassVar[int] = INTERFACE_VERSION
    Params: ClassVar[type[ParamsModel]] = ParamsModel

    params = (("config", None), ("risk", None), ("hooks", None), ("timeframe_seconds", 60))

    # ------------------------------------------------------------------ registry-facing classmethods

    @classmethod
    def check(cls, params: ParamsModel) -> list[tuple[str, str]]:
        """Semantic errors beyond the Params model, as (path within params, message)."""
        return []

    @classmethod
    def max_lookback(cls, params: ParamsModel) -> int:
        return 0

    @classmethod
    def schema(cls, name: str | None = None) -> StrategySchema:
        """What the strategy catalog knows of this class: enough to validate a spec without Backtrader."""
        return StrategySchema(
            name or cls.strategy_name or cls.__name__, cls.description, cls.Params, cls.check, cls.max_lookback
        )

    # -------------------------------------------------------------------------------- lifecycle

    def __init__(self) -> None:
        self.cfg: Any = self.p.config if self.p.config is not None else self.Params()
        self.risk: RiskSpec = self.p.risk or RiskSpec()
        self.hooks: StrategyHooks = self.p.hooks or StrategyHooks()
        # A backtest feed is never "live"; a live feed must report LIVE before we trade.
        self.live = not self.data.islive()
        self.pending: list[Any] = []
        self.trade_count = 0
        self.realized_pnl = 0.0
        self.entry_time: datetime | None = None
        self.high_since_entry = 0.0
        self.daily_loss = DailyLossGuard(self.risk.max_daily_loss)
        self._announced_halt: str | None = None
        self.build()

    def build(self) -> None:
        """Create indicators and logic objects (runs inside Backtrader's __init__ phase)."""

    def decide(self) -> None:
        """Called on each new bar while trading is allowed."""
        raise NotImplementedError

    def start(self) -> None:
        self.hooks.on_start(self)

    def restore(
        self,
        position: RestoredPosition,
        realized_pnl: float = 0.0,
        day: date | None = None,
        day_start_equity: float | None = None,
    ) -> None:
        """Adopt a position (the broker already holds it) and the counters a previous runtime left."""
        if position.size:
            when = position.entry_time
            # bar times are naive UTC (docs/research/backtrader-ccxt.md §1.5); the database gives aware ones
            self.entry_time = when.astimezone(UTC).replace(tzinfo=None) if when and when.tzinfo else when
            self.high_since_entry = max(position.high_since_entry, position.entry_price)
        self.realized_pnl = realized_pnl
        if day is not None and day_start_equity is not None:
            self.daily_loss.day, self.daily_loss.day_start_equity = day, day_start_equity

    def notify_data(self, data: Any, status: int, *args: Any, **kwargs: Any) -> None:
        self.live = status == data.LIVE
        self.hooks.on_feed_status(data._getstatusname(status))

    def notify_order(self, order: Any) -> None:
        if order.status in (order.Submitted, order.Accepted, order.Partial):
            if order not in self.pending:
                self.pending.append(order)
        else:
            if order in self.pending:
                self.pending.remove(order)
            if order.status == order.Completed and order.isbuy():
                self.entry_time = self.data.datetime.datetime(0)
                self.high_since_entry = max(self.high_since_entry, order.executed.price)
        self.hooks.on_order(order)

    def notify_trade(self, trade: Any) -> None:
        if trade.isclosed:
            self.trade_count += 1
            self.realized_pnl += float(trade.pnlcomm)
        self.hooks.on_trade(trade)

    def next(self) -> None:
        close = float(self.data.close[0])
        if self.position.size:
            self.high_since_entry = max(self.high_since_entry or close, close)
        halted = self.daily_loss.update(self.data.datetime.datetime(0), self.equity())
        if halted and halted != self._announced_halt:
            self._announced_halt = halted
            self.hooks.on_halt(halted)
        self.hooks.on_bar(self.snapshot())
        if not self.live or self.pending:
            return
        flatten = self.hooks.flatten_requested()
        if flatten and self.position.size > 0:
            self.exit_long(f"flatten: {flatten}")
        elif not self.hooks.trading_halted():
            self.decide()

    # ------------------------------------------------------------------------------ helpers

    def equity(self) -> float:
        return float(self.broker.getvalue())

    def snapshot(self) -> Snapshot:
        return Snapshot(
            bar_time=self.data.datetime.datetime(0) if len(self.data) else None,
            close=float(self.data.close[0]) if len(self.data) else 0.0,
            cash=float(self.broker.getcash()),
            equity=self.equity(),
            position=float(self.position.size),
            entry_price=float(self.position.price or 0.0),
            open_orders=len(self.pending),
            trade_count=self.trade_count,
            realized_pnl=self.realized_pnl,
            live=self.live,
            halted=self.daily_loss.halted_reason is not None,
            halt_reason=self.daily_loss.halted_reason,
            entry_time=self.entry_time,
            high_since_entry=self.high_since_entry,
            day=self.daily_loss.day,
            day_start_equity=self.daily_loss.day_start_equity,
        )

    def position_view(self) -> PositionView:
        close = float(self.data.close[0])
        now = self.data.datetime.datetime(0)
        entry_time = self.entry_time or now
        bars_held = int((now - entry_time).total_seconds() // max(1, self.p.timeframe_seconds))
        return PositionView(
            entry_price=float(self.position.price or close),
            close=close,
            high_since_entry=max(self.high_since_entry or close, close),
            bars_held=bars_held,
            entry_time=self.entry_time,
        )

    def apply_exits(self, exits: list[Any]) -> bool:
        """Ask each exit logic about the open position; close it on the first reason. True if closing."""
        view = self.position_view()
        for logic in exits:
            reason = logic.exit_reason(view)
            if reason:
                self.exit_long(f"{logic.name}: {reason}")
                return True
        return False

    def enter_long(self, size: float, reason: str) -> Any:
        price = float(self.data.close[0])
        if self.risk.max_position_size is not None:
            size = min(size, self.risk.max_position_size - float(self.position.size))
        intent = OrderIntent("buy", size, price, reason, reduces_position=False)
        refusal = self._risk_refusal(intent) or self.hooks.order_gate(intent)
        if refusal:
            self.hooks.on_refused(intent, refusal)
            return None
        self.entry_time = None
        self.high_since_entry = 0.0
        return self.buy(size=size, exectype=bt.Order.Market)

    def exit_long(self, reason: str) -> Any:
        size = float(self.position.size)
        if size <= 0:
            return None
        intent = OrderIntent("sell", size, float(self.data.close[0]), reason, reduces_position=True)
        refusal = self._risk_refusal(intent) or self.hooks.order_gate(intent)
        if refusal:
            self.hooks.on_refused(intent, refusal)
            return None
        return self.close(exectype=bt.Order.Market)

    def _risk_refusal(self, intent: OrderIntent) -> str | None:
        if intent.size <= 0:
            return f"size {intent.size:.8g} is not positive (max_position_size reached?)"
        if len(self.pending) >= self.risk.max_open_orders:
            return f"{len(self.pending)} orders open, max_open_orders is {self.risk.max_open_orders}"
        if intent.reduces_position:
            return None  # exits are always allowed by the bot's own limits: they reduce risk
        if self.daily_loss.halted_reason:
            return self.daily_loss.halted_reason
        if self.risk.max_position_size is not None:
            after = float(self.position.size) + intent.size
            if after > self.risk.max_position_size * (1 + 1e-9):
                return f"position would be {after:.8g}, max_position_size is {self.risk.max_position_size:g}"
        return None
