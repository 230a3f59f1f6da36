"""What both brokers share: the order gate at submission and the flatten-now state.

The gate (`Gate`) is the runtime's OrderGate in a bot, a RiskGate alone in a backtest. A flatten is asked
for from any thread (a fleet halt with --flatten arriving by NOTIFY, onStart: flatten) and carried out by
the broker on Cerebro's thread, which Backtrader runs about twice a second even when no bar arrives:
positions close within seconds, bars or no bars; a failed close is retried with back-off and said.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from bot_runtime.btcompat import bt
from bot_runtime.risk import DailyLoss, OrderRequest, TradingState

log = logging.getLogger(__name__)

KINDS = {bt.Order.Market: "market", bt.Order.Limit: "limit", bt.Order.Stop: "stop"}


class Gate(Protocol):
    daily: DailyLoss

    def check(self, request: OrderRequest, position: float, open_orders: int) -> str | None: ...

    def release(self, client_order_id: str) -> None: ...

    def state(self) -> tuple[TradingState, str | None]: ...


def request_of(order: Any, client_order_id: str) -> OrderRequest:
    """The order as the gate sees it."""
    kind = KINDS.get(order.exectype if order.exectype is not None else bt.Order.Market, str(order.getordername()))
    side = "buy" if order.isbuy() else "sell"
    size = abs(float(order.size))
    price = float(order.price) if order.price else float(order.data.close[0]) if len(order.data) else 0.0
    reduces = side == "sell"  # spot, long only: a sell can only reduce (brokers sell no more than is held)
    return OrderRequest(side, size, price, kind, reduces, client_order_id, str(order.info.get("reason") or ""))


@dataclass
class FlattenState:
    """A flatten asked for, and how it went; read by the status and the heartbeat."""

    reason: str | None = None
    attempts: int = 0
    last_attempt: float | None = None  # time.time()
    last_error: str | None = None
    next_try: float = 0.0  # time.monotonic()

    def describe(self) -> str | None:
        if self.reason is None:
            return None
        if self.last_error:
            return f"closing the position ({self.reason}): attempt {self.attempts} failed: {self.last_error}"
        return f"closing the position ({self.reason})"


class Flattener:
    """The broker's side of flatten-now: asked from any thread, done on Cerebro's."""

    def __init__(self, first_delay: float = 1.0, cap: float = 30.0) -> None:
        self.state = FlattenState()
        self.first_delay, self.cap = first_delay, cap
        self._asked: str | None = None
        self._lock = threading.Lock()

    def ask(self, reason: str) -> None:
        with self._lock:
            self._asked = reason

    def due(self, position: float) -> str | None:
        """Cerebro's thread: the reason to send a closing order now, or None."""
        with self._lock:
            asked = self._asked
        if asked is None or position <= 0:
            if asked is not None and self.state.reason is not None:
                log.info("flat: %s", self.state.reason)
            self.state = FlattenState()
            with self._lock:
                self._asked = None
            return None
        if self.state.reason is None:
            self.state.reason = asked
        return asked if time.monotonic() >= self.state.next_try else None

    def tried(self, error: str | None) -> None:
        state = self.state
        state.attempts += 1
        state.last_attempt = time.time()
        state.last_error = error
        delay = min(self.first_delay * 2 ** (state.attempts - 1), self.cap) if error else 0.0
        state.next_try = time.monotonic() + delay
        if error:
            log.warning("flatten attempt %d failed (%s); retrying in %.0f s", state.attempts, error, delay)
