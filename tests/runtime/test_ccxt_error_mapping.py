"""The error-mapping table of docs/research/backtrader-ccxt.md §3.3, against real ccxt and the loopback exchange.

It pins how ccxt classes each failure (an upgrade that moves a class fails here) and how our
policy treats it (transient / fatal / order-level / unknown).
"""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from bot_runtime.exchange import Credentials, ErrorKind, build_exchange, classify
from tests.support.fake_exchange import FakeExchange

CASES = [
    # (id, status, body, hang, ccxt class, our kind)
    ("429", 429, None, 0.0, ccxt.DDoSProtection, ErrorKind.transient),
    ("418", 418, None, 0.0, ccxt.DDoSProtection, ErrorKind.transient),
    ("500-empty", 500, None, 0.0, ccxt.ExchangeNotAvailable, ErrorKind.transient),
    ("502-html", 502, b"<html>bad gateway</html>", 0.0, ccxt.ExchangeNotAvailable, ErrorKind.transient),
    ("503", 503, None, 0.0, ccxt.ExchangeNotAvailable, ErrorKind.transient),
    ("timeout", 200, None, 3.0, ccxt.RequestTimeout, ErrorKind.transient),
    (
        "-1021-recvwindow",
        400,
        {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
        0.0,
        ccxt.InvalidNonce,
        ErrorKind.transient,
    ),
    (
        "-1001-internal",
        500,
        {"code": -1001, "msg": "Internal error; unable to process your request."},
        0.0,
        ccxt.OperationFailed,
        ErrorKind.transient,
    ),
    ("-1-on-500", 500, {"code": -1, "msg": "An unknown error occurred."}, 0.0, ccxt.ExchangeError, ErrorKind.unknown),
    ("400-empty-object", 400, {}, 0.0, ccxt.ExchangeNotAvailable, ErrorKind.transient),
    ("403-waf", 403, b"<html>forbidden</html>", 0.0, ccxt.ExchangeNotAvailable, ErrorKind.transient),
    ("404", 404, None, 0.0, ccxt.ExchangeNotAvailable, ErrorKind.transient),
    (
        "-1013-lot-size",
        400,
        {"code": -1013, "msg": "Filter failure: LOT_SIZE"},
        0.0,
        ccxt.InvalidOrder,
        ErrorKind.order,
    ),
    (
        "-2010-balance",
        400,
        {"code": -2010, "msg": "Account has insufficient balance for requested action."},
        0.0,
        ccxt.InsufficientFunds,
        ErrorKind.order,
    ),
    ("-2010-duplicate", 400, {"code": -2010, "msg": "Duplicate order sent."}, 0.0, ccxt.InvalidOrder, ErrorKind.order),
    (
        "-2015-auth",
        401,
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
        0.0,
        ccxt.AuthenticationError,
        ErrorKind.fatal,
    ),
    ("-1121-symbol", 400, {"code": -1121, "msg": "Invalid symbol."}, 0.0, ccxt.BadSymbol, ErrorKind.fatal),
    ("-9999-unknown", 400, {"code": -9999, "msg": "Something new."}, 0.0, ccxt.ExchangeError, ErrorKind.unknown),
]


@pytest.mark.parametrize(
    ("status", "body", "hang", "expected", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_order_error_mapping(
    fake_exchange: FakeExchange, status: int, body: Any, hang: float, expected: type[Exception], kind: ErrorKind
) -> None:
    exchange = build_exchange(
        "binance", credentials=Credentials("key", "secret"), api_url=fake_exchange.url, timeout_ms=1500
    )
    exchange.load_markets()
    fake_exchange.inject("POST", "/api/v3/order", status, body, hang=hang)
    with pytest.raises(ccxt.BaseError) as caught:
        exchange.create_order("BTC/USDT", "market", "buy", 0.01, params={"clientOrderId": "map-1"})
    assert type(caught.value) is expected, type(caught.value).__mro__
    assert classify(caught.value) is kind


def test_connection_refused_is_transient() -> None:
    exchange = build_exchange("binance", api_url="http://127.0.0.1:9", timeout_ms=1000)
    with pytest.raises(ccxt.NetworkError) as caught:
        exchange.fetch_ohlcv("BTC/USDT", "1m", limit=3)
    assert classify(caught.value) is ErrorKind.transient


def test_market_data_and_orders_round_trip(fake_exchange: FakeExchange) -> None:
    exchange = build_exchange("binance", credentials=Credentials("key", "secret"), api_url=fake_exchange.url)
    candles = exchange.fetch_ohlcv("BTC/USDT", "1s", limit=5)
    assert len(candles) == 5 and all(len(c) == 6 and c[4] > 0 for c in candles)
    order = exchange.create_order("BTC/USDT", "market", "buy", 0.0123456, params={"clientOrderId": "rt-1"})
    assert order["clientOrderId"] == "rt-1" and order["status"] == "closed"
    assert order["amount"] == pytest.approx(0.01234)  # LOT_SIZE step 0.00001, truncated
    found = exchange.fetch_order(None, "BTC/USDT", {"origClientOrderId": "rt-1"})
    assert found["id"] == order["id"]
    assert exchange.fetch_balance()["BTC"]["free"] == pytest.approx(0.01234)
    assert ("POST", "/api/v3/order") in {(m, p) for m, p, _ in fake_exchange.request_log}


def test_binances_refused_key_is_told_from_a_rate_limit() -> None:
    """ccxt raises Binance's -2015 as DDoSProtection once a key has worked; on an order it is a revoked key."""
    from bot_runtime.exchange import key_refused

    body = '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'
    assert key_refused(ccxt.DDoSProtection(f"binance {body}"))
    assert key_refused(ccxt.DDoSProtection('binance {"code": -2015, "msg": "..."}'))
    assert not key_refused(ccxt.DDoSProtection('binance {"code":-1003,"msg":"Way too many requests"}'))
    assert not key_refused(ccxt.DDoSProtection('binance {"code":-20150}'))
    assert not key_refused(ccxt.RateLimitExceeded(f"binance {body}"))
