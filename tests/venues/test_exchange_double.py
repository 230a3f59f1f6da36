"""The exchange double against the real ccxt client, per venue (Binance spot, OKX v5, Bybit v5).

Each test drives ccxt through `bot_runtime.exchange.build_exchange` and compares what ccxt reports with
what the double holds. The ccxt exception classes asserted here are the measured mapping of ccxt 4.5.90;
an upgrade that moves one fails here. The broker recipes (how to buy a base amount at market, how to look
an order up by client id) are the helpers below.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import ccxt
import pytest

from bot_runtime.exchange import Credentials, build_exchange
from tests.support.exchange_double import CONDITIONAL, LIMIT, ExchangeDouble
from tests.support.fake_exchange import FakeExchange

VENUES = ["binance", "okx", "bybit"]
SYMBOL = "BTC/USDT"


@pytest.fixture(params=VENUES)
def double(request: pytest.FixtureRequest) -> Iterator[ExchangeDouble]:
    d = ExchangeDouble(request.param).start()
    d.price_fn = lambda open_ms: 100.0  # a flat market unless a test moves it
    try:
        yield d
        assert d.errors == []  # every request was one the double models
    finally:
        d.stop()


def venue_double(venue: str) -> ExchangeDouble:
    d = ExchangeDouble(venue).start()
    d.price_fn = lambda open_ms: 100.0
    return d


def client(double: ExchangeDouble, key: str = "key", timeout_ms: int = 3000, load: bool = True) -> Any:
    ex = build_exchange(
        double.venue.name,
        credentials=Credentials(key, "secret", "passphrase"),
        api_url=double.url,
        timeout_ms=timeout_ms,
    )
    ex.enableRateLimit = False  # ccxt's own throttle only adds sleeps against a local double
    if load:
        ex.load_markets()
    return ex


# ------------------------------------------------------------------------------ the broker recipes


def market_buy(ex: Any, amount: float, cid: str, symbol: str = SYMBOL) -> dict[str, Any]:
    """A base amount at market on every venue: no price argument (a price turns it into a quote-sized order
    on Binance and Bybit), ccxt sends Binance `quantity`, OKX `tgtCcy=base_ccy`, Bybit `marketUnit=baseCoin`."""
    order: dict[str, Any] = ex.create_order(symbol, "market", "buy", amount, None, {"clientOrderId": cid})
    return order


def fetch_by_id(ex: Any, order_id: str, symbol: str = SYMBOL) -> dict[str, Any]:
    order: dict[str, Any] = ex.fetch_order(order_id, symbol, {"acknowledged": True} if ex.id == "bybit" else {})
    return order


def fetch_by_client_id(ex: Any, cid: str, symbol: str = SYMBOL) -> dict[str, Any]:
    """Binance/OKX: fetch_order with the unified clientOrderId. Bybit: fetch_order cannot (ccxt sends
    orderId=None); /v5/order/realtime with orderLinkId finds open and recently closed orders, history the rest."""
    if ex.id != "bybit":
        order: dict[str, Any] = ex.fetch_order(None, symbol, {"clientOrderId": cid})
        return order
    found = ex.fetch_open_orders(symbol, params={"orderLinkId": cid}) or ex.fetch_canceled_and_closed_orders(
        symbol, params={"orderLinkId": cid}
    )
    if not found:
        raise ccxt.OrderNotFound(f"bybit {cid}")
    return dict(found[0])


def settled(ex: Any, order: dict[str, Any]) -> dict[str, Any]:
    """Binance's create answer carries the fills (FULL); OKX and Bybit answer only ids: look the order up."""
    return order if ex.id == "binance" else fetch_by_id(ex, order["id"])


# -------------------------------------------------------------------------------------- market data


def test_markets_carry_precision_and_limits(double: ExchangeDouble) -> None:
    ex = client(double)
    assert {SYMBOL, "ETH/USDT", "BTC/EUR"} <= set(ex.markets)
    m = ex.market(SYMBOL)
    assert m["precision"]["amount"] == 0.00001 and m["precision"]["price"] == 0.01
    assert m["limits"]["amount"]["min"] == 0.0001 and m["limits"]["amount"]["max"] == 9000
    assert m["limits"]["cost"]["min"] == (None if double.venue.name == "okx" else 5.0)  # OKX has no min notional
    assert ex.amount_to_precision(SYMBOL, 0.0123456) == "0.01234"
    assert ex.price_to_precision(SYMBOL, 100.1234) == "100.12"


def test_ohlcv_returns_ordered_candles_and_paginates(double: ExchangeDouble) -> None:
    ex = client(double)
    now = double.now_ms()
    candles = ex.fetch_ohlcv(SYMBOL, "1m", limit=5)
    opens = [c[0] for c in candles]
    assert len(candles) == 5 and opens == sorted(opens) and {b - a for a, b in pairwise(opens)} == {60_000}
    assert opens[-1] in (now - now % 60_000, now - now % 60_000 + 60_000)  # the last one is still forming
    closed = [c for c in candles if c[0] + 60_000 <= double.now_ms()]
    assert len(closed) == 4
    since = opens[0] - 10 * 60_000
    first = ex.fetch_ohlcv(SYMBOL, "1m", since=since, limit=3)
    second = ex.fetch_ohlcv(SYMBOL, "1m", since=first[-1][0] + 60_000, limit=3)
    assert [c[0] for c in first + second] == [since + i * 60_000 for i in range(6)]
    fast = ex.fetch_ohlcv(SYMBOL, "1s", limit=3)  # OKX and Bybit: a test-only acceleration
    assert [b[0] - a[0] for a, b in pairwise(fast)] == [1000, 1000]


def test_okx_old_candles_come_from_history_candles_capped_at_100() -> None:
    d = venue_double("okx")
    try:
        ex = client(d)
        since = d.now_ms() - 3000 * 60_000
        since -= since % 60_000
        candles = ex.fetch_ohlcv(SYMBOL, "1m", since=since, limit=100)
        assert len(candles) == 100 and candles[0][0] == since
        assert d.requests["GET /api/v5/market/history-candles"] == 1
        # ccxt asks for up to 300 (before=since-1, after=since+300 bars); history-candles serves at most 100,
        # the newest below `after`: the window's last 100 bars, not its first
        candles = ex.fetch_ohlcv(SYMBOL, "1m", since=since, limit=300)
        assert len(candles) == 100 and candles[0][0] == since + 200 * 60_000
    finally:
        d.stop()


def test_balance_per_account(double: ExchangeDouble) -> None:
    double.add_account("other-key", {"USDT": 123.0, "BTC": 1.0})
    assert client(double).fetch_balance()["USDT"]["free"] == 10_000
    other = client(double, "other-key").fetch_balance()
    assert other["USDT"]["free"] == 123 and other["BTC"]["total"] == 1


# ----------------------------------------------------------------------------------------------- fees


def test_market_buy_fee_in_the_bought_asset(double: ExchangeDouble) -> None:
    ex = client(double)
    order = settled(ex, market_buy(ex, 0.5, "fee1"))
    assert order["filled"] == 0.5 and order["status"] == "closed"  # ccxt reports the gross quantity
    assert order["fee"]["currency"] == "BTC" and order["fee"]["cost"] == pytest.approx(0.0005)
    trades = ex.fetch_my_trades(SYMBOL)
    assert [(t["fee"]["currency"], t["fee"]["cost"]) for t in trades] == [("BTC", pytest.approx(0.0005))]
    assert double.balances["BTC"] == pytest.approx(0.4995)  # the account holds the net amount
    assert double.balances["USDT"] == pytest.approx(9950.0)
    assert ex.fetch_balance()["BTC"]["free"] == pytest.approx(0.4995)


def test_market_buy_fee_in_quote(double: ExchangeDouble) -> None:
    double.behaviour.fee_asset = "quote"
    ex = client(double)
    order = settled(ex, market_buy(ex, 0.5, "fee2"))
    assert order["fee"]["currency"] == "USDT" and order["fee"]["cost"] == pytest.approx(0.05)
    assert double.balances["BTC"] == pytest.approx(0.5) and double.balances["USDT"] == pytest.approx(9949.95)
    (trade,) = ex.fetch_my_trades(SYMBOL)
    # ccxt's bybit parse_trade infers a spot fee's currency from the side (buy: base); it ignores feeCurrency
    assert trade["fee"]["currency"] == ("BTC" if double.venue.name == "bybit" else "USDT")


def test_binance_fee_in_bnb_then_fallback_when_bnb_runs_out() -> None:
    d = venue_double("binance")  # BNB payment is Binance's; OKX and Bybit have no third-asset spot fee
    try:
        d.behaviour.fee_asset = "third"
        d.balances["BNB"] = 0.0003  # enough for one fee of 50 * 0.001 / 250 = 0.0002 BNB
        ex = client(d)
        first = market_buy(ex, 0.5, "bnb1")
        assert first["fee"]["currency"] == "BNB" and first["fee"]["cost"] == pytest.approx(0.0002)
        assert d.balances["BTC"] == pytest.approx(0.5) and d.balances["USDT"] == pytest.approx(9950.0)
        second = market_buy(ex, 0.5, "bnb2")
        assert second["fee"]["currency"] == "BTC"  # not enough BNB: charged in the received asset
        assert d.balances["BTC"] == pytest.approx(0.9995) and d.balances["BNB"] == pytest.approx(0.0001)
    finally:
        d.stop()


# -------------------------------------------------------------------------------------------- lookups


def test_fetch_order_by_client_order_id(double: ExchangeDouble) -> None:
    ex = client(double)
    placed = market_buy(ex, 0.2, "lookup1")
    found = fetch_by_client_id(ex, "lookup1")
    assert found["id"] == placed["id"] and found["clientOrderId"] == "lookup1" and found["filled"] == 0.2
    (truth,) = [o for o in double.orders if o.client_order_id == "lookup1"]
    assert truth.order_id == found["id"] and truth.status == "FILLED"
    with pytest.raises(ccxt.OrderNotFound):
        fetch_by_client_id(ex, "nosuch1")


def test_bybit_fetch_order_by_client_id_does_not_work_and_open_orders_return_closed_ones() -> None:
    d = venue_double("bybit")
    try:
        ex = client(d)
        market_buy(ex, 0.2, "byb1")
        with pytest.raises(ccxt.OrderNotFound):  # ccxt sends orderId=None and passes clientOrderId through
            ex.fetch_order(None, SYMBOL, {"acknowledged": True, "orderLinkId": "byb1"})
        assert ("GET", "/v5/order/realtime") in [(m, p) for m, p, _ in d.request_log]
        assert d.request_log[-1][2]["orderId"] == "None"
        with pytest.raises(ccxt.ArgumentsRequired):  # fetch_order on a unified account wants acknowledged=True
            ex.fetch_order("1", SYMBOL)
        # /v5/order/realtime ignores openOnly when asked by orderLinkId: "open orders" returns the filled order
        (order,) = ex.fetch_open_orders(SYMBOL, params={"orderLinkId": "byb1"})
        assert order["status"] == "closed"
    finally:
        d.stop()


def test_new_order_reads_not_found_for_a_while_on_every_path(double: ExchangeDouble) -> None:
    double.behaviour.not_found_s = 0.8
    ex = client(double)
    filled = market_buy(ex, 0.2, "nf1")
    resting = ex.create_order(SYMBOL, "limit", "buy", 0.1, 50, {"clientOrderId": "nf2"})
    assert [o.client_order_id for o in double.orders] == ["nf1", "nf2"]  # the truth has both at once
    with pytest.raises(ccxt.OrderNotFound):
        fetch_by_id(ex, filled["id"])
    with pytest.raises(ccxt.OrderNotFound):
        fetch_by_client_id(ex, "nf1")
    assert ex.fetch_open_orders(SYMBOL) == [] and ex.fetch_closed_orders(SYMBOL) == []
    assert ex.fetch_my_trades(SYMBOL) == []
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(resting["id"], SYMBOL)
    time.sleep(0.85)
    assert fetch_by_id(ex, filled["id"])["status"] == "closed"
    assert fetch_by_client_id(ex, "nf1")["id"] == filled["id"]
    assert [o["clientOrderId"] for o in ex.fetch_open_orders(SYMBOL)] == ["nf2"]
    assert len(ex.fetch_my_trades(SYMBOL)) == 1
    assert ex.cancel_order(resting["id"], SYMBOL)["id"] == resting["id"]


def test_partial_fills_progress_one_part_per_poll_or_tick(double: ExchangeDouble) -> None:
    double.behaviour.partial_fills = 3
    ex = client(double)
    order = market_buy(ex, 0.3, "part1")
    polls = [fetch_by_id(ex, order["id"]) for _ in range(3)]
    assert [p["filled"] for p in polls] == [pytest.approx(0.2), pytest.approx(0.3), pytest.approx(0.3)]
    assert [p["status"] for p in polls] == ["open", "closed", "closed"]
    assert len(ex.fetch_my_trades(SYMBOL)) == 3
    second = double.order(market_buy(ex, 0.3, "part2")["id"])
    executed = [second.executed]
    for _ in range(2):
        double.tick()
        executed.append(second.executed)
    assert executed == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3)] and second.status == "FILLED"
    assert double.balances["BTC"] == pytest.approx(0.6 * 0.999)


# --------------------------------------------------------------------------------------------- refusals

FILTERS = {  # case -> venue -> (ccxt class, code in the message); None: the venue accepts it
    "lot_step": {
        "binance": (ccxt.InvalidOrder, "LOT_SIZE"),
        "okx": (ccxt.InvalidOrder, "51121"),
        "bybit": (ccxt.InvalidOrder, "170137"),
    },
    "min_qty": {
        "binance": (ccxt.InvalidOrder, "LOT_SIZE"),
        "okx": (ccxt.InvalidOrder, "51020"),
        "bybit": (ccxt.InvalidOrder, "170136"),
    },
    "max_qty": {
        "binance": (ccxt.InvalidOrder, "LOT_SIZE"),
        "okx": (ccxt.InvalidOrder, "51203"),
        "bybit": (ccxt.InvalidOrder, "170135"),
    },
    # ccxt maps Binance -1013 to BadRequest and only rescues LOT_SIZE/PRICE_FILTER by message: NOTIONAL stays
    "min_notional": {"binance": (ccxt.BadRequest, "NOTIONAL"), "okx": None, "bybit": (ccxt.InvalidOrder, "170140")},
    "tick": {
        "binance": (ccxt.InvalidOrder, "PRICE_FILTER"),
        "okx": (ccxt.BadRequest, "51000"),
        "bybit": (ccxt.InvalidOrder, "170134"),
    },
}
ORDERS = {
    "lot_step": ("market", 0.000155, None),
    "min_qty": ("market", 0.00005, None),
    "max_qty": ("market", 9001, None),
    "min_notional": ("market", 0.01, None),
    "tick": ("limit", 0.1, 99.995),
}


@pytest.mark.parametrize("case", list(FILTERS))
def test_exchange_filters_are_refused_with_the_venue_code(double: ExchangeDouble, case: str) -> None:
    ex = client(double)
    ex.markets[SYMBOL]["precision"].update(amount=1e-8, price=1e-8)  # stale market info lets a bad value through
    kind, amount, price = ORDERS[case]
    expected = FILTERS[case][double.venue.name]
    if expected is None:
        assert ex.create_order(SYMBOL, kind, "buy", amount, price)["id"]
        return
    with pytest.raises(ccxt.BaseError) as caught:
        ex.create_order(SYMBOL, kind, "buy", amount, price, {"clientOrderId": "filter1"})
    assert type(caught.value) is expected[0] and expected[1] in str(caught.value)
    assert double.orders == []


def test_insufficient_balance(double: ExchangeDouble) -> None:
    ex = client(double)
    with pytest.raises(ccxt.InsufficientFunds) as caught:
        market_buy(ex, 200, "poor1")
    # ccxt's binance matches the message exactly and drops the body (-2010) from the exception text
    expected = {"binance": "insufficient balance", "okx": "51008", "bybit": "170131"}[double.venue.name]
    assert expected in str(caught.value)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYMBOL, "market", "sell", 1)


CLIENT_IDS = {  # venue -> (refused ids, accepted id, ccxt class and code of a refused id)
    "binance": (["has space", "x" * 37, "semi;colon"], "A.b:c/d_e-f", (ccxt.BadRequest, "-1100")),
    "okx": (["with-dash", "with_underscore", "x" * 33], "abcXYZ123", (ccxt.BadRequest, "51000")),
    "bybit": (["x" * 37, "has space", "dot.dot"], "ab-c_1", (ccxt.BadRequest, "170130")),
}
DUPLICATES = {
    "binance": (ccxt.InvalidOrder, "Duplicate order sent"),
    "okx": (ccxt.InvalidOrder, "51016"),
    "bybit": (ccxt.InvalidOrder, "170141"),
}


def test_client_order_id_rules(double: ExchangeDouble) -> None:
    ex = client(double)
    refused, accepted, (cls, code) = CLIENT_IDS[double.venue.name]
    for cid in refused:
        with pytest.raises(ccxt.BaseError) as caught:
            ex.create_order(SYMBOL, "limit", "buy", 0.1, 50, {"clientOrderId": cid})
        assert type(caught.value) is cls and code in str(caught.value), cid
    ex.create_order(SYMBOL, "limit", "buy", 0.1, 50, {"clientOrderId": accepted})
    cls, code = DUPLICATES[double.venue.name]
    with pytest.raises(ccxt.BaseError) as dup:  # a duplicate of an open order
        ex.create_order(SYMBOL, "limit", "buy", 0.1, 50, {"clientOrderId": accepted})
    assert type(dup.value) is cls and code in str(dup.value)
    market_buy(ex, 0.1, "reuse1")
    if double.venue.name == "bybit":  # orderLinkId is unique per account, closed orders included
        with pytest.raises(ccxt.InvalidOrder, match="170141"):
            market_buy(ex, 0.1, "reuse1")
    else:  # Binance, OKX: unique among open orders only; reusing a filled order's id books a second order
        market_buy(ex, 0.1, "reuse1")
        assert len([o for o in double.orders if o.client_order_id == "reuse1"]) == 2


# ------------------------------------------------------------------------------------ transport faults


RATE = {  # venue -> (first refusal, escalated refusal) as (HTTP status, ccxt class)
    "binance": ((429, ccxt.DDoSProtection), (418, ccxt.DDoSProtection)),  # Binance handle_errors: both DDoS
    "okx": ((429, ccxt.RateLimitExceeded), (429, ccxt.RateLimitExceeded)),  # code 50011
    "bybit": ((200, ccxt.RateLimitExceeded), (403, ccxt.RateLimitExceeded)),  # retCode 10006, then the IP ban
}


def test_rate_limit_answers_and_retry_after(double: ExchangeDouble) -> None:
    ex = client(double)
    double.behaviour.rate_limit, double.behaviour.ban_after, double.behaviour.rate_window_s = 2, 1, 30.0
    ex.fetch_ticker(SYMBOL)
    ex.fetch_ticker(SYMBOL)
    for status, cls in RATE[double.venue.name]:
        with pytest.raises(ccxt.BaseError) as caught:
            ex.fetch_ticker(SYMBOL)
        assert type(caught.value) is cls
        headers = ex.last_response_headers
        assert ("Retry-After" in headers) is (double.venue.name == "binance")  # documented by Binance only
        if double.venue.name == "binance":
            assert headers["Retry-After"] == "2"
        if double.venue.name == "bybit" and status == 200:
            assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > double.server_ms()
    double.behaviour.retry_after_header = True  # a test may ask for the header on any venue
    with pytest.raises(ccxt.BaseError):
        ex.fetch_ticker(SYMBOL)
    assert ex.last_response_headers["Retry-After"] == "2"


def test_5xx_after_the_order_was_booked_leaves_exactly_one_order(double: ExchangeDouble) -> None:
    ex = client(double)
    double.behaviour.ambiguous_creates = 1
    with pytest.raises(ccxt.ExchangeNotAvailable):
        market_buy(ex, 0.1, "amb1")
    assert len([o for o in double.orders if o.client_order_id == "amb1"]) == 1
    assert fetch_by_client_id(ex, "amb1")["status"] == "closed"  # look up before resending
    assert len(double.orders) == 1


def test_create_that_times_out_after_booking() -> None:
    d = venue_double("okx")
    try:
        ex = client(d, timeout_ms=500)
        d.behaviour.ambiguous_creates, d.behaviour.ambiguous_hang_s = 1, 0.8
        with pytest.raises(ccxt.RequestTimeout):
            market_buy(ex, 0.1, "hang1")
        assert [o.client_order_id for o in d.orders] == ["hang1"]
        d.inject("POST", "/api/v5/trade/batch-orders", 500, hang=0.8)  # the old fake's API: booked, then late
        with pytest.raises(ccxt.RequestTimeout):
            market_buy(ex, 0.1, "hang2")
        assert [o.client_order_id for o in d.orders] == ["hang1", "hang2"]
    finally:
        d.stop()


def test_inject_answers_with_the_given_status_body_and_headers(double: ExchangeDouble) -> None:
    ex = client(double)
    path = {"binance": "/api/v3/ticker/24hr", "okx": "/api/v5/market/ticker", "bybit": "/v5/market/tickers"}
    double.inject("GET", path[double.venue.name], 503, None, times=2, headers={"Retry-After": "7"})
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            ex.fetch_ticker(SYMBOL)
        assert ex.last_response_headers["Retry-After"] == "7"
    assert ex.fetch_ticker(SYMBOL)["last"] == 100


SKEW = {"binance": "-1021", "okx": "50102", "bybit": "10002"}


def test_timestamp_outside_the_receive_window(double: ExchangeDouble) -> None:
    ex = client(double)
    double.behaviour.clock_offset_ms = 60_000  # the venue's clock is a minute ahead of ours
    with pytest.raises(ccxt.InvalidNonce) as caught:
        ex.fetch_balance()
    assert SKEW[double.venue.name] in str(caught.value)
    ex.load_time_difference()  # ccxt's remedy: measure the offset with fetch_time and shift its nonce
    assert ex.fetch_balance()["USDT"]["free"] == 10_000


MAINTENANCE = {"binance": ccxt.OnMaintenance, "okx": ccxt.OnMaintenance, "bybit": ccxt.ExchangeNotAvailable}


def test_maintenance(double: ExchangeDouble) -> None:
    ex = client(double)
    double.behaviour.maintenance = True
    with pytest.raises(ccxt.BaseError) as caught:
        ex.fetch_ticker(SYMBOL)
    assert type(caught.value) is MAINTENANCE[double.venue.name]
    double.behaviour.maintenance = False
    assert ex.fetch_ticker(SYMBOL)["last"] == 100


def test_bybit_system_error_code_is_a_plain_exchange_error() -> None:
    d = venue_double("bybit")
    try:
        ex = client(d)
        d.inject(
            "GET",
            "/v5/market/tickers",
            200,
            {"retCode": 10016, "retMsg": "Internal server error.", "result": {}, "retExtInfo": {}, "time": 1},
        )
        with pytest.raises(ccxt.ExchangeError) as caught:
            ex.fetch_ticker(SYMBOL)
        assert type(caught.value) is ccxt.ExchangeError  # not a NetworkError: the runtime classes it unknown
    finally:
        d.stop()


def test_invalid_api_key(double: ExchangeDouble) -> None:
    double.behaviour.rejected_keys.add("revoked")
    with pytest.raises(ccxt.AuthenticationError) as caught:
        client(double, "revoked").fetch_balance()
    assert {"binance": "-2015", "okx": "50111", "bybit": "10003"}[double.venue.name] in str(caught.value)


def test_binance_invalid_key_after_a_success_reads_as_ddos_protection() -> None:
    d = venue_double("binance")
    try:
        ex = client(d, "soon-revoked")
        ex.fetch_balance()
        d.behaviour.rejected_keys.add("soon-revoked")
        with pytest.raises(ccxt.DDoSProtection, match="-2015"):  # ccxt: a temporary ban, not a bad key
            ex.fetch_balance()
    finally:
        d.stop()


# -------------------------------------------------------------------------------- resting stop orders


def test_binance_stop_loss_limit_triggers_and_can_be_fetched_and_cancelled() -> None:
    d = venue_double("binance")
    try:
        ex = client(d)
        market_buy(ex, 0.3, "entry")
        stop = ex.create_order(SYMBOL, "limit", "sell", 0.1, 94, {"stopLossPrice": 95, "clientOrderId": "sl1"})
        assert d.request_log[-1][2]["type"] == "STOP_LOSS_LIMIT" and d.request_log[-1][2]["stopPrice"] == "95"
        (resting,) = ex.fetch_open_orders(SYMBOL)
        assert resting["id"] == stop["id"] and resting["triggerPrice"] == 95 and resting["price"] == 94
        assert ex.fetch_balance()["BTC"]["used"] == pytest.approx(0.1)  # locked while it rests
        other = ex.create_order(SYMBOL, "limit", "sell", 0.1, 89, {"stopLossPrice": 90, "clientOrderId": "sl2"})
        assert ex.cancel_order(other["id"], SYMBOL)["status"] == "canceled"
        with pytest.raises(ccxt.OrderImmediatelyFillable):  # -2010 "Stop price would trigger immediately."
            ex.create_order(SYMBOL, "limit", "sell", 0.1, 100, {"stopLossPrice": 101})
        d.price_fn = lambda open_ms: 94.5  # the market falls through the stop, not through the limit
        done = fetch_by_client_id(ex, "sl1")
        assert done["status"] == "closed" and done["filled"] == 0.1 and done["average"] == 94.5
        assert d.order(stop["id"]).fills[0].price == 94.5
    finally:
        d.stop()


def test_okx_conditional_stop_triggers_and_can_be_fetched_and_cancelled() -> None:
    d = venue_double("okx")
    try:
        ex = client(d)
        market_buy(ex, 0.3, "entry")
        params = {"stopLossPrice": 95, "tdMode": "cash", "clientOrderId": "sl1"}
        stop = ex.create_order(SYMBOL, "limit", "sell", 0.1, 94, params)
        assert d.requests["POST /api/v5/trade/order-algo"] == 1
        sent = d.request_log[-1][2]
        assert (sent["ordType"], sent["slTriggerPx"], sent["slOrdPx"], sent["tdMode"]) == (
            "conditional",
            "95",
            "94",
            "cash",
        )
        assert ex.fetch_open_orders(SYMBOL, params={"trigger": True}) == []  # ccxt asks ordType=trigger, not ours
        (resting,) = ex.fetch_open_orders(SYMBOL, params={"ordType": "conditional"})
        assert resting["id"] == stop["id"] and resting["stopLossPrice"] == 95
        assert ex.fetch_order(None, SYMBOL, {"trigger": True, "clientOrderId": "sl1"})["status"] == "open"
        other = ex.create_order(SYMBOL, "limit", "sell", 0.1, 89, {"stopLossPrice": 90, "clientOrderId": "sl2"})
        assert d.order(other["id"]).extra["tdMode"] == "cross"  # ccxt's default for a conditional spot order
        ex.cancel_order(other["id"], SYMBOL, {"trigger": True})
        assert d.order(other["id"]).status == "CANCELED"
        d.price_fn = lambda open_ms: 94.5
        done = ex.fetch_order(stop["id"], SYMBOL, {"trigger": True})
        assert done["status"] == "closed"  # the algo is "effective": it placed a limit order at 94
        child = d.order(d.order(stop["id"]).child_id)
        assert child.status == "FILLED" and child.price == 94 and child.fills[0].price == 94.5
        assert fetch_by_id(ex, child.order_id)["filled"] == 0.1
        with pytest.raises(ccxt.BadRequest):  # without trigger=True ccxt sends the algo history state=filled
            ex.fetch_closed_orders(SYMBOL, params={"ordType": "conditional"})
        (history,) = ex.fetch_closed_orders(SYMBOL, params={"trigger": True, "ordType": "conditional"})
        assert history["id"] == stop["id"] and d.request_log[-1][2]["state"] == "effective"
    finally:
        d.stop()


def test_bybit_spot_stop_orders_are_refused() -> None:
    d = venue_double("bybit")
    try:
        ex = client(d)
        market_buy(ex, 0.3, "entry")
        for params in ({"stopLossPrice": 95}, {"triggerPrice": 95}):
            with pytest.raises(ccxt.BadRequest, match="not modelled"):
                ex.create_order(SYMBOL, "limit", "sell", 0.1, 94, params)
        assert [o.client_order_id for o in d.orders] == ["entry"]
    finally:
        d.stop()


# ------------------------------------------------------------------------------ quote-sized buys


def test_market_buy_by_cost(double: ExchangeDouble) -> None:
    ex = client(double)
    order = ex.create_market_buy_order_with_cost(SYMBOL, 50)
    truth = double.order(order["id"])
    assert truth.quote_qty == 50 and truth.qty == 0.5  # as much base as 50 USDT buy at 100, on the lot step
    sent = double.request_log[-1][2]
    assert {"binance": "quoteOrderQty", "okx": "tgtCcy", "bybit": "qty"}[double.venue.name] in sent
    assert fetch_by_id(ex, order["id"])["filled"] == 0.5


# ------------------------------------------------------------------------------------ truth accessors


def test_place_fill_resting_and_two_markets_on_one_key(double: ExchangeDouble) -> None:
    ex = client(double)
    away = double.place(symbol="BTC/EUR", side="buy", type=LIMIT, qty=0.2, price=90.0, client_order_id="away1")
    assert away.status == "NEW" and double.account().locked["EUR"] == pytest.approx(18.0 * 1.0)
    market_buy(ex, 0.1, "usdt1")
    double.fill_resting(away.order_id)
    assert away.status == "FILLED" and away.fills[0].maker and away.fills[0].price == 90.0
    assert double.balances["EUR"] == pytest.approx(10_000 - 18.0)
    assert double.balances["BTC"] == pytest.approx((0.1 + 0.2) * 0.999)
    assert fetch_by_client_id(ex, "away1", "BTC/EUR")["filled"] == 0.2
    assert [t["symbol"] for t in ex.fetch_my_trades("BTC/EUR")] == ["BTC/EUR"]
    assert {o.type for o in double.orders} <= {LIMIT, "market", CONDITIONAL}


def test_resting_limit_fills_when_the_price_crosses(double: ExchangeDouble) -> None:
    ex = client(double)
    order = ex.create_order(SYMBOL, "limit", "buy", 0.1, 95, {"clientOrderId": "dip1"})
    assert fetch_by_id(ex, order["id"])["status"] == "open"
    t0 = double.now_ms()
    double.price_fn = lambda t: 94.0 if t0 + 200 <= t < t0 + 400 else 100.0  # a dip between two polls
    time.sleep(0.5)
    done = fetch_by_id(ex, order["id"])
    assert done["status"] == "closed" and done["average"] == 95  # a maker fill at the limit price
    assert double.order(order["id"]).fills[0].maker


def test_fake_exchange_keeps_the_old_idealised_defaults() -> None:
    fake = FakeExchange().start()
    try:
        ex = build_exchange("binance", credentials=Credentials("k", "s"), api_url=fake.url)
        order = ex.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "old1"})
        assert order["fee"]["cost"] == 0 and fake.balances["BTC"] == pytest.approx(0.01)  # no fee, no NOTIONAL
        away = fake.place(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "2", "newClientOrderId": "old2"}
        )
        assert away.order_id and fake.filled_orders("old2")[0] is away
        fake.balances["USDT"] = 5.0
        assert ex.fetch_balance()["USDT"]["free"] == 5.0
    finally:
        fake.stop()
