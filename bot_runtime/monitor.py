"""The run's monitor thread: every heartbeat it renews the lease, writes the database heartbeat, saves
the trading state, reports status, watches the market data feed and keeps the equity history. It
also wakes at once when a fleet halt or resume arrives, so status shows it without waiting."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from bot_runtime.brokers.gating import FlattenState
from bot_runtime.context import RunContext
from bot_runtime.continuity import Continuity
from bot_runtime.control import RunControl, lease_lost
from bot_runtime.db.engine import DB_ERRORS
from bot_runtime.db.repository import LeaseLost
from bot_runtime.feeds import QueueFeed
from bot_runtime.figures import BotFigures
from bot_runtime.gate import OrderGate
from bot_runtime.news import BotNews
from bot_runtime.status import StatusReporter
from bot_runtime.strategies import Snapshot

log = logging.getLogger("bot_runtime")


class FeedWatch:
    """The market data feed as a person sees it: lost, recovered, stopped (told once each), and a
    reconnect when the producer died or a LIVE feed went quiet for three candles."""

    def __init__(self, ctx: RunContext, feed: QueueFeed, news: BotNews) -> None:
        self.ctx, self.feed, self.news = ctx, feed, news
        self.seen: str | None = None
        self.lost_since: float | None = None
        self.loss_told = False

    def state(self) -> str:
        return str(self.feed.state.snapshot()["status"])

    def on_status(self, status: str) -> None:
        """Cerebro's thread: a feed status notification."""
        previous, self.seen = self.seen, status
        if previous == status:
            return
        reason = self.feed.state.reason
        if status == "CONNBROKEN" and self.lost_since is None:
            self.lost_since = time.monotonic()
            self.news.record("feed_lost", f"market data connection broken: {reason}", "warning")
        elif status == "LIVE" and self.lost_since is not None:
            self.lost_since = None
            self.news.record("feed_recovered", "market data is live again (gap backfilled)")
            if self.loss_told:
                self.loss_told = False
                self.news.tell("feed_recovered", "Market data is live again", ["the gap was backfilled"])
        elif status == "DISCONNECTED":
            self.news.record("feed_stopped", f"market data stopped: {reason}", "error")

    def check(self) -> None:
        """Monitor thread: tell a long loss; reconnect a dead or silent producer."""
        if self.feed.end_reason is not None:
            return
        lost = self.lost_since
        if (
            lost is not None
            and not self.loss_told
            and time.monotonic() - lost >= self.ctx.settings.feed_lost_notify_seconds
        ):
            self.loss_told = True
            self.news.tell(
                "feed_lost",
                "Market data lost",
                [f"no data for {time.monotonic() - lost:.0f} s: {self.feed.state.reason}"],
                "warning",
            )
        producer = self.feed.producer
        state = self.feed.state.snapshot()
        quiet_limit = 3 * self.ctx.tf_seconds + 10
        last_bar = state["last_bar_ms"] / 1000 if state["last_bar_ms"] else None
        stale = state["status"] == "LIVE" and last_bar is not None and time.time() - last_bar > quiet_limit
        if (producer is not None and not producer.is_alive()) or stale:
            why = "producer died" if not stale else f"no bar for {quiet_limit:.0f} s"
            log.warning("reconnecting the market data feed: %s", why)
            self.news.record("feed_reconnect", f"reconnecting the market data feed: {why}", "warning")
            self.feed.restart_producer()


class Monitor(threading.Thread):
    def __init__(
        self,
        ctx: RunContext,
        control: RunControl,
        figures: BotFigures,
        news: BotNews,
        status: StatusReporter,
        feed: FeedWatch,
        gate: OrderGate,
        continuity: Continuity,
    ) -> None:
        super().__init__(name="monitor", daemon=True)
        self.ctx, self.control, self.figures, self.news = ctx, control, figures, news
        self.status, self.feed, self.gate, self.continuity = status, feed, gate, continuity
        self.halt = threading.Event()
        self.trading_notice: Callable[[], str | None] = lambda: None  # live: why no order may be sent now
        self.flatten: Callable[[], FlattenState] = FlattenState  # the broker's flatten in progress
        self._flatten_error: str | None = None
        self._state: tuple[str, str | None] = ("active", None)
        self.drift: Callable[[], str | None] = lambda: None  # live: the account holds less than the fills
        self._notice: str | None = None
        self._drift: str | None = None
        self.last_beat = time.monotonic()
        self._day: tuple[date, float, int] | None = None

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)

    def run(self) -> None:
        last_performance = time.monotonic()
        while True:
            self.last_beat = time.monotonic()
            self.heartbeat()
            self.feed.check()
            self.daily_summary()
            if time.monotonic() - last_performance >= self.ctx.settings.performance_interval_seconds:
                last_performance = time.monotonic()
                self.record_performance()
            if self._idle_until_next_beat(self.ctx.heartbeat_interval):
                return

    def _idle_until_next_beat(self, interval: float) -> bool:
        """Wait for the next heartbeat; a fleet halt or resume is shown in status at once. True: stop."""
        deadline = time.monotonic() + interval
        while (left := deadline - time.monotonic()) > 0:
            if self.halt.wait(min(0.5, left)):
                return True
            self.control.enforce()
            if self.gate.changed.is_set():
                self.gate.changed.clear()
                self.status.report()
        return False

    def heartbeat(self) -> None:
        lease, metrics = self.ctx.lease, self.ctx.metrics
        try:
            lease.renew()
        except LeaseLost as exc:
            metrics.labels(metrics.lease).set(0)
            self.control.fail(lease_lost(exc))
            return
        snap, feed = self.figures.snapshot, self.feed.state()
        flatten = self.flatten()
        values: dict[str, Any] = {
            "feed_state": feed,
            "trading_state": self.gate.state()[0],
            "flatten_error": flatten.last_error if flatten.reason else None,
            "flatten_attempt_at": datetime.fromtimestamp(flatten.last_attempt, UTC) if flatten.last_attempt else None,
        }
        if snap is not None:
            values.update(
                equity=snap.equity,
                cash=snap.cash,
                pnl=self.figures.pnl(snap),
                position=snap.position,
                exposure=snap.position * snap.close,
            )
        db_status = {"LIVE": "running", "CONNBROKEN": "degraded"}.get(feed, "starting")
        try:
            self.ctx.repo.heartbeat(lease.lease, status=db_status, error_message=None, **values)
            metrics.labels(metrics.heartbeat).set(time.time())
            if self.gate.database_down:  # it answers again: re-read the halts missed meanwhile, lift the outage state
                self.gate.refresh()
        except LeaseLost as exc:
            self.control.fail(lease_lost(exc))
            return
        except DB_ERRORS as exc:
            log.warning("heartbeat to the database failed: %s", type(exc).__name__)
        self._update_metrics(snap, feed)
        self._say_state()
        self._say_notice()
        self.status.report()

    def _say_state(self) -> None:
        state, why = self.gate.state()
        if (state, why) != self._state:
            self._state = (state, why)
            if why:
                log.warning("trading state %s: %s", state, why)
            else:
                log.info("trading state %s", state)
            self.news.record(
                "trading_state", f"{state}: {why}" if why else state, "info" if state == "active" else "warning"
            )
        self.ctx.metrics.set_trading_state(state)

    def _say_notice(self) -> None:
        """An unresolved order, a position drift and a failing flatten are said once each, when they appear."""
        flatten = self.flatten()
        if flatten.last_error and flatten.last_error != self._flatten_error:
            message = flatten.describe() or flatten.last_error
            self.news.note(message)
            self.news.record("flatten_failed", message, "error")
            self.news.tell("risk_limit", "Flatten failed; retrying", [message], "error")
        self._flatten_error = flatten.last_error
        notice, drift = self.trading_notice(), self.drift()
        if notice and notice != self._notice:
            self.news.note(notice)
            self.news.record("order_unresolved", notice, "warning")
        if drift and drift != self._drift:
            self.news.record("position_drift", drift, "warning")
            self.news.tell("risk_limit", "Position drift", [drift], "warning")
        self._notice, self._drift = notice, drift

    def daily_summary(self) -> None:
        """At each UTC midnight: the day's equity, PnL and trades (an opt-in notification)."""
        snap, today = self.figures.snapshot, datetime.now(UTC).date()
        if snap is None:
            return
        if self._day is None:
            self._day = (today, snap.equity, self.figures.trade_count)
            return
        day, equity_start, trades_start = self._day
        if today != day:
            self.news.tell(
                "daily_summary",
                f"Daily summary {day.isoformat()}",
                [
                    f"equity {snap.equity:.2f} ({snap.equity - equity_start:+.2f} on the day)",
                    f"trades {self.figures.trade_count - trades_start}, position {snap.position:.8g}",
                ],
            )
            self._day = (today, snap.equity, self.figures.trade_count)

    def record_performance(self) -> None:
        snap = self.figures.snapshot
        if snap is None:
            return
        self.ctx.journal.performance(
            ts=datetime.now(UTC),
            equity=snap.equity,
            cash=snap.cash,
            pnl=self.figures.pnl(snap),
            drawdown=self.figures.drawdown(snap),
            position=snap.position,
        )

    def _update_metrics(self, snap: Snapshot | None, feed: str) -> None:
        m = self.ctx.metrics
        m.set_feed_state(feed)
        if snap is not None:
            m.labels(m.equity).set(snap.equity)
            m.labels(m.pnl).set(self.figures.pnl(snap))
            m.labels(m.position).set(snap.position)
            m.labels(m.halted).set(1 if snap.halted else 0)
        state = self.feed.feed.state.snapshot()
        if state["last_bar_ms"]:
            m.labels(m.last_bar).set(state["last_bar_ms"] / 1000)
        m.labels(m.spooled).set(self.ctx.journal.spooled())

    def alive(self) -> tuple[bool, str]:
        """The liveness probe: the monitor beats."""
        beat_age = time.monotonic() - self.last_beat
        limit = 3 * self.ctx.heartbeat_interval + 30
        if not self.is_alive() or beat_age > limit:
            return False, f"monitor stalled ({beat_age:.0f} s since the last heartbeat)"
        return True, "ok"
