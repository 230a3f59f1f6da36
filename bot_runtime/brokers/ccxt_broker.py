"""The live broker: real orders through ccxt, with our own client order ids, and the bot's position made of
the fills the venue reports for them (bot_runtime.ledger), never of the account's balance.

An order's life (DESIGN.md): the intent is persisted with its client order id -> the order gate -> sent ->
acknowledged, or ambiguous (a timeout, a 5xx, an unknown answer) -> looked up per venue until found, or
until the venue has answered "not found" `not_found_answers` times over `not_found_window` seconds (a
just-created order can read "does not exist" for a while: docs/research/venues.md) -> filled / partially
filled / cancelled / rejected. Nothing is resent blindly, and nothing new is sent for the symbol while an
order is ambiguous.

Every order passes the order gate here, whatever placed it. Accepted types are those the paper broker
accepts: market and limit orders, sell stops and brackets of them. A stop rests at the venue where it can
(docs/venues.md), so the position stays protected while the pod, the operator or the database is down;
elsewhere the broker triggers it on the bar. A bracket's stop rests at the venue, its take-profit is kept
by the broker (a resting limit sell would hold the same coins as the stop). The strategy's protective stop
(`protect()`) rests at the venue the same way and trails it; an exit cancels it first.

Before sending, an amount is rounded down to the venue's lot step and checked against its minimum
quantity and order value (bot_runtime.lots); a sell never exceeds what the ledger holds, nor what the
account holds (drift). An order that cannot be placed is skipped and said, never sent to collect an error.
Answers are classified per call: a refusal rejects one order, an authentication failure stops the bot, a
rate limit holds every call for the venue's Retry-After (bot_runtime.exchange.Pacer), a clock-skew refusal
resynchronises the clock and resends once (the venue refused it: nothing was placed).

Only Cerebro's thread touches Backtrader objects; the poller thread hands what it learns over a queue.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import ccxt

from bot_runtime.brokers.gating import Flattener, Gate, request_of
from bot_runtime.btcompat import bt
from bot_runtime.db.repository import FillRecord, LeaseLost
from bot_runtime.exchange import RATE_LIMITED, REFUSED_ORDER, Pacer, key_refused
from bot_runtime.ledger import Fill, Ledger
from bot_runtime.lots import LotRules
from bot_runtime.venues import VenueProfile

log = logging.getLogger(__name__)

DONE = ("closed", "canceled", "expired", "rejected")
KIND = {bt.Order.Market: "market", bt.Order.Limit: "limit", bt.Order.Stop: "stop"}


class OrderJournal(Protocol):
    """Where order intents, their outcomes and their fills are persisted (the runtime's DB writer)."""

    def intent(self, client_order_id: str, side: str, order_type: str, amount: float, price: float | None) -> None: ...

    def update(self, client_order_id: str, **values: Any) -> None: ...

    def fill(self, fill: FillRecord) -> None: ...


def fill_of(trade: dict[str, Any], client_order_id: str, side: str, order_id: str) -> Fill:
    """A venue trade record (ccxt's unified trade) of one of our orders as a ledger fill. The fills in an
    order's own answer (Binance's FULL response) carry neither side nor order id: the order's are used."""
    fee = trade.get("fee") or {}
    when = trade.get("timestamp")
    return Fill(
        trade_id=str(trade["id"]),
        order_id=str(trade.get("order") or order_id),
        client_order_id=client_order_id,
        side=str(trade.get("side") or side),
        amount=Decimal(str(trade["amount"])),
        price=Decimal(str(trade["price"])),
        fee=Decimal(str(fee.get("cost") or 0)),
        fee_currency=fee.get("currency"),
        time=datetime.fromtimestamp(when / 1000, UTC) if when else None,
    )


@dataclass
class Tracked:
    order: Any  # the bt.Order
    client_order_id: str
    side: str
    amount: Decimal  # what was sent
    kind: str = "market"  # market | limit | stop
    price: float | None = None  # limit price, or stop trigger
    at_venue: bool = True  # False: a stop or take-profit the broker triggers itself on the bar
    exchange_id: str | None = None
    fills_on: str | None = None  # the venue order holding the fills (an OKX stop's child order)
    ambiguous_since: float | None = None  # monotonic time of the ambiguous send; None once the venue shows it
    not_found: int = 0  # consecutive "not found" answers while ambiguous
    filled: Decimal = Decimal(0)  # gross base the venue says is filled
    booked: Decimal = Decimal(0)  # gross base of the fills booked into the ledger
    trade_ids: set[str] = field(default_factory=set)
    fees: dict[str, Decimal] = field(default_factory=dict)  # of its fills, by currency
    venue_status: str = "open"
    placed_at: float = field(default_factory=time.monotonic)


class CcxtBroker(bt.BrokerBase):  # type: ignore[misc]
    params = (
        ("poll_interval", 2.0),
        ("balance_interval", 30.0),
        ("not_found_window", 60.0),
        ("not_found_answers", 3),
        ("stop_replace_interval", 60.0),  # a trailing stop at the venue moves at most this often (Freqtrade)
    )

    def __init__(
        self,
        *,
        exchange: Any,
        venue: VenueProfile,
        symbol: str,
        journal: OrderJournal,
        client_id: Callable[[int], str],
        ledger: Ledger,
        rules: LotRules,
        pacer: Pacer,
        gate: Gate,
        on_fatal: Callable[[str], None],
        on_lease_lost: Callable[[LeaseLost], None] | None = None,
        run_id: int | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.exchange, self.venue, self.symbol, self.journal = exchange, venue, symbol, journal
        self.client_id, self.ledger, self.rules, self.pacer = client_id, ledger, rules, pacer
        self.gate, self.on_fatal, self.on_lease_lost, self.run_id = gate, on_fatal, on_lease_lost, run_id
        self.base, self.quote = ledger.base, ledger.quote
        self.notifs: collections.deque[Any] = collections.deque()
        self.positions: collections.defaultdict[Any, Any] = collections.defaultdict(bt.Position)
        self.tracked: dict[str, Tracked] = {}
        self.children: dict[int, list[Any]] = {}  # bracket children waiting for their parent to fill
        self.protective: Tracked | None = None  # the stop protecting the position
        self.flattener = Flattener()
        self.adopted_stop: dict[str, Any] | None = None  # a stop an earlier run left resting (start-up)
        self._protect_retry = 0.0  # monotonic time before which a refused protective stop is not tried again
        self.data: Any = None
        self.cash = 0.0
        self.base_free = 0.0
        self.base_total = 0.0
        self.drift: str | None = None  # the account holds less than the ledger: said in status
        self._updates: queue.Queue[tuple[str, str, Any, Any]] = queue.Queue()
        self._balance_lock = threading.Lock()
        self._stop = threading.Event()

    # -------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        super().start()
        self.refresh_balance()
        self.startingcash = self.cash  # Backtrader's writers and analyzers read it
        threading.Thread(target=self._poll_loop, name="ccxt-broker-poller", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    def refresh_balance(self) -> None:
        balance = self.exchange.fetch_balance()
        with self._balance_lock:
            self.cash = float(balance.get(self.quote, {}).get("free") or 0.0)
            self.base_free = float(balance.get(self.base, {}).get("free") or 0.0)
            self.base_total = float(balance.get(self.base, {}).get("total") or 0.0)
        self._check_drift()

    def _refresh_after_refusal(self) -> None:
        try:
            self.refresh_balance()
        except Exception as exc:  # the regular balance poll tries again
            log.warning("balance refresh after a refused order failed: %s", exc)

    def adopt_position(self, data: Any, size: float, price: float) -> None:
        """Start with the position the ledger holds (called before Cerebro runs), and the stop an earlier
        run left resting at the venue to protect it."""
        self.data = data
        self.positions[data] = bt.Position(size=size, price=price)
        stop = self.adopted_stop
        if stop is not None and size > 0:
            trigger = float(stop.get("stopLossPrice") or stop.get("triggerPrice") or 0)
            order = self._stop_order(data, size, trigger, before_first_bar=True)
            tracked = Tracked(
                order,
                str(stop.get("clientOrderId")),
                "sell",
                Decimal(str(size)),
                "stop",
                order.price,
                exchange_id=str(stop["id"]),
            )
            order.addinfo(client_order_id=tracked.client_order_id, exchange_order_id=tracked.exchange_id, adopted=True)
            order.submit(self)
            order.accept(self)
            self.tracked[tracked.client_order_id] = self.protective = tracked
            log.info("the stop %s resting at the venue protects the adopted position", tracked.client_order_id)

    def unresolved(self) -> str | None:
        """Why nothing new may be sent for the symbol now, or None."""
        for tracked in list(self.tracked.values()):
            if tracked.ambiguous_since is not None:
                waited = time.monotonic() - tracked.ambiguous_since
                return (
                    f"order {tracked.client_order_id} is unresolved ({tracked.not_found} not-found answers in "
                    f"{waited:.0f} s); nothing new is sent for {self.symbol} until the venue shows it or "
                    f"{self.p.not_found_window:.0f} s pass"
                )
        return None

    # ---------------------------------------------------------------------------- Backtrader API

    def getcash(self) -> float:
        with self._balance_lock:
            return self.cash

    get_cash = getcash

    def getvalue(self, datas: Any = None) -> float:
        value = self.getcash()
        for data, position in self.positions.items():
            if position.size and len(data):
                value += position.size * float(data.close[0])
        return value

    get_value = getvalue

    def getposition(self, data: Any, clone: bool = True) -> Any:
        position = self.positions[data]
        return position.clone() if clone else position

    def get_notification(self) -> Any:
        return self.notifs.popleft() if self.notifs else None

    def notify(self, order: Any) -> None:
        self.notifs.append(order.clone())

    def buy(
        self,
        owner: Any,
        data: Any,
        size: float,
        price: float | None = None,
        plimit: float | None = None,
        exectype: Any = None,
        valid: Any = None,
        tradeid: int = 0,
        oco: Any = None,
        trailamount: Any = None,
        trailpercent: Any = None,
        parent: Any = None,
        transmit: bool = True,
        histnotify: bool = False,
        _checksubmit: bool = True,
        **kwargs: Any,
    ) -> Any:
        order = bt.BuyOrder(
            owner=owner,
            data=data,
            size=size,
            price=price,
            pricelimit=plimit,
            exectype=exectype,
            valid=valid,
            tradeid=tradeid,
            parent=parent,
            transmit=transmit,
            histnotify=histnotify,
        )
        order.addinfo(**kwargs)
        return self._submit(order)

    def sell(
        self,
        owner: Any,
        data: Any,
        size: float,
        price: float | None = None,
        plimit: float | None = None,
        exectype: Any = None,
        valid: Any = None,
        tradeid: int = 0,
        oco: Any = None,
        trailamount: Any = None,
        trailpercent: Any = None,
        parent: Any = None,
        transmit: bool = True,
        histnotify: bool = False,
        _checksubmit: bool = True,
        **kwargs: Any,
    ) -> Any:
        order = bt.SellOrder(
            owner=owner,
            data=data,
            size=size,
            price=price,
            pricelimit=plimit,
            exectype=exectype,
            valid=valid,
            tradeid=tradeid,
            parent=parent,
            transmit=transmit,
            histnotify=histnotify,
        )
        order.addinfo(**kwargs)
        return self._submit(order)

    def cancel(self, order: Any) -> bool:
        tracked = next((t for t in self.tracked.values() if t.order is order), None)
        if tracked is None:
            return False
        if not self._cancel_at_venue(tracked):
            return False
        self._finish(tracked, status="canceled")
        return True

    def next(self) -> None:
        """Cerebro's thread, about twice a second even without bars: apply what the poller learned, trigger
        the stops and take-profits the broker keeps, and close the position when a flatten asks for it."""
        self._apply_updates()
        if self.data is None or not len(self.data):
            return
        self._trigger_local(float(self.data.close[0]))
        position = float(self.positions[self.data].size)
        reason = self.flattener.due(position)
        if reason is not None and not any(t.side == "sell" and t.kind == "market" for t in self.tracked.values()):
            order = self.sell(
                owner=None, data=self.data, size=position, exectype=bt.Order.Market, reason=f"flatten: {reason}"
            )
            refused = order.status in (order.Rejected, order.Margin)
            self.flattener.tried(order.info.get("reject_reason") or "rejected" if refused else None)

    def protect(self, stop_price: float | None) -> None:
        """Cerebro's thread, each live bar: keep the strategy's protective stop resting at `stop_price`
        (cancelled when there is no position or no stop; raised as a trailing stop moves, at most once per
        `stop_replace_interval`)."""
        position = float(self.positions[self.data].size) if self.data is not None else 0.0
        current = self.protective
        if current is not None and current.order.info.get("bracket_of") is not None:
            return  # a bracket's own stop: placed by the strategy with its position, not the exits' to manage
        if current is not None and current.order.info.get("adopted") and not stop_price and position > 0:
            return  # an earlier run's stop (its bracket's, say) keeps protecting the position until an exit lifts it
        if current is None and time.monotonic() < self._protect_retry:
            return  # the last placement was refused (a full stop, a rate limit): not again on every bar
        if current is not None and (not stop_price or position <= 0):
            self.cancel(current.order)
            return
        if not stop_price or position <= 0 or self.data is None:
            return
        if current is not None:
            moved = stop_price > (current.price or 0) * (1 + 1e-3)
            resized = abs(float(current.amount) - position) > float(self.rules.step or 0)
            waited = time.monotonic() - current.placed_at >= self.p.stop_replace_interval
            if not (resized or (moved and waited)) or not self.cancel(current.order):
                return
        order = self.sell(
            owner=None,
            data=self.data,
            size=position,
            price=stop_price,
            exectype=bt.Order.Stop,
            reason="protective stop",
            protective=True,
        )
        if order.status in (order.Rejected, order.Margin):
            self._protect_retry = time.monotonic() + self.p.stop_replace_interval

    # ---------------------------------------------------------------------------------- orders

    def _submit(self, order: Any) -> Any:
        self.data = order.data
        order.addcomminfo(self.getcommissioninfo(order.data))
        order.addinfo(client_order_id=self.client_id(order.ref))
        order.submit(self)
        self.notify(order)
        parent = order.parent
        if parent is None:
            return self._place(order)
        # a bracket child: placed when its parent fills (which a market parent may already have done)
        self.children.setdefault(parent.ref, []).append(order)
        if parent.status == parent.Completed:
            self._activate_children(parent)
        elif parent.status in (parent.Canceled, parent.Rejected, parent.Margin, parent.Expired):
            self._drop_children(parent)
        return order

    def _place(self, order: Any) -> Any:
        """The gate, the venue's rules, then the venue (or the broker's own trigger)."""
        kind = KIND.get(order.exectype if order.exectype is not None else bt.Order.Market, order.getordername())
        side = "buy" if order.isbuy() else "sell"
        tracked = Tracked(order, order.info["client_order_id"], side, Decimal(0), kind, order.price)
        refusal = self._gate(order, tracked)
        if refusal is not None:
            self._reject(tracked, refusal, refused=True)
            return order
        amount, skip = self._amount(order, side)
        skip = self.unresolved() or self._cooling_down() or skip
        sent_now = kind != "stop" and not order.info.get("take_profit")  # not kept by the broker until triggered
        if skip is None and side == "sell" and sent_now and not self._lift_protection():
            skip = "the stop resting at the venue is not cancelled (yet); the exit waits for the next attempt"
        if skip is not None:
            self._reject(tracked, skip, skipped=True)
            return order
        tracked.amount = amount
        self.tracked[tracked.client_order_id] = tracked
        if kind == "stop":
            self.protective = tracked
        if (kind == "stop" and not self.venue.stop_orders) or order.info.get("take_profit"):
            tracked.at_venue = False  # triggered by the broker on the bar
            order.accept(self)
            self.notify(order)
            return order
        self.journal.intent(tracked.client_order_id, side, kind, float(amount), tracked.price)  # before sending
        self._send(tracked)
        return order

    def _gate(self, order: Any, tracked: Tracked) -> str | None:
        position = float(self.ledger.position)
        open_orders = len([t for t in self.tracked.values() if t.order.info.get("protective") is not True])
        try:
            return self.gate.check(request_of(order, tracked.client_order_id), position, open_orders)
        except LeaseLost as exc:
            if self.on_lease_lost is not None:
                self.on_lease_lost(exc)
            return f"lease lost: {exc}"

    def _amount(self, order: Any, side: str) -> tuple[Decimal, str | None]:
        """The amount the venue will take: a sell never more than the ledger or the account holds."""
        wanted = Decimal(str(abs(order.size)))
        if side == "sell":
            wanted = self._sellable(wanted)
        price = order.price if order.price else float(order.data.close[0])
        fitted = self.rules.fit(wanted, Decimal(str(price)))
        return fitted.amount, None if fitted.ok else f"order skipped: {fitted.reason}"

    def _sellable(self, wanted: Decimal) -> Decimal:
        """No more than the ledger holds, nor than the account holds (the drift case)."""
        with self._balance_lock:
            free = Decimal(str(self.base_free + self._locked_by_protection()))
        return min(wanted, self.ledger.position, free)

    def _locked_by_protection(self) -> float:
        """Coins a stop resting at the venue holds (freed when an exit cancels it first)."""
        stop = self.protective
        return float(stop.amount) if stop is not None and stop.at_venue and stop.exchange_id else 0.0

    def _lift_protection(self, exit_order: Tracked | None = None) -> bool:
        """An exit first cancels the stop resting at the venue (it holds the coins), and the rest of the stop's
        bracket (the exit ends it). False: it could not."""
        stop = self.protective
        if stop is None or stop is exit_order:
            return True
        if not self._cancel_at_venue(stop):
            return False
        self._finish(stop, status="canceled")
        self._cancel_siblings(stop.order, keep=exit_order)
        return True

    def _cancel_at_venue(self, tracked: Tracked) -> bool:
        if not tracked.at_venue or tracked.exchange_id is None:
            return True
        try:
            if tracked.kind == "stop":
                self.venue.cancel_stop(self.exchange, self.symbol, tracked.exchange_id)
            else:
                self.exchange.cancel_order(tracked.exchange_id, self.symbol)
        except ccxt.OrderNotFound:
            # Filled (a stop that triggered) or gone: not cancelled by us. It stays tracked, so the next look-up
            # books its fills or its end; taking it for cancelled would sell the same coins twice.
            log.info("%s not found to cancel (filled or gone); looking it up", tracked.client_order_id)
            self._poll(tracked.client_order_id, tracked)  # now, not at the next round: applied on the next tick
            return False
        except Exception as exc:
            log.warning("cancel of %s failed: %s", tracked.client_order_id, exc)
            return False
        self.journal.update(tracked.client_order_id, status="cancelled")
        if tracked.kind == "stop":
            self._hold(-float(tracked.amount))
        return True

    def _hold(self, amount: float) -> None:
        """A stop resting at the venue holds its coins (Binance locks them): the cached free balance follows."""
        with self._balance_lock:
            self.base_free = max(0.0, self.base_free - amount)

    def _authentication_failed(self, tracked: Tracked, exc: Exception) -> None:
        reason = f"authentication failed on an order: {type(exc).__name__}: {exc}"
        self._reject(tracked, reason)
        self.on_fatal(reason)

    def _cooling_down(self) -> str | None:
        left = self.pacer.remaining()
        return f"the venue asked us to wait ({left:.0f} s left after a rate limit)" if left else None

    def _send(self, tracked: Tracked, resync: bool = True) -> None:
        cid = tracked.client_order_id
        try:
            result = self._create(tracked)
        except ccxt.InvalidNonce as exc:  # refused for its timestamp: nothing was placed
            if not resync:
                self._reject(tracked, f"{type(exc).__name__}: {exc}")
                return
            log.warning("order %s refused for its timestamp; resynchronising the clock and resending", cid)
            self.exchange.load_time_difference()
            self._send(tracked, resync=False)
            return
        except RATE_LIMITED as exc:
            if key_refused(exc):  # a revoked key, not a rate limit: stop, as for any other venue
                self._authentication_failed(tracked, ccxt.AuthenticationError(str(exc)))
                return
            delay = self.pacer.rate_limited(self.exchange)
            self._reject(tracked, f"rate limited by the venue ({type(exc).__name__}); waiting {delay:.0f} s")
            return
        except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
            self._authentication_failed(tracked, exc)
            return
        except REFUSED_ORDER as exc:
            self._reject(tracked, f"{type(exc).__name__}: {exc}")
            if isinstance(exc, ccxt.InsufficientFunds):
                self._refresh_after_refusal()  # the account changed under us: size the next attempt to it
            return
        except Exception as exc:  # a timeout, a 5xx, an unknown answer: the venue may have the order
            log.warning("order %s: ambiguous failure (%s); looking it up instead of resending", cid, exc)
            tracked.ambiguous_since = time.monotonic()
            self.journal.update(cid, status="unknown", error=f"ambiguous: {type(exc).__name__}; looking it up")
            return
        self.pacer.answered()
        if tracked.kind == "stop":
            self._hold(float(tracked.amount))
        self._apply(tracked, result, result.get("trades"))

    def _create(self, tracked: Tracked) -> dict[str, Any]:
        params = self.venue.create_params(tracked.client_order_id)
        amount = float(tracked.amount)
        if tracked.kind == "stop":
            trigger = float(self.exchange.price_to_precision(self.symbol, tracked.price))
            params = self.venue.stop_params(tracked.client_order_id, trigger)
            return dict(self.exchange.create_order(self.symbol, "market", "sell", amount, None, params))
        if tracked.kind == "limit":
            price = float(self.exchange.price_to_precision(self.symbol, tracked.price))
            return dict(self.exchange.create_order(self.symbol, "limit", tracked.side, amount, price, params))
        return dict(self.exchange.create_order(self.symbol, "market", tracked.side, amount, None, params))

    def _trigger_local(self, close: float) -> None:
        """The stops and take-profits the broker keeps: a market sell when the close crosses them."""
        for tracked in [t for t in self.tracked.values() if not t.at_venue]:
            stop_hit = tracked.kind == "stop" and close <= (tracked.price or 0)
            target_hit = tracked.kind == "limit" and close >= (tracked.price or float("inf"))
            if stop_hit or target_hit:
                log.info("%s %s reached at %.8g: selling at market", tracked.kind, tracked.client_order_id, close)
                tracked.amount = self.rules.floor(self._sellable(tracked.amount))
                if self.rules.is_dust(tracked.amount):
                    self._finish(tracked, status="canceled")  # sold meanwhile: nothing left to protect
                    continue
                tracked.at_venue, tracked.kind = True, "market"
                if not self._lift_protection(exit_order=tracked):
                    tracked.at_venue, tracked.kind = False, "stop" if stop_hit else "limit"
                    continue
                self._cancel_siblings(tracked.order)
                self.journal.intent(tracked.client_order_id, "sell", "market", float(tracked.amount), None)
                self._send(tracked)

    def _not_found(self, tracked: Tracked) -> None:
        """One more "not found" for an ambiguous order; after enough of them over the window: never placed."""
        tracked.not_found += 1
        waited = time.monotonic() - (tracked.ambiguous_since or time.monotonic())
        if tracked.not_found >= self.p.not_found_answers and waited >= self.p.not_found_window:
            self._reject(
                tracked,
                f"the venue shows no order {tracked.client_order_id} after {tracked.not_found} "
                f"look-ups over {waited:.0f} s: it was never placed",
                status="failed",
            )

    def _apply_updates(self) -> None:
        while True:
            try:
                kind, cid, result, trades = self._updates.get_nowait()
            except queue.Empty:
                return
            tracked = self.tracked.get(cid)
            if tracked is None:
                continue
            if kind == "not_found":
                self._not_found(tracked)
                continue
            if tracked.ambiguous_since is not None:
                log.info("order %s found at the venue after an ambiguous send", cid)
            tracked.ambiguous_since, tracked.not_found = None, 0
            self._apply(tracked, result, trades)

    def _apply(self, tracked: Tracked, result: dict[str, Any], trades: list[dict[str, Any]] | None) -> None:
        """Bring the bt.Order in line with the venue: book new fills, then its state."""
        order = tracked.order
        if result.get("id") is not None and tracked.exchange_id is None:
            tracked.exchange_id = str(result["id"])
        if tracked.kind == "stop":
            tracked.fills_on = self.venue.stop_fills_on(result) if result.get("status") == "closed" else None
        order.addinfo(exchange_order_id=tracked.exchange_id)
        if order.status == order.Submitted:
            order.accept(self)
            self.notify(order)
        tracked.filled = max(tracked.filled, Decimal(str(result.get("filled") or 0)))
        tracked.venue_status = str(result.get("status") or tracked.venue_status)
        booked = [self._book(tracked, t) for t in trades or [] if str(t.get("id")) not in tracked.trade_ids]
        all_read = tracked.booked >= tracked.filled
        self.journal.update(
            tracked.client_order_id,
            exchange_order_id=tracked.exchange_id,
            status=self._db_status(tracked, all_read),
            filled=float(tracked.filled),
            average=result.get("average"),
        )
        finished = tracked.venue_status in DONE or tracked.filled >= tracked.amount
        if finished and all_read:
            self._finish(tracked)
        elif any(booked):
            order.partial()
            self.notify(order)

    def _book(self, tracked: Tracked, trade: dict[str, Any]) -> bool:
        """One fill into the ledger, the journal and the bt.Order (its size net of a base fee)."""
        fill = fill_of(trade, tracked.client_order_id, tracked.side, tracked.fills_on or tracked.exchange_id or "")
        tracked.trade_ids.add(fill.trade_id)
        if fill.fee:
            currency = fill.fee_currency or self.quote
            tracked.fees[currency] = tracked.fees.get(currency, Decimal(0)) + fill.fee
        tracked.booked += fill.amount
        delta = self.ledger.apply(fill)
        self.journal.fill(
            FillRecord(
                trade_id=fill.trade_id,
                client_order_id=fill.client_order_id,
                symbol=self.symbol,
                side=fill.side,
                amount=fill.amount,
                price=fill.price,
                net_amount=delta,
                executed_at=fill.time or datetime.now(UTC),
                mode="live",
                exchange_order_id=tracked.fills_on or tracked.exchange_id,
                fee=fill.fee,
                fee_currency=fill.fee_currency,
                run_id=self.run_id,
            )
        )
        self._execute(tracked.order, float(delta), float(fill.price), float(self.ledger.fee_in_quote(fill)))
        self._check_drift()
        return True

    def _finish(self, tracked: Tracked, status: str | None = None) -> None:
        order = tracked.order
        order.addinfo(gross_filled=str(tracked.booked), fees={cur: str(fee) for cur, fee in tracked.fees.items()})
        status = status or tracked.venue_status
        if status in ("canceled", "expired"):
            order.cancel()
        elif tracked.booked == 0:
            order.reject(self)
        else:
            order.completed()
        self.notify(order)
        self._settled(tracked)
        if order.status == order.Completed:
            self._activate_children(order)
            self._cancel_siblings(order)
        elif order.status in (order.Canceled, order.Rejected):
            self._drop_children(order)

    def _settled(self, tracked: Tracked) -> None:
        self.tracked.pop(tracked.client_order_id, None)
        if self.protective is tracked:
            self.protective = None
        self.gate.release(tracked.client_order_id)

    def _activate_children(self, parent: Any) -> None:
        """A bracket's parent filled: its stop rests at the venue, its take-profit is kept by the broker."""
        for child in self.children.pop(parent.ref, []):
            take_profit = child.exectype == bt.Order.Limit
            child.addinfo(protective=not take_profit, take_profit=take_profit, bracket_of=parent.ref)
            self._place(child)

    def _cancel_siblings(self, order: Any, keep: Tracked | None = None) -> None:
        """One leg of a bracket done: the other is cancelled (one-cancels-other)."""
        group = order.info.get("bracket_of")
        if group is None:
            return
        for tracked in [t for t in self.tracked.values() if t.order.info.get("bracket_of") == group]:
            if tracked.order is not order and tracked is not keep and self._cancel_at_venue(tracked):
                self._finish(tracked, status="canceled")

    def _drop_children(self, parent: Any) -> None:
        for child in self.children.pop(parent.ref, []):
            child.cancel()
            self.notify(child)

    @staticmethod
    def _db_status(tracked: Tracked, all_read: bool) -> str:
        if tracked.venue_status in ("canceled", "expired"):
            return "cancelled"
        if tracked.venue_status == "rejected":
            return "rejected"
        if (tracked.venue_status == "closed" or tracked.filled >= tracked.amount) and all_read:
            return "filled"
        return "partially_filled" if tracked.booked > 0 else "open"

    def _execute(self, order: Any, size: float, price: float, fee: float) -> None:
        """Book `size` (signed, net of a base fee) at `price` with `fee` (in quote) into the bt.Order."""
        comminfo = order.comminfo
        position = self.positions[order.data]
        pprice_orig = position.price
        psize, pprice, opened, closed = position.update(size, price)
        # the ledger is the position: its entry price counts fees; dust below one lot step is no position
        held = self.ledger.position
        psize = 0.0 if self.rules.is_dust(held) else float(held)
        pprice = float(self.ledger.entry_price) if psize else 0.0
        position.set(psize, pprice)
        pnl = comminfo.profitandloss(-closed, pprice_orig, price) if closed else 0.0
        share = abs(closed) / abs(size) if size else 0.0
        closedvalue = comminfo.getoperationcost(closed, pprice_orig) if closed else 0.0
        openedvalue = comminfo.getoperationcost(opened, price) if opened else 0.0
        with self._balance_lock:  # keep the snapshot plausible until the next balance refresh
            self.cash -= size * price + fee
            self.base_free = max(0.0, self.base_free + size)
            self.base_total = max(0.0, self.base_total + size)
        order.execute(
            order.data.datetime[0],
            size,
            price,
            closed,
            closedvalue,
            fee * share,
            opened,
            openedvalue,
            fee * (1 - share),
            comminfo.margin,
            pnl,
            psize,
            pprice,
        )

    def _reject(
        self, tracked: Tracked, reason: str, status: str = "rejected", skipped: bool = False, refused: bool = False
    ) -> None:
        order = tracked.order
        verb = "refused" if refused else "skipped" if skipped else status
        log.warning("order %s %s: %s", tracked.client_order_id, verb, reason)
        order.addinfo(reject_reason=reason, skipped=skipped, refused=refused)
        order.reject(self)
        self.notify(order)
        if not (skipped or refused):
            self.journal.update(tracked.client_order_id, status=status, error=reason[:1000])
        self._settled(tracked)
        self._drop_children(order)

    def _check_drift(self) -> None:
        with self._balance_lock:
            total = Decimal(str(self.base_total))
        held = self.ledger.position
        short = held - total
        if short > 0 and not self.rules.is_dust(short):
            drift = (
                f"the account holds {total:f} {self.base}, less than the {held:f} this bot's fills add up to: "
                "it sells no more than the account holds"
            )
            if drift != self.drift:
                log.warning("position drift: %s", drift)
            self.drift = drift
        else:
            self.drift = None

    def _stop_order(self, data: Any, size: float, trigger: float, before_first_bar: bool = False) -> Any:
        # Backtrader stamps an order with the data's current bar; an order adopted at start-up comes before the
        # first bar, and `simulated` is its way to build one without reading a bar
        order = bt.SellOrder(
            owner=None, data=data, size=size, price=trigger, exectype=bt.Order.Stop, simulated=before_first_bar
        )
        order.addinfo(protective=True, reason="protective stop")
        order.addcomminfo(self.getcommissioninfo(data))
        return order

    # ------------------------------------------------------------------------------ poller thread

    def _poll_loop(self) -> None:
        last_balance = time.monotonic()
        while not self._stop.wait(self.p.poll_interval):
            if not self.pacer.wait(self._stop):
                return
            for cid, tracked in list(self.tracked.items()):
                if tracked.at_venue and not self._poll(cid, tracked):
                    break
            if time.monotonic() - last_balance >= self.p.balance_interval:
                try:
                    self.refresh_balance()
                    last_balance = time.monotonic()
                except RATE_LIMITED:
                    self.pacer.rate_limited(self.exchange)
                except Exception as exc:
                    log.debug("balance refresh failed: %s", exc)

    def _poll(self, cid: str, tracked: Tracked) -> bool:
        """Look one order up; False when the venue asked us to wait (the round ends)."""
        try:
            result, trades = self._look_up(cid, tracked)
            self.pacer.answered()
            self._updates.put(("order", cid, result, trades))
        except ccxt.OrderNotFound:
            if tracked.ambiguous_since is not None:
                self._updates.put(("not_found", cid, None, None))
        except RATE_LIMITED:
            delay = self.pacer.rate_limited(self.exchange)
            log.warning("order poll rate limited; every call waits %.0f s", delay)
            return False
        except ccxt.InvalidNonce:
            self.exchange.load_time_difference()
        except Exception as exc:
            log.debug("order poll for %s failed: %s", cid, exc)
        return True

    def _look_up(self, cid: str, tracked: Tracked) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        """The venue's view of an order and, when it has new fills, its trade records."""
        if tracked.exchange_id is None:
            find = self.venue.find_stop if tracked.kind == "stop" else self.venue.find
            result = find(self.exchange, self.symbol, cid)
        elif tracked.kind == "stop":
            result = self.venue.fetch_stop(self.exchange, self.symbol, tracked.exchange_id)
        else:
            result = self.venue.fetch(self.exchange, self.symbol, tracked.exchange_id)
        fills_on = self.venue.stop_fills_on(result) if tracked.kind == "stop" else str(result["id"])
        trades = None
        if fills_on and Decimal(str(result.get("filled") or 0)) > tracked.booked:
            trades = self.venue.order_trades(self.exchange, self.symbol, fills_on)
        return result, trades
