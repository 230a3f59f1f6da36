"""StrategyInstance: one bot's run, from start to stop.

The story of a run: read the bot, reach the database, take the lease and open the run
(bot_runtime.startup); connect the market (bot_runtime.market); settle what a previous runtime left and
decide what to do with it (bot_runtime.continuity); trade through Cerebro (bot_runtime.trading), with the
order gate and order path beside it (bot_runtime.gate, bot_runtime.orders) and the monitor thread
heartbeating and reporting (bot_runtime.monitor, bot_runtime.status); stop, each part in reverse order
(bot_runtime.shutdown).

Threads: Cerebro runs on the main thread (signals arrive there); the monitor thread heartbeats,
renews the lease, patches status and watches the feed; the journal thread writes history; the fleet
listener wakes on halts; feed and broker pollers talk to the exchange.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from typing import Any

from bot_runtime.context import RunContext
from bot_runtime.continuity import Continuity
from bot_runtime.control import EXIT_ERROR, EXIT_OK, Outcome, RunControl, RuntimeFailure
from bot_runtime.figures import BotFigures
from bot_runtime.gate import OrderGate
from bot_runtime.health import HealthServer, RuntimeMetrics
from bot_runtime.market import open_market
from bot_runtime.monitor import FeedWatch, Monitor
from bot_runtime.news import BotNews
from bot_runtime.orders import OrderPath
from bot_runtime.risk import RiskGate
from bot_runtime.settings import RuntimeSettings
from bot_runtime.shutdown import Shutdown
from bot_runtime.startup import open_run
from bot_runtime.status import StatusReporter
from bot_runtime.trading import RuntimeHooks, build_broker, build_cerebro, settle_live_start, trade

log = logging.getLogger("bot_runtime")


class StrategyInstance:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.holder = f"{settings.pod_name}/{uuid.uuid4().hex[:12]}"
        self.control = RunControl()
        self.metrics = RuntimeMetrics(settings.bot_name, settings.namespace)

    def start(self) -> int:
        """Run the bot until it is stopped; return the process exit code."""
        shutdown = Shutdown()
        outcome = Outcome(EXIT_ERROR, "did not start", "error")
        # first: a pod deleted while the runtime starts gets a graceful stop (the journal flushed), not death
        self._install_signal_handlers()
        try:
            outcome = self._start_and_trade(shutdown)
        except RuntimeFailure as failure:
            outcome = failure.outcome()
        except Exception as exc:  # the reason reaches the database row and the resource status
            log.exception("runtime failed")
            outcome = Outcome(EXIT_ERROR, f"{type(exc).__name__}: {exc}", "error")
        finally:
            log.log(
                logging.INFO if outcome.code == EXIT_OK else logging.ERROR, "exit %s: %s", outcome.code, outcome.reason
            )
            shutdown.run(outcome)
        return outcome.code

    def _start_and_trade(self, shutdown: Shutdown) -> Outcome:
        ctx = open_run(self.settings, self.holder, self.control, self.metrics, shutdown)
        news = BotNews(ctx)
        news.start_notifier(shutdown)
        figures = BotFigures(
            ctx.spec.broker.cash if ctx.spec.mode == "paper" else None, trade_count=ctx.trades_at_start
        )
        status = StatusReporter(ctx, figures, news)
        shutdown.on_stop("reporting the final status", lambda outcome: self._final_status(status, news, outcome))

        market = open_market(ctx)
        feed = FeedWatch(ctx, market.feed, news)
        continuity = Continuity(ctx, news, figures)
        gate = OrderGate(ctx.fleet, ctx.lease, ctx.bot, market.account, RiskGate(ctx.spec.risk), self.control)
        status.feed_state, status.trading_state = feed.state, gate.state
        orders = OrderPath(ctx, self.control, gate, news, figures, continuity, market.venue)
        found = settle_live_start(ctx, market, news) if ctx.spec.mode == "live" else None
        broker = build_broker(ctx, market, orders, gate, found, self.control)
        status.flatten = lambda: broker.flattener.state.describe()
        continuity.decide_start(found)
        status.differs = lambda: continuity.differs
        self._listen_for_halts(ctx, gate, shutdown)
        cerebro = build_cerebro(
            ctx, market, broker, RuntimeHooks(orders, figures, feed, news, gate, continuity, broker)
        )
        self.control.attach(cerebro)
        monitor = Monitor(ctx, self.control, figures, news, status, feed, gate, continuity)
        monitor.flatten = lambda: broker.flattener.state
        if found is not None:  # the live broker: an ambiguous order and a position drift are said in status
            monitor.trading_notice = broker.unresolved
            monitor.drift = status.drift = lambda: broker.drift
        self._serve_health(ctx, monitor, feed, shutdown)
        monitor.start()
        shutdown.on_stop("stopping the monitor", lambda outcome: monitor.stop())
        return trade(ctx, cerebro, market, self.control, news)

    @staticmethod
    def _listen_for_halts(ctx: RunContext, gate: OrderGate, shutdown: Shutdown) -> None:
        stop = threading.Event()
        gate.refresh()
        threading.Thread(
            target=gate.listen, args=(ctx.settings.database_url, stop), name="fleet-listener", daemon=True
        ).start()
        shutdown.on_stop("stopping the fleet listener", lambda outcome: stop.set())

    def _serve_health(self, ctx: RunContext, monitor: Monitor, feed: FeedWatch, shutdown: Shutdown) -> None:
        def ready() -> tuple[bool, str]:
            state = feed.state()
            if state != "LIVE":
                return False, f"feed {state}"
            if not ctx.lease.held_locally():
                return False, "lease not held"
            return True, "ok"

        health = HealthServer(self.settings.health_port, self.metrics.registry, monitor.alive, ready).start()
        log.info("metrics, /healthz and /readyz on port %s", health.port)
        shutdown.on_stop("stopping the health server", lambda outcome: health.stop())

    @staticmethod
    def _final_status(status: StatusReporter, news: BotNews, outcome: Outcome) -> None:
        if outcome.code != EXIT_OK or news.message is None:
            news.note(outcome.reason)
        status.report(final_feed_state="DISCONNECTED", force=True)

    def _install_signal_handlers(self) -> None:
        def handle(signum: int, frame: Any) -> None:
            self.control.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
