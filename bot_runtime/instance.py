"""StrategyInstance: one bot's strategy, trading on a live feed, reporting to the database and its
TradingBot. The lifecycle keeps the original system's names: `start` -> `_create_data_feed` ->
`_setup_backtrader` -> `run` (with `_monitor_data_feed` and `_reconnect_data_feed` beside it) ->
`stop`.

Threads: Cerebro runs on the main thread (signals arrive there); the monitor thread heartbeats,
renews the lease, patches status and watches the feed; the journal thread writes history; feed
and broker pollers talk to the exchange. Only Cerebro's thread touches Backtrader objects; others
read the snapshot the strategy publishes each bar.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.brokers.ccxt_broker import CcxtBroker
from bot_runtime.brokers.paper import paper_broker
from bot_runtime.btcompat import bt
from bot_runtime.continuity import StartPlan, plan_start, state_of
from bot_runtime.db.engine import create_engine
from bot_runtime.db.fleet import BotRef, FleetControls, SavedState, fingerprint
from bot_runtime.db.repository import BotRepository, LeaseLost, TradeRecord
from bot_runtime.exchange import Credentials, build_exchange
from bot_runtime.feeds import DataFeedFactory, QueueFeed, timeframe_ms
from bot_runtime.guard import OrderGuard
from bot_runtime.health import HealthServer, RuntimeMetrics
from bot_runtime.journal import DB_ERRORS, Journal
from bot_runtime.kube import BotResource, api_client
from bot_runtime.lease import LeaseGuard
from bot_runtime.notifications import (
    NotificationConfigError,
    NotificationMetrics,
    Notifier,
    parse_urls,
    settings_from_spec,
)
from bot_runtime.reconcile import reconcile_live_start
from bot_runtime.settings import RuntimeSettings
from bot_runtime.status import PatchCadence, build_runtime_status
from bot_runtime.strategies import OrderIntent, RestoredPosition, Snapshot, StrategyHooks, strategy_handler
from bot_runtime.validation import validate_spec

log = logging.getLogger("bot_runtime")

EXIT_OK, EXIT_ERROR, EXIT_FATAL, EXIT_LEASE_HELD, EXIT_LEASE_LOST = 0, 1, 2, 3, 4


class RuntimeFailure(Exception):
    """The runtime must stop; `code` is its exit code and the message is the reason users see."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class Outcome:
    code: int
    reason: str
    db_status: str  # trading_bots.status after the run


class RuntimeHooks(StrategyHooks):
    """The strategy's line to the runtime (called on Cerebro's thread)."""

    def __init__(self, instance: StrategyInstance) -> None:
        self.instance = instance

    def before_order(self, intent: OrderIntent) -> str | None:
        return self.instance.order_gate(intent)

    def on_refused(self, intent: OrderIntent, reason: str) -> None:
        super().on_refused(intent, reason)
        self.instance.note(f"order refused: {intent.side} {intent.size:.8g}: {reason}")
        if not reason.startswith(("lease lost", "the runtime is stopping", "halted by")):
            self.instance.tell("risk_limit", "Order refused by a risk limit", [reason], "warning")

    def on_order(self, order: Any) -> None:
        self.instance.on_order(order)

    def on_bar(self, snapshot: Snapshot) -> None:
        self.instance.snapshot = snapshot

    def on_feed_status(self, status: str) -> None:
        self.instance.on_feed_status(status)

    def on_halt(self, reason: str) -> None:
        self.instance.note(reason)
        self.instance.journal_event("risk_halt", reason, "warning")
        self.instance.tell("daily_loss_halt", "Trading halted: daily loss limit", [reason], "error")

    def on_start(self, strategy: Any) -> None:
        self.instance.on_strategy_start(strategy)

    def trading_halted(self) -> str | None:
        return self.instance.guard.halted() if self.instance.guard is not None else None

    def flatten_requested(self) -> str | None:
        return self.instance.flatten_reason()


class StrategyInstance:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.holder = f"{settings.pod_name}/{uuid.uuid4().hex[:12]}"
        self.stop_requested: str | None = None
        self.failure: RuntimeFailure | None = None
        self.snapshot: Snapshot | None = None
        self.message: str | None = None
        self.plan: StartPlan | None = None
        self.fleet: FleetControls | None = None
        self.guard: OrderGuard | None = None
        self.account: str | None = None
        self.strategy: Any = None
        self._flatten_on_start: str | None = None
        self._saved: SavedState | None = None
        self._status_lock = threading.Lock()
        self.metrics = RuntimeMetrics(settings.bot_name, settings.namespace)
        self._monitor_stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._monitor_beat = time.monotonic()
        self._feed_state_seen: str | None = None
        self._feed_lost = False
        self.cadence = PatchCadence(settings.status_quiet_seconds)
        self.journal: Journal | None = None
        self.lease: LeaseGuard | None = None
        self.run_id: int | None = None
        self.health: HealthServer | None = None
        self.exchange: Any = None
        self.feed: QueueFeed | None = None
        self.cerebro: Any = None
        self.baseline_equity: float | None = None
        self.peak_equity = 0.0
        self.trade_count = 0
        self.heartbeat_interval = settings.heartbeat_seconds
        self.notifier: Notifier | None = None
        self._feed_lost_since: float | None = None
        self._feed_loss_told = False
        self._day: tuple[date, float, int] | None = None

    # ------------------------------------------------------------------------------- lifecycle

    def start(self) -> int:
        """Run the bot until it is stopped; return the process exit code."""
        outcome = Outcome(EXIT_ERROR, "did not start", "error")
        try:
            self._load_bot()
            self._connect_database()
            self._acquire_lease()
            self._start_run()
            self._start_notifier()
            self._start_health()
            self._create_data_feed()
            self._setup_backtrader()
            self._install_signal_handlers()
            self._start_monitor()
            outcome = self.run()
        except RuntimeFailure as failure:
            outcome = Outcome(failure.code, failure.reason,
                              "stopped" if failure.code in (EXIT_OK, EXIT_LEASE_HELD, EXIT_LEASE_LOST) else "error")
        except Exception as exc:  # the reason reaches the database row and the resource status
            log.exception("runtime failed")
            outcome = Outcome(EXIT_ERROR, f"{type(exc).__name__}: {exc}", "error")
        finally:
            self.stop(outcome)
        return outcome.code

    def _load_bot(self) -> None:
        s = self.settings
        self.resource = BotResource(api_client(s.kubeconfig), s.namespace, s.bot_name)
        body = self.resource.read()
        self.generation = body["metadata"].get("generation")
        spec, result = validate_spec(body.get("spec") or {})
        for warning in result.warnings:
            log.warning("spec: %s", warning)
        labels = body["metadata"].get("labels") or {}
        raw_id = labels.get(c.LABEL_BOT_ID) or (body.get("status") or {}).get("botId")
        self.bot_id = int(raw_id) if raw_id else None
        if spec is None:
            raise RuntimeFailure(EXIT_FATAL, "invalid spec: " + "; ".join(result.errors))
        self.spec: TradingBotSpec = spec
        self.tf_seconds = timeframe_ms(spec.market.timeframe) / 1000
        self.heartbeat_interval = spec.runtime.heartbeat_interval_seconds or self.settings.heartbeat_seconds

    def _connect_database(self) -> None:
        self.repo = BotRepository(create_engine(self.settings.database_url, connect_args={"connect_timeout": 5}))
        if self.bot_id is None:
            row = self.repo.get_bot_by_ref(self.settings.namespace, self.settings.bot_name)
            if row is None:
                raise RuntimeFailure(EXIT_FATAL, f"TradingBot {self.settings.namespace}/{self.settings.bot_name} "
                                                 "has no trading_bots row yet (the operator registers it)")
            self.bot_id = row.id

    def _acquire_lease(self) -> None:
        assert self.bot_id is not None
        deadline = time.monotonic() + self.settings.lease_wait_seconds
        lease = self.repo.acquire_lease(self.bot_id, self.holder, self.settings.lease_ttl_seconds)
        while lease is None and time.monotonic() < deadline and not self.stop_requested:
            time.sleep(1.0)  # a crashed runtime's lease frees at its expiry (or when the operator frees it)
            lease = self.repo.acquire_lease(self.bot_id, self.holder, self.settings.lease_ttl_seconds)
        if lease is None:
            holder, until = self.repo.lease_holder(self.bot_id)
            raise RuntimeFailure(EXIT_LEASE_HELD, f"bot {self.bot_id} is already run by {holder} (lease until "
                                                  f"{until}); refusing to trade: at most one runtime per bot")
        self.lease = LeaseGuard(self.repo, lease, self.settings.lease_ttl_seconds)
        self.metrics.labels(self.metrics.lease).set(1)
        log.info("acquired the lease of bot %s (fencing token %s)", self.bot_id, lease.token)

    def _start_run(self) -> None:
        assert self.lease is not None and self.bot_id is not None
        lease = self.lease.lease
        self.run_id = self.repo.start_run(lease, pod=self.settings.pod_name, image=self.settings.image,
                                          generation=self.generation)
        row = self.repo.get_bot(self.bot_id)
        self.trade_count = row.trade_count if row is not None else 0
        spool = self.settings.spool_dir / f"bot-{self.bot_id}.jsonl"
        self.journal = Journal(self.repo, self.bot_id, self.run_id, self.spec.market.symbol, spool)
        self.fleet = FleetControls(self.repo)
        self.bot_ref = BotRef(self.bot_id, row.user_id if row is not None else None, self.settings.namespace,
                              self.settings.bot_name)
        self.repo.set_status(self.bot_id, "starting")
        self.journal_event("started", f"started {self.spec.strategy.type} on {self.spec.market.exchange} "
                                      f"{self.spec.market.symbol} {self.spec.market.timeframe} ({self.spec.mode})")

    def _start_notifier(self) -> None:
        """apprise targets from the bot's notifications Secret (BOTOPS_NOTIFY_URLS, set by the pod)."""
        spec = self.spec.notifications
        if spec is None or not self.settings.notify_urls.strip():
            return
        try:
            urls, targets = parse_urls(self.settings.notify_urls, f"Secret {spec.secret_ref.name} key "
                                                                 f"{spec.secret_ref.key}")
        except NotificationConfigError as exc:
            log.warning("notifications off: %s", exc)
            self.journal_event("notifications_invalid", str(exc), "warning")
            return
        delays = tuple(float(d) for d in self.settings.notify_retry_delays.split(",") if d.strip())
        self.notifier = Notifier(
            urls, subject=f"{self.settings.namespace}/{self.settings.bot_name} {self.spec.market.symbol}",
            settings=settings_from_spec(spec, digest_seconds=self.settings.notify_digest_seconds,
                                        retry_delays=delays),
            recorder=self._record_notification, metrics=NotificationMetrics(self.metrics.registry))
        log.info("notifications to %s", ", ".join(str(t) for t in targets))

    def _record_notification(self, event: str, service: str, target: str, ok: bool) -> None:
        self.journal_event("notification", f"{event} to {service}: {'ok' if ok else 'failed'}",
                           "info" if ok else "warning", {"event": event, "service": service, "target": target,
                                                        "ok": ok})

    def tell(self, event: str, title: str, lines: list[str], severity: str = "info") -> None:
        if self.notifier is not None:
            self.notifier.notify(event, title, lines, severity)

    def _start_health(self) -> None:
        self.health = HealthServer(self.settings.health_port, self.metrics.registry, self.alive, self.ready).start()
        log.info("metrics, /healthz and /readyz on port %s", self.health.port)

    def _create_data_feed(self) -> None:
        market = self.spec.market
        if market.feed == "ccxt" or self.spec.mode == "live":
            credentials = Credentials.from_env() if self.spec.mode == "live" else None
            if self.spec.mode == "live" and credentials is None:
                raise RuntimeFailure(EXIT_FATAL, "live mode needs BOTOPS_EXCHANGE_API_KEY and BOTOPS_EXCHANGE_SECRET "
                                                 "(from spec.broker.credentialsSecretRef)")
            if credentials is not None:
                self._claim_account(credentials)
            self.exchange = build_exchange(market.exchange, credentials=credentials, sandbox=market.sandbox)
            try:
                self.exchange.load_markets()
            except Exception as exc:
                raise RuntimeFailure(EXIT_FATAL, f"cannot load {market.exchange} markets: "
                                                 f"{type(exc).__name__}: {exc}") from exc
            if market.symbol not in self.exchange.markets:
                raise RuntimeFailure(EXIT_FATAL, f"{market.exchange} has no market {market.symbol}")
        factory = DataFeedFactory(exchange=self.exchange)
        self.feed = factory.live(market, default_seed=self.bot_id or 0)

    def _claim_account(self, credentials: Credentials) -> None:
        """One account trades one symbol through one bot (unless both allow sharing): checked in the
        database, so it holds even with the operator down."""
        assert self.fleet is not None and self.bot_id is not None
        self.account = fingerprint(self.fleet.fingerprint_key(), self.spec.market.exchange, credentials.api_key)
        conflict = self.fleet.claim_account(self.bot_id, self.account, self.spec.market.symbol,
                                            self.spec.allow_shared_account)
        if conflict:
            raise RuntimeFailure(EXIT_FATAL, f"refusing to trade: {conflict}")

    def _setup_backtrader(self) -> None:
        klass, params = strategy_handler.parse_params(self.spec.strategy.type, self.spec.strategy.params)
        # Live feeds switch preload/runonce off; quicknotify delivers fills at once, not a bar later.
        self.cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
        self.cerebro.adddata(self.feed)
        if self.spec.mode == "live":
            assert self.journal is not None and self.lease is not None
            broker = CcxtBroker(exchange=self.exchange, symbol=self.spec.market.symbol, journal=self.journal,
                                client_id=self.client_order_id)
            broker.setcommission(commission=self.spec.broker.commission)
            found = reconcile_live_start(self.repo, self.journal, self.exchange, self.bot_id or 0,
                                         self.spec.market.symbol)
            self.journal_event("reconciled", found.summary())
            self.cerebro.broker = broker
        else:
            found = None
            self.cerebro.broker = paper_broker(self.spec.broker)
        self._plan_start(found)
        self.cerebro.addstrategy(klass, config=params, risk=self.spec.risk, hooks=RuntimeHooks(self),
                                 timeframe_seconds=int(self.tf_seconds))

    def _plan_start(self, found: Any) -> None:
        """Continuity: what the previous runtime left, and spec.onStart's answer to it."""
        assert self.fleet is not None and self.lease is not None and self.bot_id is not None
        self._saved = self.fleet.load_state(self.bot_id)
        self.plan = plan_start(self.spec.mode, self.spec.on_start, self._saved, found)
        self.baseline_equity = self.plan.baseline_equity
        log.info("%s", self.plan.summary)
        self.journal_event("on_start", self.plan.summary, "warning" if self.plan.action == "halt" else "info",
                           {"action": self.plan.action, "position": self.plan.position.size if self.plan.position
                            else 0.0})
        self.note(self.plan.summary)
        self.guard = OrderGuard(self.fleet, self.lease, self.bot_ref, self.account)
        if self.plan.action == "halt" and not [h for h in self.fleet.active_halts(self.bot_ref) if h.scope == "bot"]:
            self.fleet.halt("bot", self.bot_ref.ref, self.plan.summary, by=f"onStart ({self.holder})")
        elif self.plan.action == "flatten":
            self._flatten_on_start = self.plan.summary
        self.guard.refresh()
        threading.Thread(target=self.guard.listen, args=(self.settings.database_url, self._monitor_stop),
                         name="fleet-listener", daemon=True).start()

    def on_strategy_start(self, strategy: Any) -> None:
        """Before the first bar (Cerebro's thread): put back the position, cash and counters."""
        self.strategy = strategy
        plan, broker = self.plan, self.cerebro.broker
        if plan is None:
            return
        if plan.position is not None:
            if self.spec.mode == "live":
                broker.adopt_position(strategy.data, plan.position.size, plan.position.entry_price)
            else:
                broker.positions[strategy.data] = bt.Position(size=plan.position.size,
                                                              price=plan.position.entry_price)
        if plan.cash is not None:
            broker.cash = plan.cash
        saved = plan.saved
        strategy.restore(plan.position or RestoredPosition(0.0, 0.0), plan.realized_pnl,
                         saved.day if saved else None, saved.day_start_equity if saved else None)

    def flatten_reason(self) -> str | None:
        fleet = self.guard.flatten_reason() if self.guard is not None else None
        return fleet or self._flatten_on_start

    def _save_state(self) -> None:
        """The trading state, as it changes (fills, a new day, a new high); fenced by the lease token."""
        if self.strategy is None or self.journal is None or self.lease is None:
            return
        snap = self.strategy.snapshot() if threading.current_thread() is threading.main_thread() else self.snapshot
        if snap is None:
            return
        state = state_of(snap, self.baseline_equity if self.baseline_equity is not None else snap.equity)
        if state != self._saved:
            self._saved = state
            self.journal.state(self.lease.lease.token, state)

    def _install_signal_handlers(self) -> None:
        def handle(signum: int, frame: Any) -> None:
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def request_stop(self, why: str) -> None:
        if self.stop_requested is None:
            self.stop_requested = why
            log.info("stopping: %s", why)
        if self.cerebro is not None:
            self.cerebro.runstop()

    def fail(self, failure: RuntimeFailure) -> None:
        """Stop trading at once for a reason found off Cerebro's thread (lease lost, feed fatal)."""
        if self.failure is None:
            self.failure = failure
            log.error("%s", failure.reason)
        if self.cerebro is not None:
            self.cerebro.runstop()

    def run(self) -> Outcome:
        log.info("running %s on %s %s (%s)", self.spec.strategy.type, self.spec.market.exchange,
                 self.spec.market.symbol, self.spec.mode)
        equity = self.cerebro.broker.getvalue()
        self.tell("started", f"Started {self.spec.strategy.type} ({self.spec.mode})",
                  [f"{self.spec.market.exchange} {self.spec.market.symbol} {self.spec.market.timeframe}",
                   f"equity {equity:.2f}"])
        self.cerebro.run()
        if self.failure is not None:
            return Outcome(self.failure.code, self.failure.reason,
                           "stopped" if self.failure.code == EXIT_LEASE_LOST else "error")
        if self.stop_requested is not None:
            return Outcome(EXIT_OK, f"stopped by {self.stop_requested}", "stopped")
        reason = (self.feed.end_reason if self.feed is not None else None) or "the feed ended"
        if reason == "replay finished":
            return Outcome(EXIT_OK, reason, "stopped")
        return Outcome(EXIT_FATAL, f"market data feed stopped: {reason}", "error")

    def stop(self, outcome: Outcome) -> None:
        """Flush, mark the run stopped, say why (database and resource), release the lease."""
        self._monitor_stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        self.message = outcome.reason if outcome.code != EXIT_OK else self.message or outcome.reason
        log.log(logging.INFO if outcome.code == EXIT_OK else logging.ERROR, "exit %s: %s", outcome.code,
                outcome.reason)
        if outcome.code == EXIT_LEASE_HELD:  # the other runtime owns the row and the status
            return
        if outcome.code == EXIT_OK:
            self.tell("stopped", "Stopped", [outcome.reason])
        elif outcome.code == EXIT_LEASE_LOST:
            self.tell("lease_lost", "Trading stopped: lease lost", [outcome.reason], "error")
        else:
            self.tell("fatal_error", "Bot stopped on an error", [outcome.reason], "error")
        if self.notifier is not None:
            self.notifier.close(timeout=min(5.0, self.settings.stop_timeout_seconds))
        if self.journal is not None:
            self.journal_event("stopped", outcome.reason, "info" if outcome.code == EXIT_OK else "error")
            if not self.journal.flush(self.settings.stop_timeout_seconds):
                log.error("%d records still in the spool %s", self.journal.spooled(), self.journal.spool_path)
        if self.run_id is not None:
            self._quietly(self.repo.finish_run, self.run_id, outcome.reason)
        if self.bot_id is not None and hasattr(self, "repo"):
            self._quietly(self.repo.set_status, self.bot_id, outcome.db_status,
                          None if outcome.code == EXIT_OK else outcome.reason)
        if hasattr(self, "resource"):
            self._patch_status(final_feed_state="DISCONNECTED", force=True)
        if self.lease is not None and outcome.code != EXIT_LEASE_LOST:
            self._quietly(self.repo.release_lease, self.lease.lease)
        if self.health is not None:
            self.health.stop()

    @staticmethod
    def _quietly(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.warning("%s failed during shutdown: %s", getattr(fn, "__name__", fn), exc)

    # ------------------------------------------------------------------------------- monitoring

    def _start_monitor(self) -> None:
        self._monitor = threading.Thread(target=self._monitor_data_feed, name="monitor", daemon=True)
        self._monitor.start()

    def _monitor_data_feed(self) -> None:
        """Heartbeat, lease, status and feed watch, every heartbeat interval."""
        interval = self.heartbeat_interval
        last_performance = time.monotonic()
        while True:
            self._monitor_beat = time.monotonic()
            self._heartbeat()
            self._watch_feed()
            self._daily_summary()
            if time.monotonic() - last_performance >= self.settings.performance_interval_seconds:
                last_performance = time.monotonic()
                self._record_performance()
            if self._idle_until_next_beat(interval):
                return

    def _idle_until_next_beat(self, interval: float) -> bool:
        """Wait for the next heartbeat; a fleet halt or resume is shown in status at once. True: stop."""
        deadline = time.monotonic() + interval
        while (left := deadline - time.monotonic()) > 0:
            if self._monitor_stop.wait(min(0.5, left)):
                return True
            if self.guard is not None and self.guard.changed.is_set():
                self.guard.changed.clear()
                self._patch_status()
        return False

    def _heartbeat(self) -> None:
        assert self.lease is not None
        try:
            self.lease.renew()
        except LeaseLost as exc:
            self.metrics.labels(self.metrics.lease).set(0)
            self.fail(RuntimeFailure(EXIT_LEASE_LOST, f"lease lost, trading stopped at once: {exc}"))
            return
        snap = self.snapshot
        feed = self._feed_status()
        metrics: dict[str, Any] = {"feed_state": feed}
        if snap is not None:
            metrics.update(equity=snap.equity, cash=snap.cash, pnl=self._pnl(snap), position=snap.position)
        status = {"LIVE": "running", "CONNBROKEN": "degraded"}.get(feed, "starting")
        try:
            self.repo.heartbeat(self.lease.lease, status=status, error_message=None, **metrics)
            self.metrics.labels(self.metrics.heartbeat).set(time.time())
        except LeaseLost as exc:
            self.fail(RuntimeFailure(EXIT_LEASE_LOST, f"lease lost, trading stopped at once: {exc}"))
            return
        except DB_ERRORS as exc:
            log.warning("heartbeat to the database failed: %s", type(exc).__name__)
        self._update_metrics(snap, feed)
        self._save_state()
        self._patch_status()

    def _watch_feed(self) -> None:
        """`_reconnect_data_feed` when the producer died or a LIVE feed went quiet too long."""
        if self.feed is None or self.feed.end_reason is not None:
            return
        lost = self._feed_lost_since
        if lost is not None and not self._feed_loss_told and \
                time.monotonic() - lost >= self.settings.feed_lost_notify_seconds:
            self._feed_loss_told = True
            self.tell("feed_lost", "Market data lost", [f"no data for {time.monotonic() - lost:.0f} s: "
                                                        f"{self.feed.state.reason}"], "warning")
        producer = self.feed.producer
        state = self.feed.state.snapshot()
        quiet_limit = 3 * self.tf_seconds + 10
        last_bar = state["last_bar_ms"] / 1000 if state["last_bar_ms"] else None
        stale = state["status"] == "LIVE" and last_bar is not None and time.time() - last_bar > quiet_limit
        if (producer is not None and not producer.is_alive()) or stale:
            self._reconnect_data_feed("producer died" if not stale else f"no bar for {quiet_limit:.0f} s")

    def _daily_summary(self) -> None:
        """At each UTC midnight: the day's equity, PnL and trades (an opt-in notification)."""
        snap, today = self.snapshot, datetime.now(UTC).date()
        if snap is None:
            return
        if self._day is None:
            self._day = (today, snap.equity, self.trade_count)
            return
        day, equity_start, trades_start = self._day
        if today != day:
            self.tell("daily_summary", f"Daily summary {day.isoformat()}", [
                f"equity {snap.equity:.2f} ({snap.equity - equity_start:+.2f} on the day)",
                f"trades {self.trade_count - trades_start}, position {snap.position:.8g}"])
            self._day = (today, snap.equity, self.trade_count)

    def _reconnect_data_feed(self, why: str) -> None:
        assert self.feed is not None
        log.warning("reconnecting the market data feed: %s", why)
        self.journal_event("feed_reconnect", f"reconnecting the market data feed: {why}", "warning")
        self.feed.restart_producer()

    def _record_performance(self) -> None:
        snap = self.snapshot
        if snap is None or self.journal is None:
            return
        self.peak_equity = max(self.peak_equity, snap.equity)
        drawdown = (self.peak_equity - snap.equity) / self.peak_equity if self.peak_equity else 0.0
        self.journal.performance(ts=datetime.now(UTC), equity=snap.equity, cash=snap.cash, pnl=self._pnl(snap),
                                 drawdown=drawdown, position=snap.position)

    def _pnl(self, snap: Snapshot) -> float:
        if self.baseline_equity is None:  # the first run of this bot: PnL counts from here, across runs
            self.baseline_equity = self.spec.broker.cash if self.spec.mode == "paper" else snap.equity
        return snap.equity - self.baseline_equity

    def _feed_status(self) -> str:
        return self.feed.state.snapshot()["status"] if self.feed is not None else "UNKNOWN"

    def _update_metrics(self, snap: Snapshot | None, feed: str) -> None:
        m = self.metrics
        m.set_feed_state(feed)
        if snap is not None:
            m.labels(m.equity).set(snap.equity)
            m.labels(m.pnl).set(self._pnl(snap))
            m.labels(m.position).set(snap.position)
            m.labels(m.halted).set(1 if snap.halted else 0)
        if self.feed is not None:
            state = self.feed.state.snapshot()
            if state["last_bar_ms"]:
                m.labels(m.last_bar).set(state["last_bar_ms"] / 1000)
        if self.journal is not None:
            m.labels(m.spooled).set(self.journal.spooled())

    def _patch_status(self, final_feed_state: str | None = None, force: bool = False) -> None:
        if self.lease is None or self.run_id is None:
            return
        snap = self.snapshot
        fleet_halt = self.guard.halted() if self.guard is not None else None
        status = build_runtime_status(
            heartbeat=datetime.now(UTC), feed_state=final_feed_state or self._feed_status(),
            equity=snap.equity if snap else self.spec.broker.cash, cash=snap.cash if snap else self.spec.broker.cash,
            pnl=self._pnl(snap) if snap else 0.0, position=snap.position if snap else 0.0,
            trade_count=self.trade_count, open_orders=snap.open_orders if snap else 0,
            generation=self.generation, lease_token=self.lease.lease.token, run_id=self.run_id,
            pod=self.settings.pod_name, halted=bool(fleet_halt or (snap and snap.halted)),
            halt_reason=fleet_halt or (snap.halt_reason if snap else None), message=self.message,
        )
        now = time.monotonic()
        with self._status_lock:
            if not force and not self.cadence.due(status, now):
                return
            try:
                self.resource.patch_runtime_status(status)
                self.cadence.sent(status, now)
            except Exception as exc:  # the API server may be away: keep trading, retry at the next beat
                log.warning("status patch failed (%s); will retry", type(exc).__name__)

    # --------------------------------------------------------------------------------- trading

    def client_order_id(self, ref: int) -> str:
        assert self.lease is not None
        return f"bt{self.bot_id}-{self.lease.lease.token}-{ref}"

    def order_gate(self, intent: OrderIntent) -> str | None:
        if self.stop_requested or self.failure:
            return "the runtime is stopping"
        assert self.guard is not None
        try:
            refusal = self.guard.check(intent, self.snapshot.position if self.snapshot else 0.0)
        except LeaseLost as exc:
            self.fail(RuntimeFailure(EXIT_LEASE_LOST, f"lease lost, trading stopped at once: {exc}"))
            return f"lease lost: {exc}"
        if refusal and refusal.startswith("exposure cap"):
            self.journal_event("exposure_cap", f"order refused: {refusal}", "warning")
        if refusal is None:
            log.info("order: %s %.8g (%s)", intent.side, intent.size, intent.reason)
        return refusal

    def on_order(self, order: Any) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        name = order.getstatusname().lower()
        executed = abs(order.executed.size)
        if order.status == order.Completed or (executed and order.status in (order.Canceled, order.Rejected)):
            self._record_trade(order)
            self._save_state()
            if self._flatten_on_start and not float(order.executed.psize):
                self._flatten_on_start = None  # closed: trade on
        if order.status in (order.Completed, order.Canceled, order.Rejected, order.Margin, order.Expired):
            self.metrics.labels(self.metrics.orders, status=name).inc()
        if order.status in (order.Rejected, order.Margin):
            reason = order.info.get("reject_reason") or name
            self.note(f"order rejected: {reason}")
            self.journal_event("order_rejected", f"order {order.ref} rejected: {reason}", "warning")
            self.tell("order_rejected", "Order rejected", [reason], "warning")

    def _record_trade(self, order: Any) -> None:
        assert self.journal is not None
        cid = order.info.get("client_order_id") or self.client_order_id(order.ref)
        exec_dt = bt.num2date(order.executed.dt).replace(tzinfo=UTC) if order.executed.dt else datetime.now(UTC)
        trade = TradeRecord(
            client_order_id=cid, exchange_order_id=order.info.get("exchange_order_id"),
            symbol=self.spec.market.symbol, side="buy" if order.isbuy() else "sell",
            amount=Decimal(str(abs(order.executed.size))), price=Decimal(str(order.executed.price)),
            fee=Decimal(str(order.executed.comm)), pnl=Decimal(str(order.executed.pnl)) if order.executed.pnl else None,
            executed_at=exec_dt, mode=self.spec.mode, run_id=self.run_id,
        )
        self.journal.trade(trade)
        self.trade_count += 1
        self._tell_fill(order, trade)
        self.metrics.labels(self.metrics.trades).inc()
        log.info("trade %s: %s %.8g @ %.8g", cid, trade.side, trade.amount, trade.price)

    def _tell_fill(self, order: Any, trade: TradeRecord) -> None:
        after = float(order.executed.psize)
        before = after - float(order.executed.size)
        fill = f"{trade.side} {float(trade.amount):.8g} @ {float(trade.price):.8g}, fee {float(trade.fee):.4g}"
        if not before and after:
            self.tell("position_opened", f"Position opened: {fill}", [f"position {after:.8g}"])
        elif before and not after:
            pnl = float(order.executed.pnl or 0.0) - float(order.executed.comm or 0.0)
            self.tell("position_closed", f"Position closed: {fill}, pnl {pnl:+.2f}", [f"pnl {pnl:+.2f}"])
        else:
            self.tell("order_filled", f"Order filled: {fill}", [f"position {after:.8g}"])

    def on_feed_status(self, status: str) -> None:
        previous, self._feed_state_seen = self._feed_state_seen, status
        if previous == status:
            return
        reason = self.feed.state.reason if self.feed is not None else None
        if status == "CONNBROKEN" and not self._feed_lost:
            self._feed_lost = True
            self._feed_lost_since = time.monotonic()
            self.journal_event("feed_lost", f"market data connection broken: {reason}", "warning")
        elif status == "LIVE" and self._feed_lost:
            self._feed_lost, self._feed_lost_since = False, None
            self.journal_event("feed_recovered", "market data is live again (gap backfilled)")
            if self._feed_loss_told:
                self._feed_loss_told = False
                self.tell("feed_recovered", "Market data is live again", ["the gap was backfilled"])
        elif status == "DISCONNECTED":
            self.journal_event("feed_stopped", f"market data stopped: {reason}", "error")

    def note(self, message: str) -> None:
        self.message = message[:500]

    def journal_event(self, type: str, message: str, severity: str = "info",
                      details: dict[str, Any] | None = None) -> None:
        if self.journal is not None:
            self.journal.event(type, message, severity, details)

    # ----------------------------------------------------------------------------------- probes

    def alive(self) -> tuple[bool, str]:
        monitor_ok = self._monitor is None or self._monitor.is_alive()
        beat_age = time.monotonic() - self._monitor_beat
        limit = 3 * self.heartbeat_interval + 30
        if not monitor_ok or beat_age > limit:
            return False, f"monitor stalled ({beat_age:.0f} s since the last heartbeat)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        feed = self._feed_status()
        if feed != "LIVE":
            return False, f"feed {feed}"
        if self.lease is None or not self.lease.held_locally():
            return False, "lease not held"
        return True, "ok"
