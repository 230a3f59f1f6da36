"""A loopback stand-in for the subset of Binance's spot REST API that ccxt uses.

The real ccxt client talks to it over HTTP (its URLs rewritten), so every ccxt code path we depend on
runs for real: request signing, parsing, precision, error mapping. Candles are a deterministic
function of their open time; the clock can run faster than real time; faults can be injected.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

INTERVALS_MS = {"1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}


def default_price(open_ms: int) -> float:
    """A smooth, deterministic series with crosses every few minutes of 1s bars."""
    t = open_ms / 1000.0
    return round(100.0 + 6.0 * math.sin(t / 20.0) + 2.0 * math.sin(t / 3.0), 2)


@dataclass
class Fault:
    method: str
    path: str
    status: int
    body: Any = None
    hang: float = 0.0  # seconds to sleep before answering (after booking, for orders)
    remaining: int = 1


@dataclass
class Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    qty: float
    price: float | None
    status: str = "NEW"
    executed: float = 0.0
    quote: float = 0.0
    time_ms: int = 0


@dataclass
class FakeExchange:
    speed: float = 1.0
    price_fn: Callable[[int], float] = default_price
    balances: dict[str, float] = field(default_factory=lambda: {"USDT": 10_000.0, "BTC": 0.0})
    symbols: tuple[tuple[str, str], ...] = (("BTC", "USDT"), ("ETH", "USDT"))

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._t0_real = time.time()
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, str, dict[str, str]]] = []
        self.orders: list[Order] = []
        self._next_id = 1000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeExchange:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def now_ms(self) -> int:
        real = time.time()
        return int((self._t0_real + (real - self._t0_real) * self.speed) * 1000)

    # ------------------------------------------------------------------------------ test controls

    def inject(self, method: str, path: str, status: int, body: Any = None, times: int = 1, hang: float = 0.0) -> None:
        with self._lock:
            self.faults.append(Fault(method, path, status, body, hang, times))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def filled_orders(self, client_order_id: str | None = None) -> list[Order]:
        with self._lock:
            return [
                o
                for o in self.orders
                if o.status == "FILLED" and (client_order_id is None or o.client_order_id == client_order_id)
            ]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and path.startswith(fault.path) and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------------------ market data

    def klines(self, symbol: str, interval: str, start: int | None, end: int | None, limit: int) -> list[list[Any]]:
        step = INTERVALS_MS[interval]
        now = self.now_ms()
        last_open = now - now % step  # the candle forming now is included, like the real exchange
        first = last_open - (limit - 1) * step if start is None else start + -start % step
        stop = min(last_open, end if end is not None else last_open)
        out = []
        t = first
        while t <= stop and len(out) < limit:
            o = self.price_fn(t)
            c = self.price_fn(t + step)
            if t == last_open:  # still forming: the close so far
                c = self.price_fn(now)
            hi, lo = max(o, c) + 0.05, min(o, c) - 0.05
            out.append(
                [
                    t,
                    f"{o:.2f}",
                    f"{hi:.2f}",
                    f"{lo:.2f}",
                    f"{c:.2f}",
                    "1.5",
                    t + step - 1,
                    "150.0",
                    10,
                    "0.7",
                    "70.0",
                    "0",
                ]
            )
            t += step
        return out

    def last_price(self) -> float:
        return self.price_fn(self.now_ms())

    # ----------------------------------------------------------------------------------- orders

    def place(self, params: dict[str, str]) -> Order:
        with self._lock:
            cid = params.get("newClientOrderId") or f"fake-{self._next_id}"
            if any(o.client_order_id == cid and o.status == "NEW" for o in self.orders):
                raise ExchangeReject(400, {"code": -2010, "msg": "Duplicate order sent."})
            qty = float(params["quantity"])
            side, otype = params["side"], params["type"]
            price = float(params["price"]) if "price" in params else None
            base, quote = self._assets(params["symbol"])
            fill_price = self.last_price()
            if otype == "MARKET":
                cost = qty * fill_price
                if side == "BUY" and self.balances.get(quote, 0.0) < cost:
                    raise ExchangeReject(400, {"code": -2010, "msg": "Account has insufficient balance."})
                if side == "SELL" and self.balances.get(base, 0.0) < qty - 1e-12:
                    raise ExchangeReject(400, {"code": -2010, "msg": "Account has insufficient balance."})
            order = Order(self._next_id, cid, params["symbol"], side, otype, qty, price, time_ms=self.now_ms())
            self._next_id += 1
            self.orders.append(order)
            if otype == "MARKET":
                self._fill(order, fill_price)
            return order

    def _fill(self, order: Order, price: float) -> None:
        base, quote = self._assets(order.symbol)
        sign = 1 if order.side == "BUY" else -1
        self.balances[base] = self.balances.get(base, 0.0) + sign * order.qty
        self.balances[quote] = self.balances.get(quote, 0.0) - sign * order.qty * price
        order.status, order.executed, order.quote = "FILLED", order.qty, order.qty * price

    def fill_resting(self, order_id: int) -> None:
        """Fill a resting limit order now (a test moves the market)."""
        with self._lock:
            order = next(o for o in self.orders if o.order_id == order_id)
            self._fill(order, order.price or self.last_price())

    def _assets(self, symbol: str) -> tuple[str, str]:
        for base, quote in self.symbols:
            if base + quote == symbol:
                return base, quote
        raise ExchangeReject(400, {"code": -1121, "msg": "Invalid symbol."})

    def find(self, params: dict[str, str]) -> Order:
        with self._lock:
            for o in self.orders:
                if ("orderId" in params and str(o.order_id) == params["orderId"]) or (
                    "origClientOrderId" in params and o.client_order_id == params["origClientOrderId"]
                ):
                    return o
        raise ExchangeReject(400, {"code": -2013, "msg": "Order does not exist."})

    def order_json(self, o: Order) -> dict[str, Any]:
        price = o.quote / o.executed if o.executed else (o.price or 0.0)
        return {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "clientOrderId": o.client_order_id,
            "transactTime": o.time_ms,
            "time": o.time_ms,
            "updateTime": o.time_ms,
            "price": f"{o.price or 0:.2f}",
            "origQty": f"{o.qty:.5f}",
            "executedQty": f"{o.executed:.5f}",
            "cummulativeQuoteQty": f"{o.quote:.8f}",
            "status": o.status,
            "timeInForce": "GTC",
            "type": o.type,
            "side": o.side,
            "fills": [
                {
                    "price": f"{price:.2f}",
                    "qty": f"{o.executed:.5f}",
                    "commission": "0",
                    "commissionAsset": "USDT",
                    "tradeId": o.order_id,
                }
            ]
            if o.executed
            else [],
        }

    def exchange_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": [],
            "symbols": [
                {
                    "symbol": b + q,
                    "status": "TRADING",
                    "baseAsset": b,
                    "quoteAsset": q,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "permissions": ["SPOT"],
                    "permissionSets": [["SPOT"]],
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
                        {"filterType": "NOTIONAL", "minNotional": "5.0", "maxNotional": "9000000"},
                    ],
                }
                for b, q in self.symbols
            ],
        }

    # ---------------------------------------------------------------------------------- routing

    def route(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        if method == "GET" and path == "/api/v3/exchangeInfo":
            return 200, self.exchange_info()
        if method == "GET" and path == "/api/v3/time":
            return 200, {"serverTime": self.now_ms()}
        if method == "GET" and path == "/api/v3/klines":
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
            return 200, self.klines(params["symbol"], params["interval"], start, end, int(params.get("limit", 500)))
        if method == "GET" and path in ("/api/v3/ticker/24hr", "/api/v3/ticker/price"):
            price = f"{self.last_price():.2f}"
            return 200, {
                "symbol": params.get("symbol"),
                "lastPrice": price,
                "price": price,
                "openPrice": price,
                "highPrice": price,
                "lowPrice": price,
                "volume": "100",
                "quoteVolume": "10000",
                "closeTime": self.now_ms(),
            }
        if method == "GET" and path == "/api/v3/account":
            with self._lock:
                return 200, {
                    "balances": [
                        {"asset": a, "free": f"{v:.8f}", "locked": "0.00000000"} for a, v in self.balances.items()
                    ],
                    "permissions": ["SPOT"],
                }
        if path == "/api/v3/order":
            if method == "POST":
                return 200, self.order_json(self.place(params))
            if method == "GET":
                return 200, self.order_json(self.find(params))
            if method == "DELETE":
                with self._lock:
                    order = self.find(params)
                    if order.status != "NEW":
                        raise ExchangeReject(400, {"code": -2011, "msg": "Unknown order sent."})
                    order.status = "CANCELED"
                    return 200, self.order_json(order)
        if method == "GET" and path == "/api/v3/openOrders":
            with self._lock:
                return 200, [
                    self.order_json(o)
                    for o in self.orders
                    if o.status == "NEW" and ("symbol" not in params or o.symbol == params["symbol"])
                ]
        if method == "GET" and path == "/api/v3/allOrders":
            with self._lock:
                return 200, [self.order_json(o) for o in self.orders if o.symbol == params.get("symbol")]
        if method == "GET" and path == "/api/v3/myTrades":
            with self._lock:
                since = int(params.get("startTime", 0))
                return 200, [
                    self._trade_json(o)
                    for o in self.orders
                    if o.executed and o.time_ms >= since and o.symbol == params.get("symbol")
                ]
        return 404, {"code": -1, "msg": f"not faked: {method} {path}"}

    def _trade_json(self, o: Order) -> dict[str, Any]:
        price = o.quote / o.executed
        return {
            "symbol": o.symbol,
            "id": o.order_id,
            "orderId": o.order_id,
            "price": f"{price:.2f}",
            "qty": f"{o.executed:.5f}",
            "quoteQty": f"{o.quote:.8f}",
            "commission": "0",
            "commissionAsset": "USDT",
            "time": o.time_ms,
            "isBuyer": o.side == "BUY",
            "isMaker": False,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        exchange = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                parsed = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    params.update({k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()})
                with exchange._lock:
                    exchange.requests[f"{method} {parsed.path}"] += 1
                    exchange.request_log.append((method, parsed.path, params))
                fault = exchange._take_fault(method, parsed.path)
                try:
                    if fault is not None and fault.hang and method == "POST":
                        exchange.route(method, parsed.path, params)  # booked, then the answer never comes
                        time.sleep(fault.hang)
                        status, body = fault.status, fault.body
                    elif fault is not None:
                        time.sleep(fault.hang)
                        status, body = fault.status, fault.body
                    else:
                        status, body = exchange.route(method, parsed.path, params)
                except ExchangeReject as reject:
                    status, body = reject.status, reject.body
                self._send(status, body)

            def _send(self, status: int, body: Any) -> None:
                raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler


class ExchangeReject(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(body)
        self.status, self.body = status, body
