"""The order gate every order passes, in the broker: whatever placed it (a strategy's helpers, a plug-in
calling Backtrader's `buy()` directly, a bracket's child, a flatten), of whatever type.

Its checks: the runtime is not stopping; the trading state (fleet halts, `onStart: halt`, the daily-loss
limit, a database outage) lets the order through; the spec's limits (bot_runtime.risk); and, in one
round trip to the database, the bot's lease (fencing token), the halts committed so far and the exposure
caps, whose room the order reserves in the same transaction (released when it fills, is rejected or
cancelled), so bots deciding on the same candle cannot all pass one cap. Halts also arrive by NOTIFY, so
a halted runtime stops adding exposure (and, with --flatten, closes its position) at once.

While the database is unreachable, orders that add exposure are refused; orders that reduce it still
go: exits and stop-losses keep protecting the position.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import psycopg

from bot_runtime.control import RunControl
from bot_runtime.db.engine import DB_ERRORS, libpq_url
from bot_runtime.db.fleet import BotRef, FleetControls, Halt
from bot_runtime.db.repository import LeaseLost
from bot_runtime.db.schema import FLEET_CHANNEL
from bot_runtime.lease import LeaseGuard
from bot_runtime.risk import OrderRequest, RiskGate, TradingState

log = logging.getLogger(__name__)

DB_DOWN = "the database is unreachable: no new exposure until it answers"


class OrderGate:
    def __init__(
        self,
        fleet: FleetControls,
        lease: LeaseGuard,
        bot: BotRef,
        account: str | None,
        risk: RiskGate,
        control: RunControl,
    ) -> None:
        self.fleet, self.lease, self.bot, self.account = fleet, lease, bot, account
        self.risk, self.control = risk, control
        self.daily = risk.daily  # the daily-loss state the strategy updates on live bars
        self.halts: list[Halt] = []
        self.database_down = False
        self.changed = threading.Event()  # set when the halts change (the status says so at once)
        self.on_flatten: Callable[[str], None] = lambda reason: None  # the broker closes the position now

    # ----------------------------------------------------------------------------------- state

    def halted(self) -> str | None:
        return self.halts[0].describe() if self.halts else None

    def flatten_reason(self) -> str | None:
        return next((h.describe() for h in self.halts if h.flatten), None)

    def state(self) -> tuple[TradingState, str | None]:
        full = next((h for h in self.halts if h.mode == "halted"), None)
        if full is not None:
            return "halted", full.describe()
        if self.halts:
            return "reducing", self.halts[0].describe()
        risk_state = self.risk.state()
        if risk_state[0] != "active":
            return risk_state
        if self.database_down:
            return "reducing", DB_DOWN
        return "active", None

    def _set_halts(self, halts: list[Halt]) -> None:
        if [h.id for h in halts] != [h.id for h in self.halts]:
            self.halts = halts
            self.changed.set()
            log.warning("%s", self.halted() or "fleet halt lifted: trading resumes")
        flatten = self.flatten_reason()
        if flatten:
            self.on_flatten(flatten)

    def _set_database_down(self, down: bool) -> None:
        if down != self.database_down:
            self.database_down = down
            self.changed.set()

    def refresh(self) -> None:
        """Re-read the halts; also how a runtime learns the database answers again (no order needed)."""
        try:
            halts = self.fleet.active_halts(self.bot)
        except DB_ERRORS:
            self._set_database_down(True)
            return
        self._set_database_down(False)
        self._set_halts(halts)

    # ---------------------------------------------------------------------------------- orders

    def check(self, request: OrderRequest, position: float, open_orders: int) -> str | None:
        """A refusal reason, or None to send. Raises LeaseLost when another runtime holds the bot."""
        if self.control.stopping:
            return "the runtime is stopping"
        refusal = self.risk.check(request, position, open_orders, self.state())
        if refusal:
            return refusal
        increases = not request.reduces
        after = (position + request.size) * request.price if increases else 0.0
        try:
            held, halts, cap = self.fleet.check_order(
                self.lease.lease,
                self.bot,
                self.account,
                after,
                increases,
                reserve=(request.client_order_id, request.notional) if increases else None,
            )
        except DB_ERRORS:
            self._set_database_down(True)
            if increases:
                return DB_DOWN
            log.warning(
                "order: %s %.8g (%s) goes without the database's check: unreachable",
                request.side,
                request.size,
                request.reason or request.kind,
            )
            return None
        self._set_database_down(False)
        if not held:
            raise LeaseLost(f"fencing token {self.lease.lease.token} is no longer current")
        self._set_halts(halts)
        refusal = cap or self.risk.check(request, position, open_orders, self.state())
        if refusal is None:
            log.info("order: %s %.8g (%s)", request.side, request.size, request.reason or request.kind)
        return refusal

    def release(self, client_order_id: str) -> None:
        """The order's reservation of cap room is no longer needed (filled, rejected or cancelled)."""
        with contextlib.suppress(*DB_ERRORS):  # a fill also drops it when the bot writes its exposure
            self.fleet.release_reservation(self.bot.bot_id, client_order_id)

    # ------------------------------------------------------------------------------- listening

    def listen(self, database_url: str, stop: threading.Event) -> None:
        """Wake on every committed halt or resume (LISTEN), re-read the halts that apply to this bot."""
        delay = 1.0
        while not stop.is_set():
            try:
                with psycopg.connect(libpq_url(database_url), autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {FLEET_CHANNEL}")
                    self.refresh()
                    delay = 1.0
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.refresh()
            except psycopg.Error:
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
