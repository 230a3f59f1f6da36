"""The venue-independent truth of the exchange double: markets, accounts, orders, fills and prices.

Venue adapters (binance.py, okx.py, bybit.py) translate HTTP requests into calls on `Truth` and
translate its `Refused` reasons into each venue's own error answers. Nothing here knows a venue.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

INTERVALS_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
DEFAULT_KEY = "*"  # the account every API key uses unless a test registers one for it
OPEN = ("NEW", "PARTIALLY_FILLED")
# order types of the truth; venues name them differently
MARKET, LIMIT, STOP_LIMIT, STOP_MARKET, CONDITIONAL = "market", "limit", "stop_loss_limit", "stop_loss", "conditional"


def default_price(open_ms: int) -> float:
    """A smooth, deterministic series with crosses every few minutes of 1s bars."""
    t = open_ms / 1000.0
    return round(100.0 + 6.0 * math.sin(t / 20.0) + 2.0 * math.sin(t / 3.0), 2)


def num(value: float | Decimal | str, places: int | None = None) -> str:
    """A plain decimal string (no exponent), as venues send numbers; fixed places when given."""
    d = Decimal(str(value))
    if places is not None:
        return f"{d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN):f}"
    text = f"{d.normalize():f}"
    return "0" if text in ("-0", "") else text


def floor_step(value: float, step: str) -> float:
    s = Decimal(step)
    return float((Decimal(str(round(value, 12))) / s).to_integral_value(rounding=ROUND_DOWN) * s)


@dataclass(frozen=True)
class Market:
    """One spot market. Filter values are strings, as venues publish them, so checks are exact."""

    symbol: str  # unified, "BTC/USDT"
    base: str
    quote: str
    lot_step: str = "0.00001"
    min_qty: str = "0.00001"
    max_qty: str = "9000"
    min_notional: str = "5"
    tick: str = "0.01"

    def venue_id(self, sep: str = "") -> str:
        return f"{self.base}{sep}{self.quote}"


DEFAULT_MARKETS = (
    Market("BTC/USDT", "BTC", "USDT", min_qty="0.0001"),  # a minimum above the step, as venues have
    Market("ETH/USDT", "ETH", "USDT", lot_step="0.0001", min_qty="0.0001"),
    Market("BTC/EUR", "BTC", "EUR"),
)


@dataclass
class Behaviour:
    """Real-venue behaviours a test can switch on; each is documented with its source in SOURCES.md.

    `ExchangeDouble(venue=...)` starts from the venue's real defaults; `FakeExchange()` from today's
    idealised ones (no fee, no filters, no timestamp check).
    """

    fee_rate: float = 0.001  # taker (market orders, marketable limits, triggered stops)
    maker_fee_rate: float = 0.001  # resting limit orders that the market reached
    fee_asset: str = "received"  # "received" (base on buys, quote on sells) | "quote" | "third"
    third_fee_asset: str = "BNB"  # fee_asset="third": charged in this asset (Binance BNB payment)
    third_fee_price: float = 250.0  # quote per unit of the third asset, to convert the fee
    enforce_filters: bool = True  # lot step, min/max qty, min notional, price tick
    not_found_s: float = 0.0  # a new order reads "not found" on every lookup path for this long
    partial_fills: int = 1  # an executing order fills in this many parts: one now, one per lookup or tick()
    rate_limit: int | None = None  # answer the venue's rate-limit error above this many requests...
    rate_window_s: float = 1.0  # ...within this window
    ban_after: int = 3  # this many rate-limited answers in the window escalate (Binance 418, Bybit 403)
    retry_after_s: int = 2
    retry_after_header: bool | None = None  # None: as the venue documents it (Binance only)
    ambiguous_creates: int = 0  # the next N order creations are booked, then answered with...
    ambiguous_status: int = 502  # ...this status (and no body)...
    ambiguous_hang_s: float = 0.0  # ...after this long (longer than the client timeout: a timeout)
    clock_offset_ms: int = 0  # the venue's clock minus the wall clock (clock skew)
    check_timestamps: bool = True  # enforce recvWindow / OKX's 30 s / Bybit's recv window
    maintenance: bool = False
    rejected_keys: set[str] = field(default_factory=set)  # API keys the venue refuses (auth failure)
    missing_candles: tuple[tuple[int, int], ...] = ()  # [first, last] open times (ms) the venue has no candle for


@dataclass
class Fill:
    trade_id: str
    order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    price: float
    qty: float
    fee: float
    fee_asset: str
    time_ms: int
    maker: bool
    account: str = DEFAULT_KEY

    @property
    def quote_qty(self) -> float:
        return self.price * self.qty


@dataclass
class Order:
    order_id: str
    client_order_id: str
    symbol: str  # unified
    side: str  # "buy" | "sell"
    type: str  # MARKET | LIMIT | STOP_LIMIT | STOP_MARKET | CONDITIONAL
    qty: float  # base quantity (for a quote-sized market buy: what the quote amount bought)
    price: float | None = None  # limit price (None: market)
    trigger_price: float | None = None
    status: str = "NEW"  # NEW PARTIALLY_FILLED FILLED CANCELED EXPIRED | algo: TRIGGERED FAILED
    executed: float = 0.0
    quote: float = 0.0  # cumulative quote of the fills
    fills: list[Fill] = field(default_factory=list)
    time_ms: int = 0
    update_ms: int = 0
    account: str = DEFAULT_KEY
    quote_qty: float | None = None  # a market buy sized in quote (Binance quoteOrderQty, OKX, Bybit)
    triggered: bool = False
    parent_id: str | None = None  # an OKX algo's child order points to the algo
    child_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # venue request fields echoed back (tdMode, ...)
    hidden_until: float = 0.0  # time.monotonic() before which lookups answer "not found"
    locked: float = 0.0  # still locked for this order, in lock_asset
    lock_asset: str = ""
    parts: list[float] = field(default_factory=list)  # partial fills still to come
    exec_price: float | None = None  # None: execute at the last price; else at this (maker) price
    maker: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def average(self) -> float:
        return self.quote / self.executed if self.executed else 0.0

    @property
    def fee_by_asset(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for f in self.fills:
            out[f.fee_asset] = out.get(f.fee_asset, 0.0) + f.fee
        return out


@dataclass
class Account:
    api_key: str
    free: dict[str, float] = field(default_factory=dict)
    locked: dict[str, float] = field(default_factory=dict)

    def total(self, asset: str) -> float:
        return self.free.get(asset, 0.0) + self.locked.get(asset, 0.0)

    def assets(self) -> list[str]:
        return sorted(set(self.free) | set(self.locked))

    def add(self, asset: str, amount: float, book: str = "free") -> None:
        table = self.free if book == "free" else self.locked
        table[asset] = round(table.get(asset, 0.0) + amount, 12)


class Refused(Exception):
    """The venue refuses a request; adapters answer it with the venue's own code.

    Reasons: tick, lot_step, min_qty, max_qty, min_notional, balance, client_id, duplicate_client_id,
    would_trigger, unsupported, unknown_symbol, not_found, not_cancelable.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class FreeBalances(MutableMapping[str, float]):
    """`double.balances`: the default account's free balances, readable and assignable (today's API)."""

    def __init__(self, truth: Truth) -> None:
        self._truth = truth

    def _free(self) -> dict[str, float]:
        return self._truth.account().free

    def __getitem__(self, asset: str) -> float:
        return self._free().get(asset, 0.0)

    def __setitem__(self, asset: str, value: float) -> None:
        with self._truth.lock:
            self._free()[asset] = float(value)

    def __delitem__(self, asset: str) -> None:
        del self._free()[asset]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._free()))

    def __len__(self) -> int:
        return len(self._free())

    def __repr__(self) -> str:
        return repr(dict(self._free()))


class Truth:
    """What the venue holds. All mutation happens under `lock`; adapters take it per request."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        price_fn: Callable[[int], float] = default_price,
        balances: dict[str, float] | None = None,
        markets: tuple[Market, ...] = DEFAULT_MARKETS,
        behaviour: Behaviour | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.speed = speed
        self.price_fn = price_fn
        self.price_fns: dict[str, Callable[[int], float]] = {}  # per-symbol overrides of price_fn
        self.behaviour = behaviour or Behaviour()
        self.markets = {m.symbol: m for m in markets}
        start = {"USDT": 10_000.0, "EUR": 10_000.0, "BTC": 0.0, "ETH": 0.0} if balances is None else balances
        self.accounts: dict[str, Account] = {DEFAULT_KEY: Account(DEFAULT_KEY, dict(start))}
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self._order_seq = itertools.count(1000)
        self._trade_seq = itertools.count(5000)
        self.id_format: Callable[[int], str] = str  # venues set their own id shapes
        self.trade_id_format: Callable[[int], str] = str
        self._t0_real = time.time()
        self._checked_ms: dict[str, int] = {}

    # ------------------------------------------------------------------------------------- clocks

    def now_ms(self) -> int:
        """The market clock: candles, order and fill times. Runs `speed` times faster than the wall."""
        real = time.time()
        return int((self._t0_real + (real - self._t0_real) * self.speed) * 1000)

    def server_ms(self) -> int:
        """The venue's wall clock, which request timestamps are checked against (skew: clock_offset_ms)."""
        return int(time.time() * 1000) + self.behaviour.clock_offset_ms

    # -------------------------------------------------------------------------------------- prices

    def price_at(self, symbol: str, t_ms: int) -> float:
        return self.price_fns.get(symbol, self.price_fn)(t_ms)

    def last_price(self, symbol: str = "BTC/USDT") -> float:
        return self.price_at(symbol, self.now_ms())

    def candle(self, symbol: str, open_ms: int, step: int, now: int) -> list[Any]:
        """[open_ms, o, h, l, c, base volume]; the forming candle closes at the price now."""
        o = self.price_at(symbol, open_ms)
        c = self.price_at(symbol, min(open_ms + step, now))
        hi, lo = max(o, c) + 0.05, min(o, c) - 0.05
        return [open_ms, o, round(hi, 2), round(lo, 2), c, 1.5]

    def candle_opens(self, step: int, start: int | None, end: int | None, limit: int, forward: bool) -> list[int]:
        """Open times of at most `limit` candles within [start, end], the forming one included: the first
        ones from `start` when `forward`, else the latest ones."""
        now = self.now_ms()
        stop = now - now % step if end is None else min(now - now % step, end - end % step)
        first = None if start is None else start + -start % step
        if forward and first is not None:
            stop = min(stop, first + (limit - 1) * step)
        else:
            first = max(first if first is not None else 0, stop - (limit - 1) * step)
        opens = range(first, stop + 1, step) if first <= stop else range(0)
        missing = self.behaviour.missing_candles
        return [t for t in opens if not any(a <= t <= b for a, b in missing)]

    # ------------------------------------------------------------------------------------ accounts

    def account(self, api_key: str | None = None) -> Account:
        return self.accounts.get(api_key or DEFAULT_KEY) or self.accounts[DEFAULT_KEY]

    def account_key(self, api_key: str | None) -> str:
        return api_key if api_key in self.accounts else DEFAULT_KEY

    def add_account(self, api_key: str, balances: dict[str, float] | None = None) -> Account:
        with self.lock:
            self.accounts[api_key] = Account(api_key, dict(balances or {}))
            return self.accounts[api_key]

    @property
    def balances(self) -> FreeBalances:
        return FreeBalances(self)

    @balances.setter
    def balances(self, value: dict[str, float]) -> None:
        with self.lock:
            self.account().free = {k: float(v) for k, v in value.items()}

    # -------------------------------------------------------------------------------------- lookups

    def market(self, symbol: str) -> Market:
        if symbol not in self.markets:
            raise Refused("unknown_symbol", symbol)
        return self.markets[symbol]

    def market_by_id(self, venue_id: str, sep: str = "") -> Market:
        for m in self.markets.values():
            if m.venue_id(sep) == venue_id:
                return m
        raise Refused("unknown_symbol", venue_id)

    @staticmethod
    def visible(order: Order) -> bool:
        return time.monotonic() >= order.hidden_until

    def lookup(
        self,
        account: str,
        *,
        symbol: str | None = None,
        order_id: str | None = None,
        client_order_id: str | None = None,
        algo: bool | None = None,
    ) -> Order:
        """One order by id or client id, as a venue finds it (hidden during the not-found window)."""
        for o in reversed(self.orders):
            if o.account != account or (symbol and o.symbol != symbol) or not self.visible(o):
                continue
            if algo is not None and (o.type == CONDITIONAL) != algo:
                continue
            if (order_id and o.order_id == order_id) or (client_order_id and o.client_order_id == client_order_id):
                self.observe(o)
                return o
        raise Refused("not_found", order_id or client_order_id or "")

    def listed(
        self,
        account: str,
        *,
        symbol: str | None = None,
        open_only: bool | None = None,
        algo: bool | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[Order]:
        """Orders a list endpoint shows (hidden ones left out), oldest first; each read advances partial fills."""
        out = []
        for o in self.orders:
            if o.account != account or (symbol and o.symbol != symbol) or not self.visible(o):
                continue
            if algo is not None and (o.type == CONDITIONAL) != algo:
                continue
            if (since_ms is not None and o.time_ms < since_ms) or (until_ms is not None and o.time_ms > until_ms):
                continue
            self.observe(o)
            if open_only is not None and o.is_open != open_only:
                continue
            out.append(o)
        return out

    def trades(
        self,
        account: str,
        *,
        symbol: str | None = None,
        order_id: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[Fill]:
        hidden = {o.order_id for o in self.orders if not self.visible(o)}
        return [
            f
            for f in self.fills
            if f.account == account
            and f.order_id not in hidden
            and (symbol is None or f.symbol == symbol)
            and (order_id is None or f.order_id == order_id)
            and (since_ms is None or f.time_ms >= since_ms)
            and (until_ms is None or f.time_ms <= until_ms)
        ]

    def order(self, order_id: Any) -> Order:
        return next(o for o in self.orders if o.order_id == str(order_id))

    def filled_orders(self, client_order_id: str | None = None) -> list[Order]:
        with self.lock:
            return [
                o
                for o in self.orders
                if o.status == "FILLED" and (client_order_id is None or o.client_order_id == client_order_id)
            ]

    # ------------------------------------------------------------------------------------- creating

    def check_filters(
        self, market: Market, qty: float | None, price: float | None, notional_price: float, checks: frozenset[str]
    ) -> None:
        """Raise the first filter a venue would refuse: tick, lot step, min/max qty, min notional."""
        if not self.behaviour.enforce_filters:
            return
        if price is not None and "tick" in checks and Decimal(str(price)) % Decimal(market.tick) != 0:
            raise Refused("tick", f"price {price} is not a multiple of {market.tick}")
        if qty is None:
            return
        q = Decimal(str(qty))
        if "lot_step" in checks and q % Decimal(market.lot_step) != 0:
            raise Refused("lot_step", f"quantity {qty} is not a multiple of {market.lot_step}")
        if "min_qty" in checks and q < Decimal(market.min_qty):
            raise Refused("min_qty", f"quantity {qty} is below {market.min_qty}")
        if "max_qty" in checks and q > Decimal(market.max_qty):
            raise Refused("max_qty", f"quantity {qty} is above {market.max_qty}")
        if "min_notional" in checks and q * Decimal(str(notional_price)) < Decimal(market.min_notional):
            raise Refused("min_notional", f"notional {float(q) * notional_price:.4f} is below {market.min_notional}")

    def check_client_id(self, account: str, cid: str, scope: str) -> None:
        """scope "open": unique among open orders (Binance, OKX); "all": unique per account (Bybit)."""
        for o in self.orders:
            if o.account == account and o.client_order_id == cid and (scope == "all" or o.is_open):
                raise Refused("duplicate_client_id", cid)

    def qty_for_quote(self, symbol: str, quote_qty: float) -> float:
        """How much base a quote amount buys at market now, on the lot step (quoteOrderQty, OKX, Bybit)."""
        return floor_step(quote_qty / self.last_price(symbol), self.market(symbol).lot_step)

    def new_order_id(self) -> str:
        return self.id_format(next(self._order_seq))

    def create(
        self,
        account: str,
        symbol: str,
        side: str,
        type: str,
        *,
        qty: float,
        quote_qty: float | None = None,
        price: float | None = None,
        trigger_price: float | None = None,
        client_order_id: str = "",
        order_id: str | None = None,
        extra: dict[str, Any] | None = None,
        hide: bool = False,
        parent_id: str | None = None,
    ) -> Order:
        """Book an order: check balance, lock funds, execute what is marketable. Filters are the caller's."""
        market = self.market(symbol)
        acct = self.accounts[account]
        last = self.last_price(symbol)
        now = self.now_ms()
        order = Order(
            order_id or self.new_order_id(),
            client_order_id,
            symbol,
            side,
            type,
            qty,
            price,
            trigger_price,
            time_ms=now,
            update_ms=now,
            account=account,
            quote_qty=quote_qty,
            extra=dict(extra or {}),
            parent_id=parent_id,
        )
        if type == MARKET:
            need = (quote_qty or qty * last) * (1 + self._quote_fee_rate()) if side == "buy" else qty
            have = acct.free.get(market.quote if side == "buy" else market.base, 0.0)
            if need > have + 1e-9:
                raise Refused("balance", f"needs {need:.8f}, has {have:.8f}")
        elif type != CONDITIONAL:  # limit and stop-limit orders lock their funds at placement
            lock_price = price if price is not None else (trigger_price or last)
            order.lock_asset = market.quote if side == "buy" else market.base
            order.locked = qty * lock_price * (1 + self._quote_fee_rate()) if side == "buy" else qty
            if order.locked > acct.free.get(order.lock_asset, 0.0) + 1e-9:
                raise Refused("balance", f"needs {order.locked:.8f} {order.lock_asset}")
            acct.add(order.lock_asset, -order.locked)
            acct.add(order.lock_asset, order.locked, "locked")
        if hide:
            order.hidden_until = time.monotonic() + self.behaviour.not_found_s
        self.orders.append(order)
        if type == MARKET or (type == LIMIT and self._marketable(order, last)):
            self._start(order, None, maker=False)
        return order

    def cancel(self, order: Order) -> Order:
        if not order.is_open:
            raise Refused("not_cancelable", order.order_id)
        order.parts = []
        order.status = "CANCELED"
        order.update_ms = self.now_ms()
        self._release(order)
        return order

    # ------------------------------------------------------------------------------------ executing

    def _quote_fee_rate(self) -> float:
        return self.behaviour.fee_rate if self.behaviour.fee_asset == "quote" else 0.0

    @staticmethod
    def _marketable(order: Order, last: float) -> bool:
        assert order.price is not None
        return last <= order.price if order.side == "buy" else last >= order.price

    def _start(self, order: Order, exec_price: float | None, maker: bool) -> None:
        """The order begins to execute: split it into parts and fill the first one now."""
        market = self.markets[order.symbol]
        remaining = order.qty - order.executed
        n = max(1, self.behaviour.partial_fills)
        part = floor_step(remaining / n, market.lot_step) if n > 1 else remaining
        order.parts = [part] * (n - 1) + [round(remaining - part * (n - 1), 12)] if part > 0 else [remaining]
        order.exec_price, order.maker = exec_price, maker
        self._next_part(order)

    def _next_part(self, order: Order) -> None:
        if not order.parts or not order.is_open:
            return
        qty = order.parts.pop(0)
        price = order.exec_price if order.exec_price is not None else self.last_price(order.symbol)
        if not self._execute(order, qty, price, order.maker):
            order.parts = []
            order.status = "EXPIRED"  # a market order that ran out of funds mid-way
            self._release(order)

    def observe(self, order: Order) -> None:
        """A lookup of a partially filled order: the next part fills (behaviour.partial_fills)."""
        if order.parts and order.is_open and order.executed > 0:
            self._next_part(order)

    def _execute(self, order: Order, qty: float, price: float, maker: bool) -> bool:
        market, acct, b = self.markets[order.symbol], self.accounts[order.account], self.behaviour
        buy = order.side == "buy"
        cost = round(qty * price, 12)
        rate = b.maker_fee_rate if maker else b.fee_rate
        spend_asset, spend = (market.quote, cost) if buy else (market.base, qty)
        gain_asset, gain = (market.base, qty) if buy else (market.quote, cost)
        fee_asset, fee = gain_asset, gain * rate  # Binance, OKX, Bybit: the fee is taken from what you receive
        if b.fee_asset == "quote":
            fee_asset, fee = market.quote, cost * rate
        elif b.fee_asset == "third" and acct.free.get(b.third_fee_asset, 0.0) >= cost * rate / b.third_fee_price:
            fee_asset, fee = b.third_fee_asset, cost * rate / b.third_fee_price  # else Binance falls back
        fee = round(fee, 12)
        if fee_asset == spend_asset:
            spend += fee
        if order.locked > 0:  # release this part's share of the lock first
            share = min(order.locked, qty * (order.price or price) * (1 + self._quote_fee_rate()) if buy else qty)
            order.locked = round(order.locked - share, 12)
            acct.add(order.lock_asset, -share, "locked")
            acct.add(order.lock_asset, share)
        if spend > acct.free.get(spend_asset, 0.0) + 1e-9:
            return False
        acct.add(spend_asset, -spend)
        acct.add(gain_asset, gain - fee if fee_asset == gain_asset else gain)
        if fee_asset not in (gain_asset, spend_asset):
            acct.add(fee_asset, -fee)
        now = self.now_ms()
        fill = Fill(
            self.trade_id_format(next(self._trade_seq)),
            order.order_id,
            order.symbol,
            order.side,
            price,
            qty,
            fee,
            fee_asset,
            now,
            maker,
            order.account,
        )
        order.fills.append(fill)
        self.fills.append(fill)
        order.executed = round(order.executed + qty, 12)
        order.quote = round(order.quote + cost, 12)
        order.update_ms = now
        order.status = "FILLED" if order.executed >= order.qty - 1e-12 else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order)
        return True

    def _release(self, order: Order) -> None:
        if order.locked > 0:
            acct = self.accounts[order.account]
            acct.add(order.lock_asset, -order.locked, "locked")
            acct.add(order.lock_asset, order.locked)
            order.locked = 0.0

    # ------------------------------------------------------------------------------- market moving

    def _range(self, symbol: str, t0: int, t1: int) -> tuple[float, float]:
        """Lowest and highest price between two market times (sampled), so a brief cross still counts."""
        step = max(10, (t1 - t0) // 1_000)
        prices = [self.price_at(symbol, t) for t in range(t0, t1, step)] + [self.price_at(symbol, t1)]
        return min(prices), max(prices)

    def advance(self) -> None:
        """Fill resting limits and trigger stops the price has reached since the last check."""
        now = self.now_ms()
        ranges: dict[tuple[str, int], tuple[float, float]] = {}  # most orders share one window
        for o in [o for o in self.orders if o.is_open and not o.parts]:
            since = max(o.time_ms, self._checked_ms.get(o.symbol, o.time_ms))
            if (o.symbol, since) not in ranges:
                ranges[o.symbol, since] = self._range(o.symbol, since, now)
            lo, hi = ranges[o.symbol, since]
            last = self.price_at(o.symbol, now)
            if o.type in (STOP_LIMIT, STOP_MARKET, CONDITIONAL) and not o.triggered:
                assert o.trigger_price is not None
                if (lo <= o.trigger_price) if o.side == "sell" else (hi >= o.trigger_price):
                    self._trigger(o, last)
            elif (
                o.type in (LIMIT, STOP_LIMIT)
                and o.executed == 0
                and o.price is not None
                and ((lo <= o.price) if o.side == "buy" else (hi >= o.price))
            ):
                self._start(o, o.price, maker=True)
        for symbol in self.markets:
            self._checked_ms[symbol] = now

    def _trigger(self, order: Order, last: float) -> None:
        order.triggered = True
        order.update_ms = self.now_ms()
        if order.type == CONDITIONAL:  # OKX: the algo places a new order and is done
            child_type = MARKET if order.price is None else LIMIT
            try:
                child = self.create(
                    order.account,
                    order.symbol,
                    order.side,
                    child_type,
                    qty=order.qty,
                    price=order.price,
                    parent_id=order.order_id,
                    extra={"algoId": order.order_id, "algoClOrdId": order.client_order_id},
                )
            except Refused:
                order.status = "FAILED"
                return
            order.child_id, order.status = child.order_id, "TRIGGERED"
        elif order.type == STOP_MARKET or self._marketable(order, last):
            self._start(order, None, maker=False)

    def tick(self) -> None:
        """Move the venue along: trigger and fill what the price reached, and one part of every partial fill."""
        with self.lock:
            self.advance()
            for o in self.orders:
                self.observe(o)

    def fill_resting(self, order_id: Any) -> Order:
        """Fill a resting order now at its own price (a test moves the market)."""
        with self.lock:
            order = self.order(order_id)
            if order.type == CONDITIONAL:
                self._trigger(order, self.last_price(order.symbol))
                return self.fill_resting(order.child_id) if order.child_id else order
            order.triggered = True
            self._start(order, order.price, maker=True)
            while order.parts:
                self._next_part(order)
            return order
