"""The live broker: real orders through ccxt, with our own client order ids.

Safety rules (DESIGN.md, docs/research/backtrader-ccxt.md §3.5):
- the order intent is persisted before the order is sent;
- an ambiguous failure (timeout, 5xx, unknown error) is resolved by looking the order up by its
  client order id, never by sending it again; an order we cannot resolve stays "unknown" and is
  looked up again in the background until the exchange answers;
- order-level errors (insufficient funds, filters) reject that order and the bot keeps running;
- cash and value come from a cached balance snapshot, never from an exchange call on Cerebro's thread.

Only Cerebro's thread touches Backtrader objects; the poller thread hands results over a queue.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import ccxt

from bot_runtime.btcompat import bt
from bot_runtime.exchange import ErrorKind, classify

log = logging.getLogger(__name__)

LOOKUP_DELAYS = (0.5, 1.0, 2.0, 4.0)  # resolving an ambiguous create_order


class OrderJournal(Protocol):
    """Where order intents and their outcomes are persisted (the runtime's DB writer)."""

    def intent(self, client_order_id: str, side: str, order_type: str, amount: float, price: float | None) -> None: ...

    def update(self, client_order_id: str, **values: Any) -> None: ...


@dataclass
class Tracked:
    order: Any  # the bt.Order
    client_order_id: str
    exchange_id: str | None = None
    filled: float = 0.0
    unknown: bool = False  # we could not tell whether the exchange has it


class CcxtBroker(bt.BrokerBase):  # type: ignore[misc]
    params = (("poll_interval", 2.0), ("balance_interval", 30.0))

    def __init__(
        self,
        *,
        exchange: Any,
        symbol: str,
        journal: OrderJournal,
        client_id: Callable[[int], str],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.exchange, self.symbol, self.journal, self.client_id = exchange, symbol, journal, client_id
        market = exchange.market(symbol)
        self.base, self.quote = market["base"], market["quote"]
        self.sleep = sleep
        self.notifs: collections.deque[Any] = collections.deque()
        self.positions: collections.defaultdict[Any, Any] = collections.defaultdict(bt.Position)
        self.tracked: dict[str, Tracked] = {}
        self.cash = 0.0
        self.base_total = 0.0
        self._updates: queue.Queue[tuple[str, dict[str, Any] | None, BaseException | None]] = queue.Queue()
        self._balance_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        super().start()
        self.refresh_balance()
        self.startingcash = self.cash  # Backtrader's writers and analyzers read it
        self._poller = threading.Thread(target=self._poll_loop, name="ccxt-broker-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    def refresh_balance(self) -> None:
        balance = self.exchange.fetch_balance()
        with self._balance_lock:
            self.cash = float(balance.get(self.quote, {}).get("free") or 0.0)
            self.base_total = float(balance.get(self.base, {}).get("total") or 0.0)

    def adopt_position(self, data: Any, size: float, price: float) -> None:
        """Start with a position found on the exchange (called before Cerebro runs)."""
        self.positions[data] = bt.Position(size=size, price=price)

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
        self._apply(tracked, result)
        return True

    def next(self) -> None:
        """Cerebro's thread: apply what the poller learned since the last call."""
        while True:
            try:
                cid, result, error = self._updates.get_nowait()
            except queue.Empty:
                return
            tracked = self.tracked.get(cid)
            if tracked is None:
                continue
            if error is not None:
                self._reject(tracked, f"{type(error).__name__}: {error}", status="failed")
            elif result is not None:
                tracked.unknown = False
                self._apply(tracked, result)

    # ---------------------------------------------------------------------------------- orders

    def _submit(self, order: Any) -> Any:
        order.addcomminfo(self.getcommissioninfo(order.data))
        cid = self.client_id(order.ref)
        side = "buy" if order.isbuy() else "sell"
        amount = float(self.exchange.amount_to_precision(self.symbol, abs(order.size)))
        tracked = Tracked(order, cid)
        self.tracked[cid] = tracked
        order.addinfo(client_order_id=cid)
        order.submit(self)
        self.notify(order)
        if amount <= 0:
            self._reject(tracked, f"amount {abs(order.size):.10g} rounds to 0 at the market's precision")
            return order
        self.journal.intent(cid, side, "market", amount, None)  # persisted before anything is sent
        try:
            result = self.exchange.create_order(self.symbol, "market", side, amount, None, {"clientOrderId": cid})
        except Exception as exc:
            kind = classify(exc)
            if kind in (ErrorKind.order, ErrorKind.fatal):
                self._reject(tracked, f"{type(exc).__name__}: {exc}")
                return order
            log.warning("order %s: ambiguous failure (%s); looking it up instead of resending", cid, exc)
            result = self._look_up(cid)
            if result is None:
                return order
        self._apply(tracked, result)
        return order

    def _look_up(self, cid: str) -> dict[str, Any] | None:
        """Resolve an ambiguous create_order. None means not resolved yet (or rejected: never placed)."""
        tracked = self.tracked[cid]
        for delay in LOOKUP_DELAYS:
            try:
                found: dict[str, Any] = self.exchange.fetch_order(None, self.symbol, {"origClientOrderId": cid})
                return found
            except ccxt.OrderNotFound:
                self._reject(tracked, "the exchange has no such order: it was not placed", status="failed")
                return None
            except Exception as exc:
                log.warning("looking up order %s failed (%s); retrying in %.1f s", cid, exc, delay)
                self.sleep(delay)
        tracked.unknown = True
        self.journal.update(cid, status="unknown", error="exchange unreachable; will look it up again")
        log.error("order %s: still unresolved; it will be looked up again, never resent", cid)
        return None

    def _apply(self, tracked: Tracked, result: dict[str, Any]) -> None:
        """Bring the bt.Order in line with what the exchange says (fills are applied once)."""
        order = tracked.order
        tracked.exchange_id = str(result.get("id")) if result.get("id") is not None else tracked.exchange_id
        order.addinfo(exchange_order_id=tracked.exchange_id)
        if order.status == order.Submitted:
            order.accept(self)
            self.notify(order)
        filled = float(result.get("filled") or 0.0)
        delta = filled - tracked.filled
        if delta > 0:
            price = float(result.get("average") or result.get("price") or order.data.close[0])
            fee = (result.get("fee") or {}).get("cost")
            self._execute(order, delta if order.isbuy() else -delta, price, fee)
            tracked.filled = filled
        status = result.get("status")
        amount = float(result.get("amount") or abs(order.size))
        done = status in ("closed", "canceled", "expired", "rejected") or filled >= amount - 1e-12
        db_status = {"closed": "filled", "canceled": "cancelled", "expired": "cancelled", "rejected": "rejected"}.get(
            status or "", "open"
        )
        if done and filled >= amount - 1e-12:
            db_status = "filled"
            order.completed()
        elif done and status in ("canceled", "expired"):
            order.cancel()
        elif done:
            order.reject(self)
        elif delta > 0:
            order.partial()
        self.journal.update(
            tracked.client_order_id,
            exchange_order_id=tracked.exchange_id,
            status=db_status,
            filled=filled,
            average=result.get("average"),
        )
        if done or delta > 0:
            self.notify(order)
        if done:
            self.tracked.pop(tracked.client_order_id, None)

    def _execute(self, order: Any, size: float, price: float, fee: Any) -> None:
        comminfo = order.comminfo
        position = self.positions[order.data]
        pprice_orig = position.price
        psize, pprice, opened, closed = position.update(size, price)
        pnl = comminfo.profitandloss(-closed, pprice_orig, price) if closed else 0.0
        fee_total = float(fee) if fee is not None else comminfo.getcommission(size, price)
        share = abs(closed) / abs(size) if size else 0.0
        closedvalue = comminfo.getoperationcost(closed, pprice_orig) if closed else 0.0
        openedvalue = comminfo.getoperationcost(opened, price) if opened else 0.0
        with self._balance_lock:  # keep the snapshot plausible until the next balance refresh
            self.cash -= size * price + fee_total
        order.execute(
            order.data.datetime[0],
            size,
            price,
            closed,
            closedvalue,
            fee_total * share,
            opened,
            openedvalue,
            fee_total * (1 - share),
            comminfo.margin,
            pnl,
            psize,
            pprice,
        )

    def _reject(self, tracked: Tracked, reason: str, status: str = "rejected") -> None:
        order = tracked.order
        log.warning("order %s %s: %s", tracked.client_order_id, status, reason)
        order.addinfo(reject_reason=reason)
        order.reject(self)
        self.notify(order)
        self.journal.update(tracked.client_order_id, status=status, error=reason[:1000])
        self.tracked.pop(tracked.client_order_id, None)

    # ------------------------------------------------------------------------------ poller thread

    def _poll_loop(self) -> None:
        last_balance = time.monotonic()
        while not self._stop.wait(self.p.poll_interval):
            for cid, tracked in list(self.tracked.items()):
                try:
                    if tracked.exchange_id is not None:
                        result = self.exchange.fetch_order(tracked.exchange_id, self.symbol)
                    else:
                        result = self.exchange.fetch_order(None, self.symbol, {"origClientOrderId": cid})
                    self._updates.put((cid, result, None))
                except ccxt.OrderNotFound as exc:
                    if tracked.unknown:  # the ambiguous order was never placed
                        self._updates.put((cid, None, exc))
                except Exception as exc:
                    log.debug("order poll for %s failed: %s", cid, exc)
            if time.monotonic() - last_balance >= self.p.balance_interval:
                try:
                    self.refresh_balance()
                    last_balance = time.monotonic()
                except Exception as exc:
                    log.debug("balance refresh failed: %s", exc)
