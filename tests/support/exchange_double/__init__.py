"""A venue-faithful exchange double: Binance spot, OKX v5 and Bybit v5 REST on a loopback port.

The real ccxt client talks to it (URLs rewritten by `bot_runtime.exchange.build_exchange(api_url=...)`),
it keeps the truth (balances, orders, fills) and can switch on real-venue behaviours per test. See
SOURCES.md for what it reproduces, from which source, and what it does not.

    double = ExchangeDouble("okx").start()
    double.behaviour.not_found_s = 2.0
    ...
    double.stop()
"""

from tests.support.exchange_double.core import (
    CONDITIONAL,
    DEFAULT_KEY,
    DEFAULT_MARKETS,
    INTERVALS_MS,
    LIMIT,
    MARKET,
    STOP_LIMIT,
    STOP_MARKET,
    Account,
    Behaviour,
    Fill,
    Market,
    Order,
    Refused,
    default_price,
)
from tests.support.exchange_double.server import ExchangeDouble, Fault

__all__ = [
    "CONDITIONAL",
    "DEFAULT_KEY",
    "DEFAULT_MARKETS",
    "INTERVALS_MS",
    "LIMIT",
    "MARKET",
    "STOP_LIMIT",
    "STOP_MARKET",
    "Account",
    "Behaviour",
    "ExchangeDouble",
    "Fault",
    "Fill",
    "Market",
    "Order",
    "Refused",
    "default_price",
]
