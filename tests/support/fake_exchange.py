"""Today's Binance double, kept for its users: `FakeExchange()` is `ExchangeDouble("binance")` with the
idealised defaults the existing tests were written against.

Those defaults differ from the real venue (and from `ExchangeDouble`'s): no commission, no exchange
filters enforced (LOT_SIZE/NOTIONAL are published but not checked; every pair has today's step and
minimum of 0.00001), no recvWindow check, and orders answer lookups at once. Everything else (routes,
shapes, error codes, `inject`, `place`, `balances`, `price_fn`, `request_log`, `requests`,
`fill_resting`) is the shared double's; see tests/support/exchange_double/SOURCES.md.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.support.exchange_double import Behaviour, ExchangeDouble, Fault, Market, Order, Refused, default_price
from tests.support.exchange_double.core import INTERVALS_MS

ExchangeReject = Refused  # the old name of a refusal raised by `place`

__all__ = ["INTERVALS_MS", "MARKETS", "ExchangeReject", "FakeExchange", "Fault", "Order", "default_price"]


# today's markets: every pair with step = min qty = 0.00001, max 9000, min notional 5, tick 0.01
MARKETS = (Market("BTC/USDT", "BTC", "USDT"), Market("ETH/USDT", "ETH", "USDT"), Market("BTC/EUR", "BTC", "EUR"))


def idealised() -> Behaviour:
    return Behaviour(fee_rate=0.0, maker_fee_rate=0.0, enforce_filters=False, check_timestamps=False)


class FakeExchange(ExchangeDouble):
    def __init__(
        self,
        speed: float = 1.0,
        price_fn: Callable[[int], float] = default_price,
        balances: dict[str, float] | None = None,
    ) -> None:
        super().__init__(
            "binance",
            speed=speed,
            price_fn=price_fn,
            balances={"USDT": 10_000.0, "BTC": 0.0} if balances is None else balances,
            markets=MARKETS,
            behaviour=idealised(),
        )
