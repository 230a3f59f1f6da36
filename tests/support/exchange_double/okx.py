"""OKX v5 REST (spot, cash) as ccxt's okx client uses it; sources in SOURCES.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.support.exchange_double.base import Answer, Request, Venue, ok
from tests.support.exchange_double.core import (
    CONDITIONAL,
    INTERVALS_MS,
    LIMIT,
    MARKET,
    Fill,
    Order,
    Refused,
    num,
)

CID = re.compile(r"^[A-Za-z0-9]{1,32}$")
BARS = {
    "1s": "1s",
    "1m": "1m",
    "3m": "3m",
    "5m": "5m",
    "15m": "15m",
    "30m": "30m",
    "1H": "1h",
    "2H": "2h",
    "4H": "4h",
    "6Hutc": "6h",
    "12Hutc": "12h",
    "1Dutc": "1d",
    "6H": "6h",
    "12H": "12h",
    "1D": "1d",
}
STATES = {
    "NEW": "live",
    "PARTIALLY_FILLED": "partially_filled",
    "FILLED": "filled",
    "CANCELED": "canceled",
    "EXPIRED": "canceled",
}
ALGO_STATES = {"NEW": "live", "TRIGGERED": "effective", "CANCELED": "canceled", "FAILED": "order_failed"}
WRITES = (
    "/api/v5/trade/order",
    "/api/v5/trade/batch-orders",
    "/api/v5/trade/order-algo",
    "/api/v5/trade/cancel-order",
    "/api/v5/trade/cancel-batch-orders",
    "/api/v5/trade/cancel-algos",
)
SCODES = {
    "tick": ("51000", "Parameter px error"),
    "lot_step": ("51121", "Order quantity must be a multiple of the lot size."),
    "min_qty": ("51020", "Your order should meet or exceed the minimum order amount."),
    "max_qty": ("51203", "Order amount exceeds the limit."),
    "balance": ("51008", "Order failed. Insufficient balance in account."),
    "duplicate_client_id": ("51016", "Duplicated clOrdId"),
    "client_id": ("51000", "Parameter clOrdId error"),
    "unknown_symbol": ("51001", "Instrument ID does not exist"),
    "unsupported": ("51000", "Parameter ordType error"),
    "not_cancelable": ("51400", "Order cancellation failed as the order has been filled, canceled or does not exist."),
}


def envelope(data: list[Any], code: str = "0", msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class Okx(Venue):
    name = "okx"
    checks = frozenset({"tick", "lot_step", "min_qty", "max_qty"})  # OKX spot has no minimum notional
    client_id_scope = "open"

    def __init__(self, double: Any) -> None:
        super().__init__(double)
        double.id_format = lambda n: str(2896576259728600000 + n)
        double.trade_id_format = lambda n: str(107601000 + n)
        self.routes = self._routes()

    # ---------------------------------------------------------------------------- shared behaviours

    def is_private(self, req: Request) -> bool:
        return req.path.startswith(("/api/v5/account", "/api/v5/trade", "/api/v5/asset"))

    def api_key(self, req: Request) -> str | None:
        return req.header("OK-ACCESS-KEY")

    def is_create(self, req: Request) -> bool:
        return req.method == "POST" and req.path in WRITES[:3]

    def timestamp_error(self, req: Request, server_ms: int) -> Answer | None:
        sent = iso_ms(req.header("OK-ACCESS-TIMESTAMP"))
        if sent is None:
            return 401, envelope([], "50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty'), {}
        if abs(server_ms - sent) > 30_000:  # "Requests will expire 30 seconds after the timestamp"
            return 401, envelope([], "50102", "Timestamp request expired"), {}
        return None

    def rate_limited(self, banned: bool, retry_after_s: int) -> Answer:
        return (
            429,
            envelope(
                [], "50011", "Rate limit reached. Please refer to API documentation and throttle requests accordingly"
            ),
            {},
        )

    def maintenance(self) -> Answer:
        return 503, envelope([], "50001", "Service temporarily unavailable. Please try again later."), {}

    def auth_failed(self, req: Request) -> Answer:
        return 401, envelope([], "50111", "Invalid OK-ACCESS-KEY"), {}

    def refusal(self, refused: Refused, req: Request) -> Answer:
        if refused.reason == "not_found":
            if req.path in WRITES:
                code, msg = "51400", SCODES["not_cancelable"][1]
            else:
                return ok(envelope([], "51603", "Order does not exist"))
        elif refused.reason == "would_trigger":
            sell = req.params.get("side") == "sell"
            code, msg = (
                ("51280", "SL trigger price must be lower than the last price")
                if sell
                else ("51278", "SL trigger price must be higher than the last price")
            )
        else:
            code, msg = SCODES[refused.reason]
        if req.path in WRITES:  # order endpoints answer 200 with the code per order
            p = req.params
            item = {
                "clOrdId": p.get("clOrdId", ""),
                "ordId": "",
                "sCode": code,
                "sMsg": msg,
                "tag": "",
                "ts": str(self.d.now_ms()),
            }
            return ok(envelope([item], "1", "All operations failed"))
        return 400, envelope([], code, msg), {}

    # ------------------------------------------------------------------------------------- routing

    def route(self, req: Request) -> Answer:
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            return 404, envelope([], "50005", f"exchange double: {req.method} {req.path} is not modelled"), {}
        return handler(req, self.d.account_key(self.api_key(req)))

    def _routes(self) -> dict[tuple[str, str], Callable[[Request, str], Answer]]:
        d = self.d
        symbol = self._symbol
        return {
            ("GET", "/api/v5/public/time"): lambda r, a: ok(envelope([{"ts": str(d.server_ms())}])),
            ("GET", "/api/v5/public/instruments"): lambda r, a: ok(
                envelope(self.instruments() if r.params.get("instType") == "SPOT" else [])
            ),
            ("GET", "/api/v5/market/candles"): lambda r, a: self.candles(r.params, history=False),
            ("GET", "/api/v5/market/history-candles"): lambda r, a: self.candles(r.params, history=True),
            ("GET", "/api/v5/market/ticker"): lambda r, a: ok(envelope([self.ticker(symbol(r.params) or "")])),
            # ccxt's load_markets asks for currencies whenever it has keys
            ("GET", "/api/v5/asset/currencies"): lambda r, a: ok(envelope([self.currency(x) for x in self.assets()])),
            ("GET", "/api/v5/account/balance"): lambda r, a: ok(envelope([self.balance(a)])),
            ("POST", "/api/v5/trade/order"): self.place_orders,
            ("POST", "/api/v5/trade/batch-orders"): self.place_orders,
            ("POST", "/api/v5/trade/order-algo"): self.place_algo,
            ("GET", "/api/v5/trade/order"): lambda r, a: ok(envelope([self.order_json(self.find(r.params, a))])),
            ("GET", "/api/v5/trade/order-algo"): self.get_algo,
            ("POST", "/api/v5/trade/cancel-order"): self.cancel_orders,
            ("POST", "/api/v5/trade/cancel-batch-orders"): self.cancel_orders,
            ("POST", "/api/v5/trade/cancel-algos"): self.cancel_algos,
            ("GET", "/api/v5/trade/orders-pending"): lambda r, a: ok(envelope(self.order_list(r.params, a, True))),
            ("GET", "/api/v5/trade/orders-history"): lambda r, a: ok(envelope(self.order_list(r.params, a, False))),
            ("GET", "/api/v5/trade/orders-history-archive"): lambda r, a: ok(
                envelope(self.order_list(r.params, a, False))
            ),
            ("GET", "/api/v5/trade/orders-algo-pending"): lambda r, a: self.algo_list(r.params, a, True),
            ("GET", "/api/v5/trade/orders-algo-history"): lambda r, a: self.algo_list(r.params, a, False),
            ("GET", "/api/v5/trade/fills"): self.fills,
            ("GET", "/api/v5/trade/fills-history"): self.fills,
        }

    def _symbol(self, p: dict[str, Any]) -> str | None:
        return self.d.market_by_id(p["instId"], "-").symbol if p.get("instId") else None

    def place_orders(self, req: Request, account: str) -> Answer:
        items = req.body if isinstance(req.body, list) else [req.body]
        placed = [self.create_order(item, account, hide=True) for item in items]
        return ok(
            envelope(
                [
                    {
                        "clOrdId": o.client_order_id,
                        "ordId": o.order_id,
                        "sCode": "0",
                        "sMsg": "Order placed",
                        "tag": o.extra.get("tag", ""),
                        "ts": str(o.time_ms),
                    }
                    for o in placed
                ]
            )
        )

    def place_algo(self, req: Request, account: str) -> Answer:
        o = self.create_algo(req.params, account, hide=True)
        return ok(
            envelope(
                [
                    {
                        "algoId": o.order_id,
                        "algoClOrdId": o.client_order_id,
                        "clOrdId": o.client_order_id,
                        "sCode": "0",
                        "sMsg": "",
                        "tag": o.extra.get("tag", ""),
                    }
                ]
            )
        )

    def cancel_orders(self, req: Request, account: str) -> Answer:
        items = req.body if isinstance(req.body, list) else [req.body]
        done = [self.d.cancel(self.find(item, account, algo=False)) for item in items]
        return ok(
            envelope(
                [
                    {
                        "clOrdId": o.client_order_id,
                        "ordId": o.order_id,
                        "sCode": "0",
                        "sMsg": "",
                        "ts": str(self.d.now_ms()),
                    }
                    for o in done
                ]
            )
        )

    def cancel_algos(self, req: Request, account: str) -> Answer:
        done = [self.d.cancel(self.find(item, account, algo=True)) for item in req.body]
        return ok(
            envelope([{"algoId": o.order_id, "algoClOrdId": o.client_order_id, "sCode": "0", "sMsg": ""} for o in done])
        )

    def fills(self, req: Request, account: str) -> Answer:
        p = req.params
        fills = self.d.trades(
            account, symbol=self._symbol(p), order_id=p.get("ordId"), since_ms=_int(p, "begin"), until_ms=_int(p, "end")
        )
        return ok(envelope([self.fill_json(f) for f in reversed(fills)][: min(int(p.get("limit", 100)), 100)]))

    # ------------------------------------------------------------------------------------- orders

    def _client_id(self, p: dict[str, Any], account: str, *keys: str) -> str:
        cid = next((str(p[k]) for k in keys if p.get(k)), "")
        if cid:
            if not CID.match(cid):
                raise Refused("client_id", cid)
            self.d.check_client_id(account, cid, self.client_id_scope)
        return cid

    def create_order(self, p: dict[str, Any], account: str, hide: bool) -> Order:
        d = self.d
        market = d.market_by_id(p["instId"], "-")
        cid = self._client_id(p, account, "clOrdId")
        side, ord_type = p["side"], p.get("ordType")
        if ord_type not in ("market", "limit"):
            raise Refused("unsupported", str(ord_type))
        sz, last = float(p["sz"]), d.last_price(market.symbol)
        # spot market orders: sz is in quote for buys and base for sells unless tgtCcy says otherwise
        tgt = p.get("tgtCcy") or ("quote_ccy" if side == "buy" else "base_ccy")
        quote_qty = sz if ord_type == "market" and tgt == "quote_ccy" else None
        qty = d.qty_for_quote(market.symbol, sz) if quote_qty is not None else sz
        price = float(p["px"]) if ord_type == "limit" else None
        d.check_filters(market, qty if quote_qty is None else None, price, price or last, self.checks)
        if qty <= 0:
            raise Refused("min_qty", f"sz {sz} buys nothing")
        return d.create(
            account,
            market.symbol,
            side,
            MARKET if ord_type == "market" else LIMIT,
            qty=qty,
            quote_qty=quote_qty,
            price=price,
            client_order_id=cid,
            hide=hide,
            extra={
                "tdMode": p.get("tdMode", "cash"),
                "tgtCcy": tgt if ord_type == "market" else "",
                "tag": p.get("tag", ""),
                "ordType": ord_type,
            },
        )

    def create_algo(self, p: dict[str, Any], account: str, hide: bool) -> Order:
        d = self.d
        market = d.market_by_id(p["instId"], "-")
        cid = self._client_id(p, account, "algoClOrdId", "clOrdId")
        if p.get("ordType") != "conditional" or not p.get("slTriggerPx") or p.get("tpTriggerPx"):
            raise Refused("unsupported", "exchange double: only stop-loss conditional algo orders are modelled")
        side, qty, trigger = p["side"], float(p["sz"]), float(p["slTriggerPx"])
        ord_px = str(p.get("slOrdPx", "-1"))
        price = None if ord_px == "-1" else float(ord_px)
        last = d.last_price(market.symbol)
        d.check_filters(market, qty, trigger, last, self.checks)
        d.check_filters(market, None, price, last, self.checks)
        if (trigger >= last) if side == "sell" else (trigger <= last):
            raise Refused("would_trigger", f"slTriggerPx {trigger}, last {last}")
        return d.create(
            account,
            market.symbol,
            side,
            CONDITIONAL,
            qty=qty,
            price=price,
            trigger_price=trigger,
            client_order_id=cid,
            hide=hide,
            extra={
                "tdMode": p.get("tdMode", "cash"),
                "tag": p.get("tag", ""),
                "slTriggerPxType": p.get("slTriggerPxType", "last"),
                "slOrdPx": ord_px,
                "tgtCcy": p.get("tgtCcy", ""),
            },
        )

    def place_native(self, params: dict[str, Any], account: str) -> Order:
        if params.get("ordType") == "conditional":
            return self.create_algo(params, account, hide=False)
        return self.create_order(params, account, hide=False)

    def get_algo(self, req: Request, account: str) -> Answer:
        return ok(envelope([self.algo_json(self.find(req.params, account, algo=True))]))

    def find(self, p: dict[str, Any], account: str, algo: bool = False) -> Order:
        symbol = self._symbol(p)
        if algo:
            return self.d.lookup(
                account,
                symbol=symbol,
                order_id=p.get("algoId"),
                client_order_id=p.get("algoClOrdId") or p.get("clOrdId"),
                algo=True,
            )
        return self.d.lookup(
            account, symbol=symbol, order_id=p.get("ordId"), client_order_id=p.get("clOrdId"), algo=False
        )

    def order_list(self, p: dict[str, Any], account: str, pending: bool) -> list[dict[str, Any]]:
        orders = self.d.listed(
            account,
            symbol=self._symbol(p),
            open_only=pending,
            algo=False,
            since_ms=_int(p, "begin"),
            until_ms=_int(p, "end"),
        )
        rows = [self.order_json(o) for o in reversed(orders)]  # newest first
        for key in ("state", "ordType"):
            if p.get(key):
                rows = [r for r in rows if r[key] in str(p[key]).split(",")]
        return rows[: min(int(p.get("limit", 100)), 100)]

    def algo_list(self, p: dict[str, Any], account: str, pending: bool) -> Answer:
        if not p.get("ordType") and not p.get("algoId"):
            return 400, envelope([], "50014", "Parameter ordType can not be empty"), {}
        if not pending and p.get("state") and p["state"] not in ("effective", "canceled", "order_failed"):
            return 400, envelope([], "51000", "Parameter state error"), {}
        orders = self.d.listed(account, symbol=self._symbol(p), open_only=pending, algo=True)
        rows = [self.algo_json(o) for o in reversed(orders)]
        for key in ("ordType", "state", "algoId"):
            if p.get(key):
                rows = [r for r in rows if r[key] in str(p[key]).split(",")]
        return ok(envelope(rows[: min(int(p.get("limit", 100)), 100)]))

    def order_json(self, o: Order) -> dict[str, Any]:
        m = self.d.market(o.symbol)
        fee = sum(f.fee for f in o.fills)
        last = o.fills[-1] if o.fills else None
        return {
            "accFillSz": num(o.executed),
            "algoClOrdId": o.extra.get("algoClOrdId", ""),
            "algoId": o.extra.get("algoId", ""),
            "attachAlgoClOrdId": "",
            "attachAlgoOrds": [],
            "avgPx": num(o.average) if o.executed else "",
            "cTime": str(o.time_ms),
            "cancelSource": "",
            "category": "normal",
            "ccy": "",
            "clOrdId": o.client_order_id,
            "fee": num(-fee) if fee else "0",
            "feeCcy": o.fills[0].fee_asset if o.fills else (m.base if o.side == "buy" else m.quote),
            "fillPx": num(last.price) if last else "",
            "fillSz": num(last.qty) if last else "0",
            "fillTime": str(last.time_ms) if last else "",
            "instId": m.venue_id("-"),
            "instType": "SPOT",
            "isTpLimit": "false",
            "lever": "",
            "linkedAlgoOrd": {"algoId": ""},
            "ordId": o.order_id,
            "ordType": o.extra.get("ordType", "market" if o.type == MARKET else "limit"),
            "pnl": "0",
            "posSide": "net",
            "px": num(o.price) if o.price is not None else "",
            "pxType": "",
            "pxUsd": "",
            "pxVol": "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": m.quote if o.side == "buy" else m.base,
            "reduceOnly": "false",
            "side": o.side,
            "slOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "source": "",
            "state": STATES[o.status],
            "stpId": "",
            "stpMode": "cancel_maker",
            "sz": num(o.quote_qty if o.quote_qty is not None else o.qty),
            "tag": o.extra.get("tag", ""),
            "tdMode": o.extra.get("tdMode", "cash"),
            "tgtCcy": o.extra.get("tgtCcy", ""),
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tradeId": last.trade_id if last else "",
            "tradeQuoteCcy": m.quote,
            "uTime": str(o.update_ms),
        }

    def algo_json(self, o: Order) -> dict[str, Any]:
        triggered = o.status in ("TRIGGERED", "FAILED")
        return {
            "activePx": "",
            "actualPx": o.extra["slOrdPx"] if triggered else "",
            "actualSide": "sl" if triggered else "",
            "actualSz": num(o.qty) if triggered else "0",
            "algoClOrdId": o.client_order_id,
            "algoId": o.order_id,
            "amendPxOnTriggerType": "0",
            "attachAlgoOrds": [],
            "cTime": str(o.time_ms),
            "callbackRatio": "",
            "callbackSpread": "",
            "ccy": "",
            "clOrdId": o.client_order_id,
            "closeFraction": "",
            "failCode": "",
            "instId": self.d.market(o.symbol).venue_id("-"),
            "instType": "SPOT",
            "isTradeBorrowMode": "",
            "last": num(self.d.last_price(o.symbol)),
            "lever": "",
            "linkedOrd": {"ordId": ""},
            "moveTriggerPx": "",
            "ordId": o.child_id or "",
            "ordIdList": [o.child_id] if o.child_id else [],
            "ordPx": "",
            "ordType": "conditional",
            "posSide": "net",
            "pxLimit": "",
            "pxSpread": "",
            "pxVar": "",
            "quickMgnType": "",
            "reduceOnly": "false",
            "side": o.side,
            "slOrdPx": o.extra["slOrdPx"],
            "slTriggerPx": num(o.trigger_price or 0),
            "slTriggerPxType": o.extra["slTriggerPxType"],
            "state": ALGO_STATES[o.status],
            "stpId": "",
            "stpMode": "",
            "sz": num(o.qty),
            "szLimit": "",
            "tag": o.extra.get("tag", ""),
            "tdMode": o.extra.get("tdMode", "cash"),
            "tgtCcy": o.extra.get("tgtCcy", ""),
            "timeInterval": "",
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "triggerPx": "",
            "triggerPxType": "",
            "triggerTime": str(o.update_ms) if triggered else "",
            "uTime": str(o.update_ms),
        }

    def fill_json(self, f: Fill) -> dict[str, Any]:
        order = self.d.order(f.order_id)
        return {
            "instType": "SPOT",
            "instId": self.d.market(f.symbol).venue_id("-"),
            "tradeId": f.trade_id,
            "ordId": f.order_id,
            "clOrdId": order.client_order_id,
            "billId": f"9{f.trade_id}",
            "subType": "1",
            "tag": order.extra.get("tag", ""),
            "fillPx": num(f.price),
            "fillSz": num(f.qty),
            "fillIdxPx": "",
            "fillPnl": "0",
            "fillPxVol": "",
            "fillPxUsd": "",
            "fillMarkVol": "",
            "fillFwdPx": "",
            "fillMarkPx": "",
            "side": f.side,
            "posSide": "net",
            "execType": "M" if f.maker else "T",
            "feeCcy": f.fee_asset,
            "fee": num(-f.fee),
            "ts": str(f.time_ms),
            "fillTime": str(f.time_ms),
            "tradeQuoteCcy": self.d.market(f.symbol).quote,
        }

    # -------------------------------------------------------------------------------- market data

    def assets(self) -> list[str]:  # for /asset/currencies
        return sorted({a for m in self.d.markets.values() for a in (m.base, m.quote)})

    @staticmethod
    def currency(asset: str) -> dict[str, Any]:
        fiat = asset in ("EUR", "USD")
        return {
            "ccy": asset,
            "name": asset,
            "logoLink": "",
            "chain": "" if fiat else f"{asset}-{asset}",
            "ctAddr": "",
            "canDep": not fiat,
            "canWd": not fiat,
            "canInternal": True,
            "depEstOpenTime": "",
            "wdEstOpenTime": "",
            "minDep": "0.00001",
            "minDepArrivalConfirm": "1",
            "minWd": "0.001",
            "maxWd": "1000000",
            "wdQuota": "10000000",
            "usedWdQuota": "0",
            "wdTickSz": "8",
            "fee": "0.0002",
            "minFee": "0.0002",
            "maxFee": "0.0004",
            "mainNet": True,
            "needTag": False,
            "burningFeeRate": "",
            "minInternal": "0.0001",
            "maxInternal": "1000000",
            "depQuotaFixed": "",
            "usedDepQuotaFixed": "",
        }

    def instruments(self) -> list[dict[str, Any]]:
        return [
            {
                "alias": "",
                "auctionEndTime": "",
                "baseCcy": m.base,
                "category": "1",
                "ctMult": "",
                "ctType": "",
                "ctVal": "",
                "ctValCcy": "",
                "expTime": "",
                "instFamily": "",
                "instId": m.venue_id("-"),
                "instIdCode": 1000 + i,
                "instType": "SPOT",
                "lever": "10",
                "listTime": "1606468572000",
                "lotSz": m.lot_step,
                "maxIcebergSz": m.max_qty,
                "maxLmtAmt": "20000000",
                "maxLmtSz": m.max_qty,
                "maxMktAmt": "1000000",
                "maxMktSz": "1000000",
                "maxStopSz": "1000000",
                "maxTriggerSz": m.max_qty,
                "maxTwapSz": m.max_qty,
                "minSz": m.min_qty,
                "optType": "",
                "quoteCcy": m.quote,
                "ruleType": "normal",
                "settleCcy": "",
                "state": "live",
                "stk": "",
                "tickSz": m.tick,
                "tradeQuoteCcyList": [m.quote],
                "uly": "",
            }
            for i, m in enumerate(self.d.markets.values())
        ]

    def candles(self, p: dict[str, Any], history: bool) -> Answer:
        tf = BARS.get(p.get("bar", "1m"))
        if tf is None:
            return 400, envelope([], "51000", "Parameter bar error"), {}
        step, d = INTERVALS_MS[tf], self.d
        symbol = d.market_by_id(p["instId"], "-").symbol
        limit = min(int(p.get("limit", 100)), 100 if history else 300)
        after, before = _int(p, "after"), _int(p, "before")  # after: older than; before: newer than
        now = d.now_ms()
        start = None if before is None else before + 1
        if not history:  # /market/candles serves only the latest 1,440 bars
            start = max(start or 0, now - now % step - 1439 * step)
        opens = d.candle_opens(step, start, None if after is None else after - 1, limit, forward=False)
        rows = []
        for t in reversed(opens):  # newest first
            _, o, h, lo, c, v = d.candle(symbol, t, step, now)
            rows.append(
                [
                    str(t),
                    num(o),
                    num(h),
                    num(lo),
                    num(c),
                    num(v),
                    num(v * c),
                    num(v * c),
                    "1" if t + step <= now else "0",
                ]
            )
        return ok(envelope(rows))

    def ticker(self, symbol: str) -> dict[str, Any]:
        d, now = self.d, self.d.now_ms()
        last, open_ = d.last_price(symbol), d.price_at(symbol, now - 86_400_000)
        return {
            "instType": "SPOT",
            "instId": d.market(symbol).venue_id("-"),
            "last": num(last),
            "lastSz": "0.01",
            "askPx": num(last + 0.01),
            "askSz": "1",
            "bidPx": num(last - 0.01),
            "bidSz": "1",
            "open24h": num(open_),
            "high24h": num(max(last, open_) + 1),
            "low24h": num(min(last, open_) - 1),
            "volCcy24h": num(100 * last),
            "vol24h": "100",
            "ts": str(now),
            "sodUtc0": num(open_),
            "sodUtc8": num(open_),
        }

    def balance(self, account: str) -> dict[str, Any]:
        acct, now = self.d.account(account), str(self.d.now_ms())
        details = [
            {
                "accAvgPx": "",
                "availBal": num(acct.free.get(a, 0.0)),
                "availEq": "",
                "borrowFroz": "",
                "cashBal": num(acct.total(a)),
                "ccy": a,
                "clSpotInUseAmt": "",
                "crossLiab": "",
                "disEq": "0",
                "eq": num(acct.total(a)),
                "eqUsd": "",
                "fixedBal": "0",
                "frozenBal": num(acct.locked.get(a, 0.0)),
                "imr": "",
                "interest": "",
                "isoEq": "",
                "isoLiab": "",
                "isoUpl": "",
                "liab": "",
                "maxLoan": "",
                "mgnRatio": "",
                "mmr": "",
                "notionalLever": "",
                "ordFrozen": num(acct.locked.get(a, 0.0)),
                "rewardBal": "0",
                "smtSyncEq": "0",
                "spotBal": "",
                "spotInUseAmt": "",
                "spotIsoBal": "0",
                "stgyEq": "0",
                "twap": "0",
                "uTime": now,
                "upl": "",
                "uplLiab": "",
            }
            for a in acct.assets()
        ]
        return {
            "adjEq": "",
            "availEq": "",
            "borrowFroz": "",
            "details": details,
            "imr": "",
            "isoEq": "0",
            "mgnRatio": "",
            "mmr": "",
            "notionalUsd": "",
            "ordFroz": "",
            "totalEq": "",
            "uTime": now,
            "upl": "",
        }


def _int(p: dict[str, Any], key: str) -> int | None:
    return int(p[key]) if p.get(key) not in (None, "") else None
