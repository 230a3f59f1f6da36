"""Binance spot REST (api/v3) as ccxt's binance client uses it; sources in SOURCES.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.support.exchange_double.base import Answer, Request, Venue, ok
from tests.support.exchange_double.core import (
    INTERVALS_MS,
    LIMIT,
    MARKET,
    STOP_LIMIT,
    STOP_MARKET,
    Fill,
    Order,
    Refused,
    num,
)

CID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
TYPES = {"MARKET": MARKET, "LIMIT": LIMIT, "STOP_LOSS_LIMIT": STOP_LIMIT, "STOP_LOSS": STOP_MARKET}
NAMES = {v: k for k, v in TYPES.items()}
PRIVATE = ("/api/v3/account", "/api/v3/order", "/api/v3/openOrders", "/api/v3/allOrders", "/api/v3/myTrades")


def err(status: int, code: int, msg: str) -> Answer:
    return status, {"code": code, "msg": msg}, {}


class Binance(Venue):
    name = "binance"
    checks = frozenset({"tick", "lot_step", "min_qty", "max_qty", "min_notional"})
    client_id_scope = "open"
    retry_after_documented = True

    # ---------------------------------------------------------------------------- shared behaviours

    def is_private(self, req: Request) -> bool:
        return req.path in PRIVATE

    def api_key(self, req: Request) -> str | None:
        return req.header("X-MBX-APIKEY")

    def is_create(self, req: Request) -> bool:
        return req.method == "POST" and req.path == "/api/v3/order"

    def timestamp_error(self, req: Request, server_ms: int) -> Answer | None:
        p = req.params
        ts, window = int(p.get("timestamp", 0)), int(p.get("recvWindow", 5000))
        if ts >= server_ms + 1000:
            return err(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server_ms - ts > window:
            return err(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return None

    def rate_limited(self, banned: bool, retry_after_s: int) -> Answer:
        if banned:
            until = self.d.server_ms() + retry_after_s * 1000
            return err(
                418,
                -1003,
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
            )
        return err(
            429,
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
        )

    def maintenance(self) -> Answer:
        return err(503, 1, "System is under maintenance.")

    def auth_failed(self, req: Request) -> Answer:
        return err(401, -2015, "Invalid API-key, IP, or permissions for action.")

    def refusal(self, refused: Refused, req: Request) -> Answer:
        answers = {
            "tick": (-1013, "Filter failure: PRICE_FILTER"),
            "lot_step": (-1013, "Filter failure: LOT_SIZE"),
            "min_qty": (-1013, "Filter failure: LOT_SIZE"),
            "max_qty": (-1013, "Filter failure: LOT_SIZE"),
            "min_notional": (-1013, "Filter failure: NOTIONAL"),
            "balance": (-2010, "Account has insufficient balance for requested action."),
            "duplicate_client_id": (-2010, "Duplicate order sent."),
            "would_trigger": (-2010, "Stop price would trigger immediately."),
            "client_id": (
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            ),
            "unknown_symbol": (-1121, "Invalid symbol."),
            "unsupported": (-1116, "Invalid orderType."),
            "not_cancelable": (-2011, "Unknown order sent."),
            "not_found": (-2011, "Unknown order sent.") if req.method == "DELETE" else (-2013, "Order does not exist."),
        }
        code, msg = answers[refused.reason]
        return err(400, code, msg)

    # ------------------------------------------------------------------------------------- routing

    def route(self, req: Request) -> Answer:
        handler = self.routes.get((req.method, req.path)) or self.routes.get(("GET", req.path))
        if handler is None or req.method not in ("GET", "POST", "DELETE"):
            return err(404, -1, f"exchange double: {req.method} {req.path} is not modelled")
        return handler(req.params, self.d.account_key(self.api_key(req)))

    def __init__(self, double: Any) -> None:
        super().__init__(double)
        self.routes = self._routes()

    def _routes(self) -> dict[tuple[str, str], Callable[[dict[str, Any], str], Answer]]:
        d = self.d
        return {
            ("GET", "/api/v3/exchangeInfo"): lambda p, a: ok(self.exchange_info()),
            ("GET", "/api/v3/time"): lambda p, a: ok({"serverTime": d.server_ms()}),
            ("GET", "/api/v3/klines"): lambda p, a: self.klines(p),
            ("GET", "/api/v3/uiKlines"): lambda p, a: self.klines(p),
            ("GET", "/api/v3/ticker/24hr"): lambda p, a: ok(self.ticker("24hr", p)),
            ("GET", "/api/v3/ticker/price"): lambda p, a: ok(self.ticker("price", p)),
            ("GET", "/api/v3/ticker/bookTicker"): lambda p, a: ok(self.ticker("bookTicker", p)),
            ("GET", "/api/v3/account"): lambda p, a: ok(self.account_json(a)),
            ("POST", "/api/v3/order"): lambda p, a: ok(self.order_json(self.create_order(p, a, True), full=True)),
            ("GET", "/api/v3/order"): lambda p, a: ok(self.order_json(self.find(p, a))),
            ("DELETE", "/api/v3/order"): self.cancel,
            ("GET", "/api/v3/openOrders"): lambda p, a: ok(
                [
                    self.order_json(o)
                    for o in d.listed(
                        a, symbol=d.market_by_id(p["symbol"]).symbol if "symbol" in p else None, open_only=True
                    )
                ]
            ),
            ("GET", "/api/v3/allOrders"): self.all_orders,
            ("GET", "/api/v3/myTrades"): self.my_trades,
        }

    def account_json(self, account: str) -> dict[str, Any]:
        d = self.d
        acct = d.account(account)
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": num(d.behaviour.maker_fee_rate, 8),
                "taker": num(d.behaviour.fee_rate, 8),
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": d.now_ms(),
            "accountType": "SPOT",
            "permissions": ["SPOT"],
            "uid": 354937868,
            "balances": [
                {"asset": x, "free": num(acct.free.get(x, 0.0), 8), "locked": num(acct.locked.get(x, 0.0), 8)}
                for x in acct.assets()
            ],
        }

    def cancel(self, p: dict[str, Any], account: str) -> Answer:
        order = self.d.cancel(self.find(p, account))
        return ok(
            {
                **self.order_json(order),
                "origClientOrderId": order.client_order_id,
                "clientOrderId": f"cancel{self.d.new_order_id()}",
                "transactTime": self.d.now_ms(),
            }
        )

    def all_orders(self, p: dict[str, Any], account: str) -> Answer:
        orders = self.d.listed(
            account,
            symbol=self.d.market_by_id(p["symbol"]).symbol,
            since_ms=_int(p, "startTime"),
            until_ms=_int(p, "endTime"),
        )
        orders = [o for o in orders if int(o.order_id) >= int(p.get("orderId", 0))]
        return ok([self.order_json(o) for o in _window(orders, p, 500)])

    def my_trades(self, p: dict[str, Any], account: str) -> Answer:
        fills = self.d.trades(
            account,
            symbol=self.d.market_by_id(p["symbol"]).symbol,
            order_id=p.get("orderId"),
            since_ms=_int(p, "startTime"),
            until_ms=_int(p, "endTime"),
        )
        fills = [f for f in fills if int(f.trade_id) >= int(p.get("fromId", 0))]
        return ok([self.trade_json(f) for f in _window(fills, p, 500)])

    # ------------------------------------------------------------------------------------- orders

    def create_order(self, p: dict[str, Any], account: str, hide: bool) -> Order:
        d = self.d
        market = d.market_by_id(p["symbol"])
        kind = TYPES.get(p.get("type", ""))
        if kind is None:
            raise Refused("unsupported", p.get("type", ""))
        cid = p.get("newClientOrderId") or f"dbl{d.new_order_id()}"
        if not CID.match(cid):
            raise Refused("client_id", cid)
        d.check_client_id(account, cid, self.client_id_scope)
        side = p["side"].lower()
        price = float(p["price"]) if "price" in p else None
        stop = float(p["stopPrice"]) if "stopPrice" in p else None
        last = d.last_price(market.symbol)
        quote_qty = float(p["quoteOrderQty"]) if kind == MARKET and "quoteOrderQty" in p else None
        qty = d.qty_for_quote(market.symbol, quote_qty) if quote_qty is not None else float(p["quantity"])
        if stop is not None:
            d.check_filters(market, None, stop, last, self.checks)
        d.check_filters(market, qty, price, price or last, self.checks)
        if stop is not None and ((stop >= last) if side == "sell" else (stop <= last)):
            raise Refused("would_trigger", f"stop {stop}, last {last}")
        return d.create(
            account,
            market.symbol,
            side,
            kind,
            qty=qty,
            quote_qty=quote_qty,
            price=price,
            trigger_price=stop,
            client_order_id=cid,
            hide=hide,
            extra={"timeInForce": p.get("timeInForce", "GTC")},
        )

    def place_native(self, params: dict[str, Any], account: str) -> Order:
        return self.create_order(params, account, hide=False)

    def find(self, p: dict[str, Any], account: str) -> Order:
        return self.d.lookup(
            account,
            symbol=self.d.market_by_id(p["symbol"]).symbol if "symbol" in p else None,
            order_id=p.get("orderId"),
            client_order_id=p.get("origClientOrderId"),
        )

    def order_json(self, o: Order, full: bool = False) -> dict[str, Any]:
        d = self.d
        body: dict[str, Any] = {
            "symbol": d.market(o.symbol).venue_id(),
            "orderId": int(o.order_id),
            "orderListId": -1,
            "clientOrderId": o.client_order_id,
            "price": num(o.price or 0, 8),
            "origQty": num(o.qty, 8),
            "executedQty": num(o.executed, 8),
            "origQuoteOrderQty": num(o.quote_qty or 0, 8),
            "cummulativeQuoteQty": num(o.quote, 8),
            "status": o.status,
            "timeInForce": o.extra.get("timeInForce", "GTC"),
            "type": NAMES[o.type],
            "side": o.side.upper(),
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingTime": o.time_ms if o.type in (MARKET, LIMIT) or o.triggered else -1,
        }
        if o.trigger_price is not None:
            body["stopPrice"] = num(o.trigger_price, 8)
        if full:  # newOrderRespType FULL, which ccxt asks for
            return {
                **body,
                "transactTime": o.time_ms,
                "fills": [
                    {
                        "price": num(f.price, 8),
                        "qty": num(f.qty, 8),
                        "commission": num(f.fee, 8),
                        "commissionAsset": f.fee_asset,
                        "tradeId": int(f.trade_id),
                    }
                    for f in o.fills
                ],
            }
        return {
            **body,
            "stopPrice": body.get("stopPrice", "0.00000000"),
            "icebergQty": "0.00000000",
            "time": o.time_ms,
            "updateTime": o.update_ms,
            "isWorking": body["workingTime"] != -1,
        }

    def trade_json(self, f: Fill) -> dict[str, Any]:
        return {
            "symbol": self.d.market(f.symbol).venue_id(),
            "id": int(f.trade_id),
            "orderId": int(f.order_id),
            "orderListId": -1,
            "price": num(f.price, 8),
            "qty": num(f.qty, 8),
            "quoteQty": num(f.quote_qty, 8),
            "commission": num(f.fee, 8),
            "commissionAsset": f.fee_asset,
            "time": f.time_ms,
            "isBuyer": f.side == "buy",
            "isMaker": f.maker,
            "isBestMatch": True,
        }

    # -------------------------------------------------------------------------------- market data

    def exchange_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.d.server_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [
                {
                    "symbol": m.venue_id(),
                    "status": "TRADING",
                    "baseAsset": m.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": m.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT"],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "otoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": True,
                    "cancelReplaceAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": m.tick,
                            "maxPrice": "1000000.00000000",
                            "tickSize": m.tick,
                        },
                        {"filterType": "LOT_SIZE", "minQty": m.min_qty, "maxQty": m.max_qty, "stepSize": m.lot_step},
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": "0.00000000",
                            "maxQty": m.max_qty,
                            "stepSize": "0.00000000",
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": m.min_notional,
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                    ],
                }
                for m in self.d.markets.values()
            ],
        }

    def klines(self, p: dict[str, Any]) -> Answer:
        step = INTERVALS_MS.get(p.get("interval", ""))
        if step is None:
            return err(400, -1120, "Invalid interval.")
        symbol = self.d.market_by_id(p["symbol"]).symbol
        limit = min(int(p.get("limit", 500)), 1000)
        # startTime pages forward; without it, the latest candles (up to endTime)
        opens = self.d.candle_opens(step, _int(p, "startTime"), _int(p, "endTime"), limit, forward="startTime" in p)
        now = self.d.now_ms()
        rows = []
        for t in opens:
            _, o, h, lo, c, v = self.d.candle(symbol, t, step, now)
            rows.append(
                [
                    t,
                    num(o, 8),
                    num(h, 8),
                    num(lo, 8),
                    num(c, 8),
                    num(v, 8),
                    t + step - 1,
                    num(v * c, 8),
                    10,
                    num(v / 2, 8),
                    num(v * c / 2, 8),
                    "0",
                ]
            )
        return ok(rows)

    def ticker(self, kind: str, p: dict[str, Any]) -> dict[str, Any]:
        d, now = self.d, self.d.now_ms()
        symbol = d.market_by_id(p["symbol"]).symbol
        last, open_ = d.last_price(symbol), d.price_at(symbol, now - 86_400_000)
        venue_id = d.market(symbol).venue_id()
        if kind == "price":
            return {"symbol": venue_id, "price": num(last, 8)}
        book = {
            "symbol": venue_id,
            "bidPrice": num(last - 0.01, 8),
            "bidQty": "1.00000000",
            "askPrice": num(last + 0.01, 8),
            "askQty": "1.00000000",
        }
        if kind == "bookTicker":
            return book
        return {
            **book,
            "priceChange": num(last - open_, 8),
            "priceChangePercent": num((last / open_ - 1) * 100, 3),
            "weightedAvgPrice": num(last, 8),
            "prevClosePrice": num(open_, 8),
            "lastPrice": num(last, 8),
            "lastQty": "0.01000000",
            "openPrice": num(open_, 8),
            "highPrice": num(max(last, open_) + 1, 8),
            "lowPrice": num(min(last, open_) - 1, 8),
            "volume": "100.00000000",
            "quoteVolume": num(100 * last, 8),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 100,
            "count": 100,
        }


def _int(p: dict[str, Any], key: str) -> int | None:
    return int(p[key]) if key in p else None


def _window(items: list[Any], p: dict[str, Any], default: int) -> list[Any]:
    """Binance lists: from startTime/orderId/fromId forward when given, else the most recent `limit`."""
    limit = min(int(p.get("limit", default)), 1000)
    forward = any(k in p for k in ("startTime", "orderId", "fromId"))
    return items[:limit] if forward else items[-limit:]
