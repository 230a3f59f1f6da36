"""What the runtime reports in `status.runtime`, and when.

The database row gets every heartbeat. The resource is patched only when something a user sees
changes (feed state, position, trades, open orders, halts, the run), and otherwise at most once a
minute: a fleet of a thousand bots must not turn heartbeats into etcd writes (as node heartbeats
once did, before Leases). The status is built through the RuntimeStatus model, so a field renamed in
the API cannot silently vanish here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot_runtime.api.models import RuntimeStatus
from bot_runtime.context import RunContext
from bot_runtime.figures import BotFigures
from bot_runtime.news import BotNews

log = logging.getLogger("bot_runtime")

# status.runtime keys whose change is worth a patch at once
VISIBLE = (
    "drift",
    "differs",
    "tradingState",
    "flatten",
    "feedState",
    "position",
    "tradeCount",
    "openOrders",
    "halted",
    "haltReason",
    "generation",
    "leaseToken",
    "runId",
    "pod",
    "message",
)
QUIET_PATCH_SECONDS = 60.0


def build_runtime_status(
    *,
    heartbeat: datetime,
    feed_state: str,
    equity: float,
    cash: float,
    pnl: float,
    position: float,
    trade_count: int,
    open_orders: int,
    generation: int | None,
    lease_token: int,
    run_id: int,
    pod: str | None,
    halted: bool,
    halt_reason: str | None,
    message: str | None,
    drift: str | None = None,
    differs: str | None = None,
    trading_state: str | None = None,
    flatten: str | None = None,
) -> dict[str, Any]:
    """The merge patch of status.runtime; None values stay in it, so a cleared field is cleared."""
    status = RuntimeStatus(
        last_heartbeat=heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ"),
        feed_state=feed_state,  # type: ignore[arg-type]
        equity=round(equity, 8),
        cash=round(cash, 8),
        pnl=round(pnl, 8),
        position=round(position, 12),
        trade_count=trade_count,
        open_orders=open_orders,
        generation=generation,
        lease_token=lease_token,
        run_id=run_id,
        pod=pod,
        halted=halted,
        halt_reason=halt_reason,
        message=message,
        drift=drift,
        differs=differs,
        trading_state=trading_state,  # type: ignore[arg-type]
        flatten=flatten,
    )
    return status.model_dump(by_alias=True, mode="json")


@dataclass
class PatchCadence:
    quiet_seconds: float = QUIET_PATCH_SECONDS
    last_sent: dict[str, Any] | None = None
    last_time: float = field(default=float("-inf"))

    def due(self, status: dict[str, Any], now: float) -> bool:
        if self.last_sent is None or now - self.last_time >= self.quiet_seconds:
            return True
        return any(status.get(key) != self.last_sent.get(key) for key in VISIBLE)

    def sent(self, status: dict[str, Any], now: float) -> None:
        self.last_sent, self.last_time = dict(status), now


class StatusReporter:
    """Patches status.runtime of the bot's TradingBot on the cadence above."""

    def __init__(self, ctx: RunContext, figures: BotFigures, news: BotNews) -> None:
        self.ctx, self.figures, self.news = ctx, figures, news
        # until the market is connected and the gate exists: no feed, no fleet halt known
        self.feed_state: Callable[[], str] = lambda: "UNKNOWN"
        self.trading_state: Callable[[], tuple[str, str | None]] = lambda: ("active", None)
        self.drift: Callable[[], str | None] = lambda: None  # live: the broker's position drift
        self.flatten: Callable[[], str | None] = lambda: None  # a flatten in progress (the broker's)
        self.differs: Callable[[], str | None] = lambda: None  # where the runtime does other than the spec says
        self.cadence = PatchCadence(ctx.settings.status_quiet_seconds)
        self._lock = threading.Lock()

    def report(self, final_feed_state: str | None = None, force: bool = False) -> None:
        snap, cash = self.figures.snapshot, self.ctx.spec.broker.cash
        state, why = self.trading_state()
        status = build_runtime_status(
            heartbeat=datetime.now(UTC),
            feed_state=final_feed_state or self.feed_state(),
            equity=snap.equity if snap else cash,
            cash=snap.cash if snap else cash,
            pnl=self.figures.pnl(snap) if snap else 0.0,
            position=snap.position if snap else 0.0,
            trade_count=self.figures.trade_count,
            open_orders=snap.open_orders if snap else 0,
            generation=self.ctx.generation,
            lease_token=self.ctx.lease.lease.token,
            run_id=self.ctx.run_id,
            pod=self.ctx.settings.pod_name,
            halted=state != "active",
            halt_reason=why,
            message=self.news.message,
            drift=self.drift(),
            differs=self.differs(),
            trading_state=state,
            flatten=self.flatten(),
        )
        now = time.monotonic()
        with self._lock:
            if not force and not self.cadence.due(status, now):
                return
            try:
                self.ctx.resource.patch_runtime_status(status)
                self.cadence.sent(status, now)
            except Exception as exc:  # the API server may be away: keep trading, retry at the next beat
                log.warning("status patch failed (%s); will retry", type(exc).__name__)
