"""What a live runtime does before it trades: settle what earlier runs left on the exchange.

Orders this bot persisted but never saw finish are looked up by client order id: fills are recorded
(once: recording is idempotent), orders still open are cancelled (no strategy is tracking them
any more), orders the exchange never received are marked failed. Fills of this bot's orders since
its last recorded trade are fetched and recorded once. The position is read from the balance: one
bot per market and account is the rule (see DESIGN.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from bot_runtime.db.repository import BotRepository, TradeRecord
from bot_runtime.journal import Journal

log = logging.getLogger(__name__)

UNFINISHED = ("intent", "open", "unknown")


@dataclass
class StartReconciliation:
    position: float = 0.0
    entry_price: float = 0.0
    cash: float = 0.0
    fills_recorded: int = 0
    cancelled: int = 0
    never_placed: int = 0
    unresolved: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"position {self.position:.8g}" + (f" @ {self.entry_price:.8g}" if self.position else ""),
            f"cash {self.cash:.8g}",
            f"{self.fills_recorded} fills recorded",
            f"{self.cancelled} cancelled",
            f"{self.never_placed} never placed",
        ]
        if self.unresolved:
            parts.append(f"unresolved: {', '.join(self.unresolved)}")
        return "start reconciliation: " + ", ".join(parts)


def trade_from_order(order: dict[str, Any], cid: str, symbol: str, run_id: int | None) -> TradeRecord:
    fee = (order.get("fee") or {}).get("cost") or 0
    when = order.get("lastTradeTimestamp") or order.get("timestamp")
    return TradeRecord(
        client_order_id=cid,
        exchange_order_id=str(order["id"]),
        symbol=symbol,
        side=order["side"],
        amount=Decimal(str(order["filled"])),
        price=Decimal(str(order.get("average") or order.get("price") or 0)),
        fee=Decimal(str(fee)),
        executed_at=datetime.fromtimestamp(when / 1000, UTC) if when else datetime.now(UTC),
        mode="live",
        run_id=run_id,
    )


def _fills_while_away(repo: BotRepository, exchange: Any, bot_id: int, symbol: str, found: StartReconciliation) -> int:
    """Fills of this bot's orders (our client order id prefix) since its last recorded trade: recorded once."""
    recorded = repo.trades(bot_id)
    known = {t.exchange_order_id for t in recorded if t.exchange_order_id}
    since = max((t.executed_at for t in recorded), default=None)
    try:
        fills = exchange.fetch_my_trades(symbol, since=int(since.timestamp() * 1000) if since else None)
    except Exception as exc:
        found.unresolved.append(f"fills since the last trade ({type(exc).__name__})")
        return 0
    new = 0
    for order_id in dict.fromkeys(str(f["order"]) for f in fills if f.get("order") is not None):
        if order_id in known:
            continue
        order = exchange.fetch_order(order_id, symbol)
        cid = str(order.get("clientOrderId") or "")
        if cid.startswith(f"bt{bot_id}-") and float(order.get("filled") or 0) > 0:
            new += repo.record_trade(bot_id, trade_from_order(order, cid, symbol, None))
    return new


def reconcile_live_start(
    repo: BotRepository, journal: Journal, exchange: Any, bot_id: int, symbol: str
) -> StartReconciliation:
    found = StartReconciliation()
    for row in repo.orders(bot_id, UNFINISHED):
        cid = row.client_order_id
        try:
            order = exchange.fetch_order(None, symbol, {"origClientOrderId": cid})
        except ccxt.OrderNotFound:
            repo.update_order(bot_id, cid, status="failed", error="not on the exchange: never placed")
            found.never_placed += 1
            continue
        except Exception as exc:
            found.unresolved.append(f"{cid} ({type(exc).__name__})")
            continue
        if order.get("status") == "open":
            order = exchange.cancel_order(order["id"], symbol)
            found.cancelled += 1
        if float(order.get("filled") or 0) > 0 and repo.record_trade(
            bot_id, trade_from_order(order, cid, symbol, row.run_id)
        ):
            found.fills_recorded += 1
        status = "filled" if order.get("status") == "closed" else "cancelled"
        repo.update_order(
            bot_id,
            cid,
            exchange_order_id=str(order["id"]),
            status=status,
            filled=order.get("filled") or 0,
            average=order.get("average"),
        )
    found.fills_recorded += _fills_while_away(repo, exchange, bot_id, symbol, found)
    balance = exchange.fetch_balance()
    market = exchange.market(symbol)
    found.cash = float(balance.get(market["quote"], {}).get("free") or 0.0)
    position = float(balance.get(market["base"], {}).get("total") or 0.0)
    price = float(exchange.fetch_ticker(symbol).get("last") or 0.0) if position else 0.0
    min_cost = ((market.get("limits") or {}).get("cost") or {}).get("min") or 0.0
    if position and position * price >= min_cost:  # dust below the minimum order is not a position
        found.position = position
        buys = [t for t in repo.trades(bot_id) if t.side == "buy"]
        found.entry_price = float(buys[-1].price) if buys else price
    log.info("%s", found.summary())
    return found
