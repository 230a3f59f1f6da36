"""The live broker: real orders through ccxt, with our own client order ids, and the bot's position made of
the fills the venue reports for them (bot_runtime.ledger), never of the account's balance.

An order's life (DESIGN.md): the intent is persisted with its client order id -> sent -> acknowledged, or
ambiguous (a timeout, a 5xx, an unknown answer) -> looked up per venue until found, or until the venue has
answered "not found" `not_found_answers` times over `not_found_window` seconds (a just-created order can
read "does not exist" for a while: docs/research/venues.md) -> filled / partially filled / cancelled /
rejected. Nothing is resent blindly, and nothing new is sent for the symbol while an order is ambiguous.

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

from bot_runtime.btcompat import bt
from bot_runtime.db.repository import FillRecord
from bot_runtime.exchange import RATE_LIMITED, REFUSED_ORDER, Pacer
from bot_runtime.ledger import Fill, Ledger
from bot_runtime.lots import LotRules
from bot_runtime.venues import VenueProfile

log = logging.getLogger(__name__)

DONE = ("closed", "canceled", "expired", "rejected")


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
    exchange_id: str | None = None
    ambiguous_since: float | None = None  # monotonic time of the ambiguous send; None once the venue shows it
    not_found: int = 0  # consecutive "not found" answers while ambiguous
    filled: Decimal = Decimal(0)  # gross base the venue says is filled
    booked: Decimal = Decimal(0)  # gross base of the fills booked into the ledger
    trade_ids: set[str] = field(default_factory=set)
    fees: dict[str, Decimal] = field(default_factory=dict)  # of its fills, by currency
    venue_status: str = "open"


class CcxtBroker(bt.BrokerBase):  # type: ignore[misc]
    params = (
        ("poll_interval", 2.0),
        ("balance_interval", 30.0),
        ("not_found_window", 60.0),
        ("not_found_answers", 3),
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
        on_fatal: Callable[[str], None],
        run_id: int | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.exchange, self.venue, self.symbol, self.journal = exchange, venue, symbol, journal
        self.client_id, self.ledger, self.rules, self.pacer = client_id, ledger, rules, pacer
        self.on_fatal, self.run_id = on_fatal, run_id
        self.base, self.quote = ledger.base, ledger.quote
        self.notifs: collections.deque[Any] = collections.deque()
        self.positions: collections.defaultdict[Any, Any] = collections.defaultdict(bt.Position)
        self.tracked: dict[str, Tracked] = {}
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

    def adopt_position(self, data: Any, size: float, price: float) -> None:
        """Start with the position the ledger holds (called before Cerebro runs)."""
        self.positions[data] = bt.Position(size=size, price=price)

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
            histnotify=histnotify,
        )
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
            histnotify=histnotify,
        )
        return self._submit(order)

    def cancel(self, order: Any) -> bool:
        tracked = next((t for t in self.tracked.values() if t.order is order), None)
        if tracked is None or tracked.exchange_id is None:
            return False
        try:
            result = self.exchange.cancel_order(tracked.exchange_id, self.symbol)
        except Exception as exc:
            log.warning("cancel of %s failed: %s", tracked.client_order_id, exc)
            return False
        self._apply(tracked, result, None)
        return True

    def next(self) -> None:
        """Cerebro's thread: apply what the poller learned since the last call."""
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
            else:
                if tracked.ambiguous_since is not None:
                    log.info("order %s found at the venue after an ambiguous send", cid)
                tracked.ambiguous_since, tracked.not_found = None, 0
                self._apply(tracked, result, trades)

    # ---------------------------------------------------------------------------------- orders

    def _submit(self, order: Any) -> Any:
        order.addcomminfo(self.getcommissioninfo(order.data))
        side = "buy" if order.isbuy() else "sell"
        tracked = Tracked(order, self.client_id(order.ref), side, Decimal(0))
        order.addinfo(client_order_id=tracked.client_order_id)
        order.submit(self)
        self.notify(order)
        amount, skip = self._amount(order, side)
        skip = self.unresolved() or self._cooling_down() or skip
        if skip is not None:
            self._reject(tracked, skip, skipped=True)
            return order
        tracked.amount = amount
        self.tracked[tracked.client_order_id] = tracked
        self.journal.intent(tracked.client_order_id, side, "market", float(amount), None)  # durable before sending
        self._send(tracked)
        return order

    def _amount(self, order: Any, side: str) -> tuple[Decimal, str | None]:
        """The amount the venue will take: a sell never more than the ledger or the account holds."""
        wanted = Decimal(str(abs(order.size)))
        if side == "sell":
            with self._balance_lock:
                free = Decimal(str(self.base_free))
            wanted = min(wanted, self.ledger.position, free)
        fitted = self.rules.fit(wanted, Decimal(str(float(order.data.close[0]))))
        return fitted.amount, None if fitted.ok else f"order skipped: {fitted.reason}"

    def _cooling_down(self) -> str | None:
        left = self.pacer.remaining()
        return f"the venue asked us to wait ({left:.0f} s left after a rate limit)" if left else None

    def _send(self, tracked: Tracked, resync: bool = True) -> None:
        cid = tracked.client_order_id
        try:
            result = self.exchange.create_order(
                self.symbol, "market", tracked.side, float(tracked.amount), None, self.venue.create_params(cid)
            )
        except ccxt.InvalidNonce as exc:  # refused for its timestamp: nothing was placed
            if not resync:
                self._reject(tracked, f"{type(exc).__name__}: {exc}")
                return
            log.warning("order %s refused for its timestamp; resynchronising the clock and resending", cid)
            self.exchange.load_time_difference()
            self._send(tracked, resync=False)
            return
        except RATE_LIMITED as exc:
            delay = self.pacer.rate_limited(self.exchange)
            self._reject(tracked, f"rate limited by the venue ({type(exc).__name__}); waiting {delay:.0f} s")
            return
        except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
            reason = f"authentication failed on an order: {type(exc).__name__}: {exc}"
            self._reject(tracked, reason)
            self.on_fatal(reason)
            return
        except REFUSED_ORDER as exc:
            self._reject(tracked, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:  # a timeout, a 5xx, an unknown answer: the venue may have the order
            log.warning("order %s: ambiguous failure (%s); looking it up instead of resending", cid, exc)
            tracked.ambiguous_since = time.monotonic()
            self.journal.update(cid, status="unknown", error=f"ambiguous: {type(exc).__name__}; looking it up")
            return
        self.pacer.answered()
        self._apply(tracked, result, result.get("trades"))

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

    def _apply(self, tracked: Tracked, result: dict[str, Any], trades: list[dict[str, Any]] | None) -> None:
        """Bring the bt.Order in line with the venue: book new fills, then its state."""
        order = tracked.order
        if result.get("id") is not None:
            tracked.exchange_id = str(result["id"])
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
        fill = fill_of(trade, tracked.client_order_id, tracked.side, tracked.exchange_id or "")
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
                exchange_order_id=tracked.exchange_id,
                fee=fill.fee,
                fee_currency=fill.fee_currency,
                run_id=self.run_id,
            )
        )
        self._execute(tracked.order, float(delta), float(fill.price), float(self.ledger.fee_in_quote(fill)))
        self._check_drift()
        return True

    def _finish(self, tracked: Tracked) -> None:
        order = tracked.order
        order.addinfo(gross_filled=str(tracked.booked), fees={cur: str(fee) for cur, fee in tracked.fees.items()})
        if tracked.venue_status in ("canceled", "expired"):
            order.cancel()
        elif tracked.booked == 0:
            order.reject(self)
        else:
            order.completed()
        self.notify(order)
        self.tracked.pop(tracked.client_order_id, None)

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

    def _reject(self, tracked: Tracked, reason: str, status: str = "rejected", skipped: bool = False) -> None:
        order = tracked.order
        log.warning("order %s %s: %s", tracked.client_order_id, "skipped" if skipped else status, reason)
        order.addinfo(reject_reason=reason, skipped=skipped)
        order.reject(self)
        self.notify(order)
        if not skipped:
            self.journal.update(tracked.client_order_id, status=status, error=reason[:1000])
        self.tracked.pop(tracked.client_order_id, None)

    def _check_drift(self) -> None:
        with self._balance_lock:
            total = Decimal(str(self.base_total))
        held = self.ledger.position
        short = held - total
        if short > 0 and not self.rules.is_dust(short):
            drift = (
                f"the account holds {total:f} {self.base}, less than the {held:f} this bot's fills add up to: "
                f"it sells no more than the account holds"
            )
            if drift != self.drift:
                log.warning("position drift: %s", drift)
            self.drift = drift
        else:
            self.drift = None

    # ------------------------------------------------------------------------------ poller thread

    def _poll_loop(self) -> None:
        last_balance = time.monotonic()
        while not self._stop.wait(self.p.poll_interval):
            if not self.pacer.wait(self._stop):
                return
            for cid, tracked in list(self.tracked.items()):
                if not self._poll(cid, tracked):
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
            if tracked.exchange_id is None:
                result = self.venue.find(self.exchange, self.symbol, cid)
            else:
                result = self.venue.fetch(self.exchange, self.symbol, tracked.exchange_id)
            trades = None
            if Decimal(str(result.get("filled") or 0)) > tracked.booked:
                trades = self.venue.order_trades(self.exchange, self.symbol, str(result["id"]))
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
