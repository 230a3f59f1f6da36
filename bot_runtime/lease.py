"""The runtime's hold on its bot: a database lease with a fencing token.

The lease is renewed at every heartbeat and checked before every order (bot_runtime.gate). While the database is
unreachable the runtime may trade only until the lease it last renewed would expire (a local,
monotonic deadline with a safety margin): nobody else can take the bot before then. Once that
passes, or the database says another runtime holds the bot, trading stops at once.
"""

from __future__ import annotations

import logging
import time

from bot_runtime.db.repository import BotRepository, Lease, LeaseLost
from bot_runtime.journal import DB_ERRORS

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
            if not self.held_locally():
                raise LeaseLost(f"database unreachable past the lease lifetime ({type(exc).__name__})") from exc
            return
        if again is None:
            holder, _ = self.repo.lease_holder(self.lease.bot_id)
            raise LeaseLost(f"bot {self.lease.bot_id} is now run by {holder}")
        log.warning("lease expired while nobody held it; re-acquired with fencing token %s", again.token)
        self.lease = again
        self.valid_until = sent + self.ttl * SAFETY
