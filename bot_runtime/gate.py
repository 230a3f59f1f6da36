"""The order gate every order passes: the bot's lease, fleet halts and exposure caps, in one round trip
to the database, committed halts included (so no order leaves after a halt is committed).

Halts also arrive by NOTIFY, so a halted runtime stops deciding (and, with --flatten, closes its
position) at once rather than at its next order. While the database is away, the lease's local
deadline and the last known halts still apply; caps cannot be checked and are skipped (logged).
"""

from __future__ import annotations

import logging
import threading

import psycopg

from bot_runtime.db.engine import libpq_url
from bot_runtime.db.fleet import BotRef, FleetControls, Halt
from bot_runtime.db.repository import LeaseLost
from bot_runtime.db.schema import FLEET_CHANNEL
from bot_runtime.journal import DB_ERRORS
from bot_runtime.lease import LeaseGuard
from bot_runtime.strategies import OrderIntent

log = logging.getLogger(__name__)


class OrderGate:
    def __init__(self, fleet: FleetControls, lease: LeaseGuard, bot: BotRef, account: str | None) -> None:
        self.fleet, self.lease, self.bot, self.account = fleet, lease, bot, account
        self.halts: list[Halt] = []
        self.changed = threading.Event()  # set when the halts change (the status says so at once)

    def halted(self) -> str | None:
        return self.halts[0].describe() if self.halts else None

    def flatten_reason(self) -> str | None:
        return next((h.describe() for h in self.halts if h.flatten), None)

    def refresh(self) -> None:
        try:
            halts = self.fleet.active_halts(self.bot)
        except DB_ERRORS:
            return
        if [h.id for h in halts] != [h.id for h in self.halts]:
            self.halts = halts
            self.changed.set()
            log.warning("%s", self.halted() or "fleet halt lifted: trading resumes")

    def check(self, intent: OrderIntent, position: float) -> str | None:
        """A refusal reason, or None. Raises LeaseLost when another runtime holds the bot."""
        buying = intent.side == "buy"
        after = (position + intent.size) if buying else max(position - intent.size, 0.0)
        try:
            held, halts, cap = self.fleet.check_order(
                self.lease.lease, self.bot, self.account, after * intent.price, increases_exposure=buying
            )
        except DB_ERRORS as exc:
            if not self.lease.held_locally():
                raise LeaseLost("the database is unreachable and the lease was not renewed in time") from exc
            log.warning("database unreachable: order checked against the last known halts; caps skipped")
            halts, cap = self.halts, None
        else:
            if not held:
                raise LeaseLost(f"fencing token {self.lease.lease.token} is no longer current")
            if [h.id for h in halts] != [h.id for h in self.halts]:
                self.halts = halts
                self.changed.set()
        if halts:
            flattening = (
                intent.reduces_position and intent.reason.startswith("flatten") and any(h.flatten for h in halts)
            )
            if not flattening:
                return halts[0].describe()
        return cap

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
