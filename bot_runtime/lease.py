"""The runtime's hold on its bot: a database lease with a fencing token.

The lease is renewed at every heartbeat and checked before every order (bot_runtime.gate). While the
database is unreachable the runtime does not exit: it adds no exposure (the gate refuses such orders), keeps
its protection (stops resting at the venue, exits) and keeps trying. Nobody else can take the bot meanwhile
without the database. When it answers again, a lease that expired unclaimed is taken back (a new fencing
token); one another runtime took means this one stops trading at once.
"""

from __future__ import annotations

import logging
import time

from bot_runtime.db.engine import DB_ERRORS
from bot_runtime.db.repository import BotRepository, Lease, LeaseLost

log = logging.getLogger(__name__)

SAFETY = 0.8  # trade on at most 80 % of the lease lifetime without a confirmed renewal


class LeaseGuard:
    def __init__(self, repo: BotRepository, lease: Lease, ttl_seconds: float) -> None:
        self.repo, self.lease, self.ttl = repo, lease, ttl_seconds
        self.valid_until = time.monotonic() + ttl_seconds * SAFETY

    def held_locally(self) -> bool:
        return time.monotonic() < self.valid_until

    def renew(self) -> None:
        """Extend the lease; re-acquire it if it expired while nobody took it; raise LeaseLost."""
        sent = time.monotonic()
        try:
            if self.repo.renew_lease(self.lease, self.ttl):
                self.valid_until = sent + self.ttl * SAFETY
                return
            again = self.repo.acquire_lease(self.lease.bot_id, self.lease.holder, self.ttl)
        except DB_ERRORS as exc:
            if self.held_locally():
                log.warning("lease not renewed: database unreachable (%s)", type(exc).__name__)
            return
        if again is None:
            holder, _ = self.repo.lease_holder(self.lease.bot_id)
            raise LeaseLost(f"bot {self.lease.bot_id} is now run by {holder}")
        log.warning("lease expired while nobody held it; re-acquired with fencing token %s", again.token)
        self.lease = again
        self.valid_until = sent + self.ttl * SAFETY
