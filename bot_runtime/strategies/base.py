"""BotStrategy: the Backtrader strategy base every registered strategy derives from.

It owns what every bot needs, whatever its logic: trade only while the feed is live, one order in
flight at a time, a position view for exits, a protective stop level, and snapshots for the runtime (never
read across threads). The order gate (limits, daily-loss halt, trading state, lease, halts, caps) is in the
broker, so an order placed any other way (a plug-in calling `buy()` directly) passes it too. Warm-up and
backfilled bars (before the feed is LIVE) never touch risk or exit state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from bot_runtime import lots
from bot_runtime.api.models import RiskSpec
from bot_runtime.brokers.gating import Gate
from bot_runtime.btcompat import bt
from bot_runtime.params import ParamsModel, StrategySchema
from bot_runtime.strategies.logic import PositionView

log = logging.getLogger(__name__)

INTERFACE_VERSION = 1


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
    trading_state: str = "active"
    stop_price: float | None = None  # the protective stop the strategy wants resting under its position


class StrategyHooks:
    """The runtime's side of the contract. The defaults are what a backtest needs."""

    def on_refused(self, order: Any, reason: str) -> None:
        log.info("order %s refused: %s", order.ref, reason)

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


@dataclass(frozen=True)
class RestoredPosition:
    """A position found at start (database or exchange) that the strategy adopts and protects."""

    size: float
    entry_price: float
    entry_time: datetime | None = None
    high_since_entry: float = 0.0


class BotStrategy(bt.Strategy):  # type: ignore[misc]
    """Base of registered strategies. Subclasses implement `build()` and `decide()`."""

    strategy_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    interface_version: ClassVar[int] = INTERFACE_VERSION
    Params: ClassVar[type[ParamsModel]] = ParamsModel
    order_types: ClassVar[tuple[str, ...]] = ("market",)  # what it places (live validation checks them)

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
            name or cls.strategy_name or cls.__name__,
            cls.description,
            cls.Params,
            cls.check,
            cls.max_lookback,
            order_types=cls.order_types,
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
        self.gate: Gate = self.broker.gate  # the broker's order gate: its daily-loss state and trading state
        self.exits: list[Any] = []  # the exit logics (build() fills them): their stop levels protect positions
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
        daily_halt_reason: str | None = None,
    ) -> None:
        """Adopt a position (the broker already holds it) and the state a previous runtime left: the trailing
        high and entry time (bars held), realised PnL, and the day's loss counter with its halt."""
        if position.size:
            when = position.entry_time
            # bar times are naive UTC (docs/research/backtrader-ccxt.md §1.5); the database gives aware ones
            self.entry_time = when.astimezone(UTC).replace(tzinfo=None) if when and when.tzinfo else when
            self.high_since_entry = max(position.high_since_entry, position.entry_price)
        self.realized_pnl = realized_pnl
        if day is not None and day_start_equity is not None:
            daily = self.gate.daily
            daily.day, daily.day_start_equity, daily.halted_reason = day, day_start_equity, daily_halt_reason
            self._announced_halt = daily_halt_reason

    def notify_data(self, data: Any, status: int, *args: Any, **kwargs: Any) -> None:
        self.live = status == data.LIVE
        self.hooks.on_feed_status(data._getstatusname(status))

    def notify_order(self, order: Any) -> None:
        protective = order.info.get("protective") or order.info.get("take_profit")
        if order.status in (order.Submitted, order.Accepted, order.Partial):
            if order not in self.pending and not protective:  # a resting stop does not hold decisions back
                self.pending.append(order)
        else:
            if order in self.pending:
                self.pending.remove(order)
            if order.status in (order.Rejected, order.Margin) and order.info.get("refused"):
                self.hooks.on_refused(order, str(order.info.get("reject_reason")))
            if order.executed.size:
                self._book_execution(order)
        self.hooks.on_order(order)

    def _book_execution(self, order: Any) -> None:
        """Realised PnL and round trips from executions: right across positions adopted at a restart too
        (Backtrader's own trade list would see the close of an adopted position as a new short trade)."""
        if order.isbuy():
            if order.status == order.Completed:
                self.entry_time = self.data.datetime.datetime(0)
                self.high_since_entry = max(self.high_since_entry, order.executed.price)
            self.realized_pnl -= float(order.executed.comm or 0.0)
            return
        self.realized_pnl += float(order.executed.pnl or 0.0) - float(order.executed.comm or 0.0)
        if not float(order.executed.psize):
            self.trade_count += 1

    def notify_trade(self, trade: Any) -> None:
        self.hooks.on_trade(trade)

    def next(self) -> None:
        close = float(self.data.close[0])
        if self.live:  # warm-up and backfilled bars never touch risk or exit state
            if self.position.size:
                self.high_since_entry = max(self.high_since_entry or close, close)
            halted = self.gate.daily.update(self.data.datetime.datetime(0), self.equity())
            if halted and halted != self._announced_halt:
                self._announced_halt = halted
                self.hooks.on_halt(halted)
        self.hooks.on_bar(self.snapshot())
        if not self.live:
            return
        self.broker.protect(self.protective_stop() if self.position.size > 0 else None)
        if self.pending or self.gate.state()[0] == "halted":
            return
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
            halted=self.gate.daily.halted_reason is not None,
            halt_reason=self.gate.daily.halted_reason,
            entry_time=self.entry_time,
            high_since_entry=self.high_since_entry,
            day=self.gate.daily.day,
            day_start_equity=self.gate.daily.day_start_equity,
            trading_state=self.gate.state()[0],
            stop_price=self.protective_stop() if self.position.size > 0 else None,
        )

    def protective_stop(self) -> float | None:
        """The stop price that protects the open position (the live broker rests it at the venue): the
        highest of the exit logics' stop levels; None without a stop."""
        view = self.position_view()
        levels = [level for logic in self.exits if (level := logic.stop_price(view))]
        return max(levels) if levels else None

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

    def affordable(self, cash_fraction: float, price: float) -> float:
        """What `cash_fraction` of the free cash buys at `price` with the commission and the broker's slippage
        paid from it, so an all-in stake (1.0) fits instead of being refused for want of cash."""
        if price <= 0:
            return 0.0
        commission = float(self.broker.getcommissioninfo(self.data).getcommission(1.0, price)) / price
        slippage = float(getattr(self.broker.p, "slip_perc", 0.0) or 0.0)
        return lots.affordable(float(self.broker.getcash()) * cash_fraction, price, commission, slippage)

    def enter_long(self, size: float, reason: str, stake: float | None = None) -> Any:
        """Buy at market; sized within max_position_size. Not tried while the bot is reducing or halted (the
        broker's gate would refuse it: no refusal to report on every bar). `stake`: the fraction of cash the
        size came from, so a simulated fill at another price is sized again within it."""
        if self.risk.max_position_size is not None:
            size = min(size, self.risk.max_position_size - float(self.position.size))
        if self.gate.state()[0] != "active":
            return None
        self.entry_time = None
        self.high_since_entry = 0.0
        return self.buy(size=size, exectype=bt.Order.Market, reason=reason, stake=stake)

    def exit_long(self, reason: str) -> Any:
        if float(self.position.size) <= 0:
            return None
        return self.close(exectype=bt.Order.Market, reason=reason)
