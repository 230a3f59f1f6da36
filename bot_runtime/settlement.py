"""What a live runtime does before it trades: settle what earlier runs left at the venue, and rebuild the
bot's position from its own fills.

Orders this bot persisted but never saw finish are looked up by client order id, the venue's way
(bot_runtime.venues). One the venue does not show is "never placed" only once it is older than the
not-found window and the venue has said so `answers` times; until then the runtime waits (a just-created
order can read "does not exist" for a while). Found orders still open are cancelled (no strategy tracks
them any more); their fills are recorded. Fills of this bot's orders made while no runtime ran (our
client id prefix) are recorded once. The position, entry price and realised PnL are then the ledger of
the bot's recorded fills (bot_runtime.ledger); the account balance only bounds it: holding less than the
ledger is drift, holding more is someone else's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from bot_runtime.brokers.ccxt_broker import fill_of
from bot_runtime.db.repository import BotRepository, FillRecord, TradeRecord
from bot_runtime.ledger import Fill, Ledger
from bot_runtime.lots import LotRules
from bot_runtime.venues import VenueProfile

log = logging.getLogger(__name__)

UNFINISHED = ("intent", "open", "unknown", "partially_filled")


@dataclass
class StartReconciliation:
    ledger: Ledger
    position: float = 0.0  # what the bot may trade: the ledger's holding, dust left out
    entry_price: float = 0.0
    cash: float = 0.0
    fills_recorded: int = 0
    cancelled: int = 0
    never_placed: int = 0
    drift: str | None = None
    resting_stop: dict[str, Any] | None = None  # our stop an earlier run left resting at the venue
    unresolved: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"position {self.position:.8g}" + (f" @ {self.entry_price:.8g}" if self.position else ""),
            f"cash {self.cash:.8g}",
            f"{self.fills_recorded} fills recorded",
            f"{self.cancelled} cancelled",
            f"{self.never_placed} never placed",
        ]
        if self.drift:
            parts.append(f"drift: {self.drift}")
        if self.unresolved:
            parts.append(f"unresolved: {', '.join(self.unresolved)}")
        return "start reconciliation: " + ", ".join(parts)


@dataclass
class Settlement:
    repo: BotRepository
    exchange: Any
    venue: VenueProfile
    bot_id: int
    symbol: str
    rules: LotRules
    window: float = 60.0  # the not-found grace window, seconds
    answers: int = 3  # not-found answers needed within it
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> StartReconciliation:
        market = self.exchange.market(self.symbol)
        found = StartReconciliation(Ledger(market["base"], market["quote"]))
        for row in self.repo.orders(self.bot_id, UNFINISHED):
            self._settle_order(row, found)
        found.fills_recorded += self._fills_while_away(found)
        found.ledger = Ledger.of(market["base"], market["quote"], self._recorded_fills())
        self._bound_by_balance(found)
        log.info("%s", found.summary())
        return found

    # --------------------------------------------------------------------------------- orders

    def _settle_order(self, row: Any, found: StartReconciliation) -> None:
        cid = row.client_order_id
        try:
            order = self._find(cid, row.created_at, stop=row.order_type == "stop")
        except ccxt.OrderNotFound:
            self.repo.update_order(self.bot_id, cid, status="failed", error="not at the venue: never placed")
            found.never_placed += 1
            return
        except Exception as exc:
            found.unresolved.append(f"{cid} ({type(exc).__name__})")
            return
        if order.get("status") == "open" and row.order_type == "stop":
            found.resting_stop = order  # it protects the position while no runtime runs: adopted, not cancelled
            return
        if order.get("status") == "open":
            order = self._cancel(order)
            found.cancelled += order.get("status") == "canceled"
        fills_on = self.venue.stop_fills_on(order) if row.order_type == "stop" else str(order["id"])
        found.fills_recorded += self._record_order(order, cid, row.run_id, fills_on)
        status = "filled" if order.get("status") == "closed" else "cancelled"
        self.repo.update_order(
            self.bot_id,
            cid,
            exchange_order_id=str(order["id"]),
            status=status,
            filled=order.get("filled") or 0,
            average=order.get("average"),
        )

    def _cancel(self, order: dict[str, Any]) -> dict[str, Any]:
        """Cancel an order no strategy tracks any more; it may fill first (the venue then refuses)."""
        try:
            self.exchange.cancel_order(order["id"], self.symbol)
        except ccxt.OrderNotFound:
            log.info("order %s finished before it could be cancelled", order["id"])
        return self.venue.fetch(self.exchange, self.symbol, str(order["id"]))

    def _find(self, cid: str, created_at: datetime | None, stop: bool = False) -> dict[str, Any]:
        """The venue's view of one of our orders; OrderNotFound only once the grace window has passed."""
        find = self.venue.find_stop if stop else self.venue.find
        misses = 0
        while True:
            try:
                return find(self.exchange, self.symbol, cid)
            except ccxt.OrderNotFound:
                misses += 1
                age = (datetime.now(UTC) - created_at).total_seconds() if created_at else self.window
                if misses >= self.answers and age >= self.window:
                    raise
                log.info("order %s not found at the venue yet (%d, %.0f s old); looking again", cid, misses, age)
                self.sleep(max(1.0, min(self.window - age, self.window / self.answers)))

    def _record_order(self, order: dict[str, Any], cid: str, run_id: int | None, fills_on: str | None = None) -> int:
        """Record the fills of one of our orders (venue trade records) and its trade; returns new fills."""
        fills_on = fills_on or str(order["id"])
        if not float(order.get("filled") or 0) or not fills_on:
            return 0
        trades = self.venue.order_trades(self.exchange, self.symbol, fills_on)
        fills = [fill_of(t, cid, order["side"], str(order["id"])) for t in trades]
        new = sum(self.repo.record_fill(self.bot_id, fill_record(f, self.symbol, order, run_id)) for f in fills)
        self.repo.record_trade(self.bot_id, trade_from_order(order, cid, self.symbol, run_id, fills))
        return new

    def _fills_while_away(self, found: StartReconciliation) -> int:
        """Fills of this bot's orders (our client id prefix) since its last recorded fill: recorded once."""
        recorded = self.repo.fills(self.bot_id, self.symbol)
        known = {f.exchange_order_id for f in recorded if f.exchange_order_id}
        since = max((f.executed_at for f in recorded), default=None)
        try:
            trades = self.exchange.fetch_my_trades(self.symbol, since=int(since.timestamp() * 1000) if since else None)
        except Exception as exc:
            found.unresolved.append(f"fills since the last recorded one ({type(exc).__name__})")
            return 0
        new = 0
        prefix = self.venue.client_prefix(self.bot_id)
        for order_id in dict.fromkeys(str(t["order"]) for t in trades if t.get("order") is not None):
            if order_id in known:
                continue
            order = self.venue.fetch(self.exchange, self.symbol, order_id)
            cid = str(order.get("clientOrderId") or "")
            if cid.startswith(prefix):
                new += self._record_order(order, cid, None)
        return new

    # ------------------------------------------------------------------------------- position

    def _recorded_fills(self) -> list[Fill]:
        return [
            Fill(
                f.trade_id,
                f.exchange_order_id or "",
                f.client_order_id,
                f.side,
                Decimal(f.amount),
                Decimal(f.price),
                Decimal(f.fee),
                f.fee_currency,
                f.executed_at,
            )
            for f in self.repo.fills(self.bot_id, self.symbol)
            if f.mode == "live"
        ]

    def _bound_by_balance(self, found: StartReconciliation) -> None:
        ledger = found.ledger
        balance = self.exchange.fetch_balance()
        found.cash = float(balance.get(ledger.quote, {}).get("free") or 0.0)
        total = Decimal(str(balance.get(ledger.base, {}).get("total") or 0.0))
        holding = ledger.position
        if holding - total > 0 and not self.rules.is_dust(holding - total):
            found.drift = (
                f"the account holds {total:f} {ledger.base}, less than the {holding:f} this bot's fills "
                "add up to: it sells no more than the account holds"
            )
            holding = total
        tradable = Decimal(0) if self.rules.is_dust(holding) else self.rules.floor(holding)
        found.position = float(tradable)
        found.entry_price = float(ledger.entry_price) if tradable else 0.0


def fill_record(fill: Fill, symbol: str, order: dict[str, Any], run_id: int | None) -> FillRecord:
    base, quote = symbol.split("/", 1)
    ledger = Ledger(base, quote)
    return FillRecord(
        trade_id=fill.trade_id,
        client_order_id=fill.client_order_id,
        symbol=symbol,
        side=fill.side,
        amount=fill.amount,
        price=fill.price,
        net_amount=ledger.net_amount(fill),
        executed_at=fill.time or datetime.now(UTC),
        mode="live",
        exchange_order_id=str(order["id"]),
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        run_id=run_id,
    )


def trade_from_order(
    order: dict[str, Any], cid: str, symbol: str, run_id: int | None, fills: list[Fill]
) -> TradeRecord:
    """The order's trade record; its fee from its fills when the order's answer has none (Binance)."""
    fee = order.get("fee") or {}
    if not fee.get("cost") and fills:
        fee = {"cost": sum((f.fee for f in fills), Decimal(0)), "currency": fills[0].fee_currency}
    when = order.get("lastTradeTimestamp") or order.get("timestamp")
    return TradeRecord(
        client_order_id=cid,
        exchange_order_id=str(order["id"]),
        symbol=symbol,
        side=order["side"],
        amount=Decimal(str(order["filled"])),
        price=Decimal(str(order.get("average") or order.get("price") or 0)),
        fee=Decimal(str(fee.get("cost") or 0)),
        fee_currency=fee.get("currency"),
        executed_at=datetime.fromtimestamp(when / 1000, UTC) if when else datetime.now(UTC),
        mode="live",
        run_id=run_id,
    )
