"""What differs between the live venues, in one place: client order ids, how an order is found again,
how its fills are read, and whether a stop can rest at the venue. The calls are the ones the exchange
double's suite measured through ccxt 4.5 (tests/support/exchange_double/SOURCES.md; docs/venues.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import ccxt

from bot_runtime.api.constants import LIVE_VENUES


@dataclass(frozen=True)
class VenueProfile:
    id: str
    name: str
    client_id_sep: str  # separates bot id, lease token and order ref in our client order ids
    client_id_pattern: str  # the venue's rule (Binance newClientOrderId, OKX clOrdId, Bybit orderLinkId)
    stop_orders: bool  # a stop-loss can rest at the venue (spot)

    def client_order_id(self, bot_id: int, token: int, ref: int) -> str:
        """Deterministic: the bot, the runtime's fencing token, Backtrader's order ref."""
        cid = f"bt{bot_id}{self.client_id_sep}{token}{self.client_id_sep}{ref}"
        if not re.fullmatch(self.client_id_pattern, cid):
            raise ValueError(f"client order id {cid!r} does not fit {self.name}'s rule {self.client_id_pattern}")
        return cid

    def client_prefix(self, bot_id: int) -> str:
        return f"bt{bot_id}{self.client_id_sep}"

    def create_params(self, client_order_id: str) -> dict[str, Any]:
        return {"clientOrderId": client_order_id}  # ccxt's unified name; each venue's own field on the wire

    def find(self, exchange: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
        """The order with our client order id; raises ccxt.OrderNotFound while the venue does not show it."""
        found: dict[str, Any] = exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        return found

    def fetch(self, exchange: Any, symbol: str, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = exchange.fetch_order(order_id, symbol)
        return found

    def order_trades(self, exchange: Any, symbol: str, order_id: str) -> list[dict[str, Any]]:
        trades: list[dict[str, Any]] = exchange.fetch_order_trades(order_id, symbol)
        return trades

    # ------------------------------------------------------------------- stops resting at the venue

    def stop_params(self, client_order_id: str, trigger: float) -> dict[str, Any]:
        """A market sell the venue triggers at `trigger` (Binance STOP_LOSS)."""
        return {"stopLossPrice": trigger, **self.create_params(client_order_id)}

    def fetch_stop(self, exchange: Any, symbol: str, order_id: str) -> dict[str, Any]:
        return self.fetch(exchange, symbol, order_id)

    def find_stop(self, exchange: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
        return self.find(exchange, symbol, client_order_id)

    def cancel_stop(self, exchange: Any, symbol: str, order_id: str) -> None:
        exchange.cancel_order(order_id, symbol)

    def stop_fills_on(self, stop: dict[str, Any]) -> str | None:
        """Which order carries a stop's fills once triggered: on Binance, the stop itself."""
        return str(stop["id"])


class Okx(VenueProfile):
    def stop_params(self, client_order_id: str, trigger: float) -> dict[str, Any]:
        # a conditional algo order; without tdMode ccxt sends "cross" (ccxt's recorded requests)
        return {"stopLossPrice": trigger, "tdMode": "cash", **self.create_params(client_order_id)}

    def fetch_stop(self, exchange: Any, symbol: str, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = exchange.fetch_order(order_id, symbol, {"trigger": True})
        return found

    def find_stop(self, exchange: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id, "trigger": True})
        return found

    def cancel_stop(self, exchange: Any, symbol: str, order_id: str) -> None:
        exchange.cancel_order(order_id, symbol, {"trigger": True})

    def stop_fills_on(self, stop: dict[str, Any]) -> str | None:
        # a triggered algo places a child order, which has the fills
        children = (stop.get("info") or {}).get("ordIdList") or []
        return str(children[0]) if children else None


class Bybit(VenueProfile):
    def find(self, exchange: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
        # Bybit's order lookup takes no client id; its open-orders list does (and shows recently closed
        # orders when given one); older ones are in the history.
        params = {"orderLinkId": client_order_id}
        for lookup in (exchange.fetch_open_orders, exchange.fetch_canceled_and_closed_orders):
            orders = lookup(symbol, params=params)
            if orders:
                found: dict[str, Any] = orders[0]
                return found
        raise ccxt.OrderNotFound(f"bybit has no order {client_order_id}")

    def fetch(self, exchange: Any, symbol: str, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = exchange.fetch_order(order_id, symbol, {"acknowledged": True})
        return found


PROFILES: dict[str, VenueProfile] = {
    "binance": VenueProfile("binance", "Binance spot", "-", r"[.A-Z:/a-z0-9_-]{1,36}", stop_orders=True),
    "okx": Okx("okx", "OKX", "x", r"[A-Za-z0-9]{1,32}", stop_orders=True),
    "bybit": Bybit("bybit", "Bybit", "-", r"[A-Za-z0-9_-]{1,36}", stop_orders=False),
}
assert tuple(sorted(PROFILES)) == LIVE_VENUES


def profile(exchange_id: str) -> VenueProfile:
    """The venue's profile; paper bots on other venues use Binance's conventions (no order is sent)."""
    return PROFILES.get(exchange_id, PROFILES["binance"])
