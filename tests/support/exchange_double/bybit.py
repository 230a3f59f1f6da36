"""Bybit v5 REST (spot, unified trading account) as ccxt's bybit client uses it; sources in SOURCES.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.support.exchange_double.base import Answer, Request, Venue, ok
from tests.support.exchange_double.core import INTERVALS_MS, LIMIT, MARKET, Fill, Order, Refused, num

CID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
INTERVALS = {
    "1s": "1s",
    "1": "1m",
    "3": "3m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "120": "2h",
    "240": "4h",
    "360": "6h",
    "720": "12h",
    "D": "1d",
}
FINAL = ("Filled", "Cancelled", "PartiallyFilledCanceled", "Rejected")
CODES = {
    "tick": (170134, "Order price has too many decimals."),
    "lot_step": (170137, "Order quantity has too many decimals."),
    "min_qty": (170136, "Order quantity below the lower limit."),
    "max_qty": (170135, "Order quantity exceeds the upper limit."),
    "min_notional": (170140, "Order value exceeded lower limit."),
    "balance": (170131, "Insufficient balance."),
    "duplicate_client_id": (170141, "Duplicate clientOrderId."),
    "client_id": (170130, "Data sent for paramter 'orderLinkId' is not valid."),
    "unknown_symbol": (10001, "Not supported symbols"),
    "not_found": (170213, "Order does not exist."),
    "not_cancelable": (170213, "Order does not exist."),
}
UNSUPPORTED = (
    "exchange double: Bybit spot conditional and TP/SL orders (orderFilter=StopOrder/tpslOrder, "
    "triggerPrice) are not modelled"
)


class Bybit(Venue):
    name = "bybit"
    checks = frozenset({"tick", "lot_step", "min_qty", "max_qty", "min_notional"})
    client_id_scope = "all"

    def __init__(self, double: Any) -> None:
        super().__init__(double)
        double.id_format = lambda n: str(1321052653536500000 + n)
        double.trade_id_format = lambda n: str(2100000000007760000 + n)
        self.routes = self._routes()

    def envelope(self, result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
        return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": self.d.server_ms()}

    # ---------------------------------------------------------------------------- shared behaviours

    def is_private(self, req: Request) -> bool:
        return req.path.startswith(
            ("/v5/order", "/v5/account", "/v5/execution", "/v5/user", "/v5/asset", "/v5/position")
        )

    def api_key(self, req: Request) -> str | None:
        return req.header("X-BAPI-API-KEY")

    def is_create(self, req: Request) -> bool:
        return req.method == "POST" and req.path == "/v5/order/create"

    def timestamp_error(self, req: Request, server_ms: int) -> Answer | None:
        ts, window = int(req.header("X-BAPI-TIMESTAMP") or 0), int(req.header("X-BAPI-RECV-WINDOW") or 5000)
        if server_ms - window <= ts < server_ms + 1000:
            return None
        return ok(
            self.envelope(
                {},
                10002,
                "invalid request, please check your server timestamp or recv_window "
                f"param. req_timestamp[{ts}],server_timestamp[{server_ms}],"
                f"recv_window[{window}]",
            )
        )

    def rate_limited(self, banned: bool, retry_after_s: int) -> Answer:
        if banned:  # the IP limit: "403, access too frequent", a ban of at least 10 minutes
            return 403, b"access too frequent", {}
        reset = str(self.d.server_ms() + retry_after_s * 1000)
        return ok(
            self.envelope({}, 10006, "Too many visits!"),
            {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": reset},
        )

    def maintenance(self) -> Answer:
        return 503, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", {}

    def auth_failed(self, req: Request) -> Answer:
        return 401, self.envelope({}, 10003, "API key is invalid."), {}

    def refusal(self, refused: Refused, req: Request) -> Answer:
        if refused.reason == "unsupported":
            return ok(self.envelope({}, 10001, UNSUPPORTED))
        code, msg = CODES[refused.reason]
        return ok(self.envelope({}, code, msg))

    # ------------------------------------------------------------------------------------- routing

    def route(self, req: Request) -> Answer:
        p = req.params
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            return 404, self.envelope({}, 10001, f"exchange double: {req.method} {req.path} is not modelled"), {}
        if p.get("category", "spot") != "spot" and req.path != "/v5/market/time":  # only spot is modelled
            return ok(self.envelope({"category": p.get("category"), "list": [], "nextPageCursor": ""}))
        return handler(req, self.d.account_key(self.api_key(req)))

    def _routes(self) -> dict[tuple[str, str], Callable[[Request, str], Answer]]:
        d = self.d
        return {
            ("GET", "/v5/market/time"): lambda r, a: ok(
                self.envelope({"timeSecond": str(d.server_ms() // 1000), "timeNano": str(d.server_ms() * 1_000_000)})
            ),
            ("GET", "/v5/market/instruments-info"): lambda r, a: ok(
                self.envelope({"category": "spot", "list": self.instruments(), "nextPageCursor": ""})
            ),
            ("GET", "/v5/market/kline"): lambda r, a: self.kline(r.params),
            ("GET", "/v5/market/tickers"): self.tickers,
            # ccxt's load_markets asks for coins whenever it has keys; its private calls probe the account type
            ("GET", "/v5/asset/coin/query-info"): lambda r, a: ok(
                self.envelope(
                    {"rows": [self.coin(x) for x in sorted({x for m in d.markets.values() for x in (m.base, m.quote)})]}
                )
            ),
            ("GET", "/v5/user/query-api"): lambda r, a: ok(self.envelope(self.api_info(r))),
            ("GET", "/v5/account/info"): lambda r, a: ok(
                self.envelope(
                    {
                        "marginMode": "REGULAR_MARGIN",
                        "updatedTime": str(d.server_ms()),
                        "unifiedMarginStatus": 5,
                        "dcpStatus": "OFF",
                        "timeWindow": 10,
                        "smpGroup": 0,
                        "isMasterTrader": False,
                        "spotHedgingStatus": "OFF",
                    }
                )
            ),
            ("GET", "/v5/account/wallet-balance"): lambda r, a: ok(self.envelope({"list": [self.wallet(a)]})),
            ("POST", "/v5/order/create"): self.create,
            ("POST", "/v5/order/cancel"): self.cancel,
            ("GET", "/v5/order/realtime"): lambda r, a: ok(
                self.envelope({"list": self.order_list(r.params, a, True), "nextPageCursor": "", "category": "spot"})
            ),
            ("GET", "/v5/order/history"): lambda r, a: ok(
                self.envelope({"list": self.order_list(r.params, a, False), "nextPageCursor": "", "category": "spot"})
            ),
            ("GET", "/v5/execution/list"): self.executions,
        }

    def tickers(self, req: Request, account: str) -> Answer:
        p, d = req.params, self.d
        markets = [d.market_by_id(p["symbol"])] if "symbol" in p else list(d.markets.values())
        return ok(self.envelope({"category": "spot", "list": [self.ticker(m.symbol) for m in markets]}))

    def create(self, req: Request, account: str) -> Answer:
        o = self.create_order(req.params, account, hide=True)
        return ok(self.envelope({"orderId": o.order_id, "orderLinkId": o.client_order_id}))

    def cancel(self, req: Request, account: str) -> Answer:
        p, d = req.params, self.d
        o = d.cancel(
            d.lookup(
                account,
                symbol=d.market_by_id(p["symbol"]).symbol,
                order_id=p.get("orderId"),
                client_order_id=p.get("orderLinkId"),
            )
        )
        return ok(self.envelope({"orderId": o.order_id, "orderLinkId": o.client_order_id}))

    def executions(self, req: Request, account: str) -> Answer:
        p, d = req.params, self.d
        fills = d.trades(
            account,
            symbol=d.market_by_id(p["symbol"]).symbol if "symbol" in p else None,
            order_id=p.get("orderId"),
            since_ms=_int(p, "startTime"),
            until_ms=_int(p, "endTime"),
        )
        if p.get("orderLinkId"):
            fills = [f for f in fills if d.order(f.order_id).client_order_id == p["orderLinkId"]]
        rows = [self.execution_json(f) for f in reversed(fills)][: min(int(p.get("limit", 50)), 100)]
        return ok(self.envelope({"list": rows, "nextPageCursor": "", "category": "spot"}))

    # ------------------------------------------------------------------------------------- orders

    def create_order(self, p: dict[str, Any], account: str, hide: bool) -> Order:
        d = self.d
        if p.get("orderFilter") in ("StopOrder", "tpslOrder") or p.get("triggerPrice"):
            raise Refused("unsupported", UNSUPPORTED)
        market = d.market_by_id(p["symbol"])
        cid = str(p.get("orderLinkId") or "")
        if cid:
            if not CID.match(cid):
                raise Refused("client_id", cid)
            d.check_client_id(account, cid, self.client_id_scope)
        side, kind = p["side"].lower(), p["orderType"].lower()
        sz, last = float(p["qty"]), d.last_price(market.symbol)
        # spot market orders: qty is in quote for buys and base for sells unless marketUnit says otherwise
        unit = p.get("marketUnit") or ("quoteCoin" if side == "buy" else "baseCoin")
        quote_qty = sz if kind == "market" and unit == "quoteCoin" else None
        qty = d.qty_for_quote(market.symbol, sz) if quote_qty is not None else sz
        price = float(p["price"]) if kind == "limit" else None
        if quote_qty is None:
            d.check_filters(market, qty, price, price or last, self.checks)
        else:
            d.check_filters(market, None, None, last, self.checks)
            if d.behaviour.enforce_filters and quote_qty < float(market.min_notional):
                raise Refused("min_notional", f"{quote_qty} below {market.min_notional}")
        return d.create(
            account,
            market.symbol,
            side,
            MARKET if kind == "market" else LIMIT,
            qty=qty,
            quote_qty=quote_qty,
            price=price,
            client_order_id=cid,
            hide=hide,
            extra={
                "marketUnit": unit if kind == "market" else "",
                "lastPriceOnCreated": num(last),
                "timeInForce": p.get("timeInForce") or ("IOC" if kind == "market" else "GTC"),
            },
        )

    def place_native(self, params: dict[str, Any], account: str) -> Order:
        return self.create_order(params, account, hide=False)

    def order_list(self, p: dict[str, Any], account: str, realtime: bool) -> list[dict[str, Any]]:
        d = self.d
        if p.get("orderFilter") in ("StopOrder", "tpslOrder"):
            return []  # the double books no spot conditional orders
        symbol = d.market_by_id(p["symbol"]).symbol if "symbol" in p else None
        by_id = bool(p.get("orderId") or p.get("orderLinkId"))
        orders = d.listed(
            account,
            symbol=symbol,
            since_ms=None if realtime else _int(p, "startTime"),
            until_ms=None if realtime else _int(p, "endTime"),
        )
        rows = [self.order_json(o) for o in reversed(orders)]  # newest first
        if by_id:  # openOnly is ignored when querying by orderId or orderLinkId; both given must both match
            rows = [r for r in rows if all(r[k] == p[k] for k in ("orderId", "orderLinkId") if p.get(k))]
        elif realtime:
            open_only = str(p.get("openOnly", "0")) == "0"
            rows = [r for r in rows if (r["orderStatus"] not in FINAL) == open_only][:500]
        if not realtime:
            rows = [r for r in rows if r["orderStatus"] in FINAL]
            if p.get("orderStatus"):
                rows = [r for r in rows if r["orderStatus"] in str(p["orderStatus"]).split(",")]
        return rows[: min(int(p.get("limit", 20)), 50)]

    def order_json(self, o: Order) -> dict[str, Any]:
        status = {"NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled"}.get(
            o.status, "PartiallyFilledCanceled" if o.executed else "Cancelled"
        )
        fees = o.fee_by_asset
        leaves = 0.0 if status in FINAL else o.qty - o.executed
        return {
            "orderId": o.order_id,
            "orderLinkId": o.client_order_id,
            "blockTradeId": "",
            "symbol": self.d.market(o.symbol).venue_id(),
            "price": num(o.price or 0),
            "qty": num(o.quote_qty if o.quote_qty is not None else o.qty),
            "side": o.side.capitalize(),
            "isLeverage": "0",
            "positionIdx": 0,
            "orderStatus": status,
            "createType": "CreateByUser",
            "cancelType": "CancelByUser" if o.status == "CANCELED" else "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": num(o.average) if o.executed else "",
            "leavesQty": num(leaves),
            "leavesValue": num(leaves * (o.price or 0)),
            "cumExecQty": num(o.executed),
            "cumExecValue": num(o.quote),
            "cumExecFee": num(sum(fees.values())),
            "cumFeeDetail": {a: num(v) for a, v in fees.items()},
            "timeInForce": o.extra.get("timeInForce", "GTC"),
            "orderType": "Market" if o.type == MARKET else "Limit",
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": o.extra.get("marketUnit", ""),
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpslMode": "",
            "ocoTriggerBy": "",
            "tpLimitPrice": "0",
            "slLimitPrice": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": o.extra.get("lastPriceOnCreated", ""),
            "reduceOnly": False,
            "closeOnTrigger": False,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": str(o.time_ms),
            "updatedTime": str(o.update_ms),
        }

    def execution_json(self, f: Fill) -> dict[str, Any]:
        o = self.d.order(f.order_id)
        rate = self.d.behaviour.maker_fee_rate if f.maker else self.d.behaviour.fee_rate
        return {
            "symbol": self.d.market(f.symbol).venue_id(),
            "orderType": "Market" if o.type == MARKET else "Limit",
            "underlyingPrice": "",
            "orderLinkId": o.client_order_id,
            "orderId": o.order_id,
            "stopOrderType": "",
            "execTime": str(f.time_ms),
            "feeCurrency": f.fee_asset,
            "createType": "CreateByUser",
            "feeRate": num(rate),
            "tradeIv": "",
            "blockTradeId": "",
            "markPrice": "",
            "execPrice": num(f.price),
            "markIv": "",
            "orderQty": num(o.qty),
            "orderPrice": num(o.price or 0),
            "execValue": num(f.quote_qty),
            "closedSize": "",
            "execType": "Trade",
            "seq": int(f.trade_id),
            "side": f.side.capitalize(),
            "indexPrice": "",
            "leavesQty": num(max(o.qty - o.executed, 0.0)),
            "isMaker": f.maker,
            "execFee": num(f.fee),
            "execId": f.trade_id,
            "marketUnit": o.extra.get("marketUnit", ""),
            "execQty": num(f.qty),
            "extraFees": "",
        }

    # -------------------------------------------------------------------------------- market data

    @staticmethod
    def coin(asset: str) -> dict[str, Any]:
        return {
            "name": asset,
            "coin": asset,
            "remainAmount": "1000000",
            "chains": [
                {
                    "chainType": asset,
                    "confirmation": "1",
                    "withdrawFee": "0.0002",
                    "depositMin": "0",
                    "withdrawMin": "0.001",
                    "chain": asset,
                    "chainDeposit": "1",
                    "chainWithdraw": "1",
                    "minAccuracy": "8",
                    "withdrawPercentageFee": "0",
                    "contractAddress": "",
                    "safeConfirmNumber": "1",
                }
            ],
        }

    def instruments(self) -> list[dict[str, Any]]:
        return [
            {
                "symbol": m.venue_id(),
                "baseCoin": m.base,
                "quoteCoin": m.quote,
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "utaOnly",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": m.lot_step,
                    "quotePrecision": "0.00000001",
                    "minOrderQty": m.min_qty,
                    "maxOrderQty": m.max_qty,
                    "minOrderAmt": m.min_notional,
                    "maxOrderAmt": "8000000",
                    "maxLimitOrderQty": m.max_qty,
                    "maxMarketOrderQty": m.max_qty,
                    "postOnlyMaxLimitOrderSize": "60000",
                },
                "priceFilter": {"tickSize": m.tick},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
                "symbolType": "",
            }
            for m in self.d.markets.values()
        ]

    def kline(self, p: dict[str, Any]) -> Answer:
        tf = INTERVALS.get(p.get("interval", ""))
        if tf is None:
            return ok(self.envelope({}, 10001, "Invalid period!"))
        step, d = INTERVALS_MS[tf], self.d
        market = d.market_by_id(p["symbol"])
        limit = min(int(p.get("limit", 200)), 1000)
        opens = d.candle_opens(step, _int(p, "start"), _int(p, "end"), limit, forward="start" in p)
        now = d.now_ms()
        rows = []
        for t in reversed(opens):  # newest first
            _, o, h, lo, c, v = d.candle(market.symbol, t, step, now)
            rows.append([str(t), num(o), num(h), num(lo), num(c), num(v), num(v * c)])
        return ok(self.envelope({"symbol": market.venue_id(), "category": "spot", "list": rows}))

    def ticker(self, symbol: str) -> dict[str, Any]:
        d, now = self.d, self.d.now_ms()
        last, open_ = d.last_price(symbol), d.price_at(symbol, now - 86_400_000)
        return {
            "symbol": d.market(symbol).venue_id(),
            "bid1Price": num(last - 0.01),
            "bid1Size": "1",
            "ask1Price": num(last + 0.01),
            "ask1Size": "1",
            "lastPrice": num(last),
            "prevPrice24h": num(open_),
            "price24hPcnt": num(round(last / open_ - 1, 4)),
            "highPrice24h": num(max(last, open_) + 1),
            "lowPrice24h": num(min(last, open_) - 1),
            "turnover24h": num(100 * last),
            "volume24h": "100",
            "usdIndexPrice": num(last),
        }

    def wallet(self, account: str) -> dict[str, Any]:
        acct = self.d.account(account)
        coins = [
            {
                "availableToBorrow": "",
                "bonus": "0",
                "accruedInterest": "0",
                "availableToWithdraw": "",
                "totalOrderIM": "0",
                "equity": num(acct.total(a)),
                "totalPositionMM": "0",
                "usdValue": "",
                "spotHedgingQty": "0",
                "unrealisedPnl": "0",
                "collateralSwitch": True,
                "borrowAmount": "0",
                "totalPositionIM": "0",
                "walletBalance": num(acct.total(a)),
                "cumRealisedPnl": "0",
                "locked": num(acct.locked.get(a, 0.0)),
                "marginCollateral": True,
                "coin": a,
            }
            for a in acct.assets()
        ]
        return {
            "totalEquity": "",
            "accountIMRate": "0",
            "totalMarginBalance": "",
            "totalInitialMargin": "0",
            "accountType": "UNIFIED",
            "totalAvailableBalance": "",
            "accountMMRate": "0",
            "totalPerpUPL": "0",
            "totalWalletBalance": "",
            "accountLTV": "0",
            "totalMaintenanceMargin": "0",
            "coin": coins,
        }

    def api_info(self, req: Request) -> dict[str, Any]:
        return {
            "id": "13770661",
            "note": "exchange double",
            "apiKey": self.api_key(req) or "",
            "readOnly": 0,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"],
                "Spot": ["SpotTrade"],
                "Wallet": ["AccountTransfer"],
                "Options": [],
                "Derivatives": [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": -1,
            "expiredAt": "",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 24600000,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }


def _int(p: dict[str, Any], key: str) -> int | None:
    return int(p[key]) if p.get(key) not in (None, "") else None
