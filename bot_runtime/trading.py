"""Trading: Cerebro with the bot's feed, broker (paper or live) and strategy, wired to the run
through StrategyHooks. Only Cerebro's thread touches Backtrader objects; other threads read the
snapshot the strategy publishes each bar."""

from __future__ import annotations

import logging
from typing import Any

from bot_runtime.brokers.ccxt_broker import CcxtBroker
from bot_runtime.brokers.paper import paper_broker
from bot_runtime.btcompat import bt
from bot_runtime.context import RunContext
from bot_runtime.continuity import Continuity
from bot_runtime.control import EXIT_FATAL, EXIT_OK, Outcome, RunControl, RuntimeFailure
from bot_runtime.figures import BotFigures
from bot_runtime.gate import OrderGate
from bot_runtime.market import Market
from bot_runtime.monitor import FeedWatch
from bot_runtime.news import BotNews
from bot_runtime.orders import OrderPath
from bot_runtime.settlement import Settlement, StartReconciliation
from bot_runtime.strategies import Snapshot, StrategyHooks, strategy_handler

log = logging.getLogger("bot_runtime")


class RuntimeHooks(StrategyHooks):
    """The strategy's line to the run (called on Cerebro's thread)."""

    def __init__(
        self,
        orders: OrderPath,
        figures: BotFigures,
        feed: FeedWatch,
        news: BotNews,
        gate: OrderGate,
        continuity: Continuity,
        broker: Any,
    ) -> None:
        self.orders, self.figures, self.feed, self.news = orders, figures, feed, news
        self.gate, self.continuity, self.broker = gate, continuity, broker

    def on_refused(self, order: Any, reason: str) -> None:
        super().on_refused(order, reason)
        self.orders.refused(order, reason)

    def on_order(self, order: Any) -> None:
        self.orders.on_order(order)

    def on_bar(self, snapshot: Snapshot) -> None:
        self.figures.snapshot = snapshot
        self.continuity.save()  # a new day, a new high since entry

    def on_feed_status(self, status: str) -> None:
        self.feed.on_status(status)

    def on_halt(self, reason: str) -> None:
        self.news.note(reason)
        self.news.record("risk_halt", reason, "warning")
        self.news.tell("daily_loss_halt", "Trading halted: daily loss limit", [reason], "error")

    def on_start(self, strategy: Any) -> None:
        self.continuity.restore(strategy, self.broker)


def settle_live_start(ctx: RunContext, market: Market, news: BotNews) -> StartReconciliation:
    """What earlier runs left at the venue, settled; the position rebuilt from the bot's own fills."""
    settings = ctx.settings
    found = Settlement(
        ctx.repo,
        market.exchange,
        market.venue,
        ctx.bot_id,
        ctx.spec.market.symbol,
        market.rules,
        window=settings.not_found_window_seconds,
        answers=settings.not_found_answers,
    ).run()
    news.record("reconciled", found.summary(), "warning" if found.drift else "info")
    return found


def build_broker(
    ctx: RunContext,
    market: Market,
    orders: OrderPath,
    gate: OrderGate,
    found: StartReconciliation | None,
    control: RunControl,
) -> Any:
    """The paper or live broker, behind the order gate; a flatten halt closes through it at once."""
    if found is None:
        broker = paper_broker(
            ctx.spec.broker,
            gate,
            client_id=orders.client_order_id,
            on_lease_lost=orders.lease_lost,
            rules=market.rules,  # the venue's lot rules when its market is known, as the live broker has them
        )
        gate.on_flatten = broker.flattener.ask
        return broker
    settings = ctx.settings
    broker = CcxtBroker(
        exchange=market.exchange,
        venue=market.venue,
        symbol=ctx.spec.market.symbol,
        journal=ctx.journal,
        client_id=orders.client_order_id,
        ledger=found.ledger,
        rules=market.rules,
        pacer=market.pacer,
        gate=gate,
        on_fatal=lambda reason: control.fail(RuntimeFailure(EXIT_FATAL, reason)),
        on_lease_lost=orders.lease_lost,
        run_id=ctx.run_id,
        poll_interval=settings.order_poll_seconds,
        balance_interval=settings.balance_poll_seconds,
        not_found_window=settings.not_found_window_seconds,
        not_found_answers=settings.not_found_answers,
    )
    broker.setcommission(commission=ctx.spec.broker.commission)
    broker.adopted_stop = found.resting_stop
    gate.on_flatten = broker.flattener.ask
    return broker


def build_cerebro(ctx: RunContext, market: Market, broker: Any, hooks: RuntimeHooks) -> Any:
    klass, params = strategy_handler.parse_params(ctx.spec.strategy.type, ctx.spec.strategy.params)
    # Live feeds switch preload/runonce off; quicknotify delivers fills at once, not a bar later.
    cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
    cerebro.adddata(market.feed)
    cerebro.broker = broker
    cerebro.addstrategy(klass, config=params, risk=ctx.spec.risk, hooks=hooks, timeframe_seconds=int(ctx.tf_seconds))
    return cerebro


def trade(ctx: RunContext, cerebro: Any, market: Market, control: RunControl, news: BotNews) -> Outcome:
    """Run Cerebro until it stops; say why it stopped."""
    spec = ctx.spec
    log.info("running %s on %s %s (%s)", spec.strategy.type, spec.market.exchange, spec.market.symbol, spec.mode)
    news.tell(
        "started",
        f"Started {spec.strategy.type} ({spec.mode})",
        [
            f"{spec.market.exchange} {spec.market.symbol} {spec.market.timeframe}",
            f"equity {cerebro.broker.getvalue():.2f}",
        ],
    )
    cerebro.run()
    if control.failure is not None:
        return control.failure.outcome()
    if control.stop_requested is not None:
        return Outcome(EXIT_OK, f"stopped by {control.stop_requested}", "stopped")
    reason = market.feed.end_reason or "the feed ended"
    if reason == "replay finished":
        return Outcome(EXIT_OK, reason, "stopped")
    return Outcome(EXIT_FATAL, f"market data feed stopped: {reason}", "error")
