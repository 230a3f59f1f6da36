"""Continuity: a bot's trading state survives its pod.

At start the runtime learns what the previous runtime left (saved state in paper mode; the exchange,
reconciled, in live mode) and acts by `spec.onStart`: adopt the position (the strategy's exits keep
protecting it), flatten it, or halt until a person resumes the bot. While it runs, the state is
saved as it changes (fills, a new day, a new high), fenced by the lease token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from bot_runtime.btcompat import bt
from bot_runtime.context import RunContext
from bot_runtime.db.fleet import SavedState
from bot_runtime.figures import BotFigures
from bot_runtime.news import BotNews
from bot_runtime.settlement import StartReconciliation
from bot_runtime.strategies import RestoredPosition, Snapshot

log = logging.getLogger("bot_runtime")

DUST = 1e-12


@dataclass(frozen=True)
class StartPlan:
    position: RestoredPosition | None
    cash: float | None  # paper: the cash to restore (live: the exchange's)
    realized_pnl: float
    baseline_equity: float | None
    saved: SavedState | None
    action: str  # what spec.onStart asks for this start: adopt, flatten or halt (no position: adopt)
    summary: str


def plan_start(mode: str, on_start: str, saved: SavedState | None, found: StartReconciliation | None) -> StartPlan:
    """Pure: what to restore, and what to do with the position found."""
    if mode == "live":
        size = found.position if found is not None else 0.0
        same = saved is not None and abs(saved.position - size) <= max(DUST, 1e-9 * abs(size))
        entry = saved.entry_price if same and saved else (found.entry_price if found else 0.0)
        position = (
            RestoredPosition(
                size,
                entry,
                saved.entry_time if same and saved else None,
                saved.high_since_entry if same and saved else entry,
            )
            if size > DUST
            else None
        )
        cash = None
        where = "on the exchange"
    else:
        position = (
            RestoredPosition(saved.position, saved.entry_price, saved.entry_time, saved.high_since_entry)
            if saved is not None and saved.position > DUST
            else None
        )
        cash = saved.cash if saved is not None else None
        where = "in the saved state"
    action = on_start if position is not None else "adopt"
    if position is None:
        summary = f"onStart {on_start}: no position {where}" + (f"; cash {cash:.2f} restored" if cash else "")
    else:
        verb = {"adopt": "adopted", "flatten": "closing it", "halt": "halted until resumed"}[action]
        found_it = f"found position {position.size:.8g} @ {position.entry_price:.8g} {where}"
        summary = f"onStart {on_start}: {found_it}; {verb}"
    return StartPlan(
        position,
        cash,
        saved.realized_pnl if saved else 0.0,
        saved.baseline_equity if saved else None,
        saved,
        action,
        summary,
    )


def kept_paper_account(spec_cash: float, saved: SavedState | None, ref: str) -> str | None:
    """Paper: a sentence when the saved account continues although spec.broker.cash no longer matches the cash it
    started with (its PnL history stays whole; starting over is a person's decision), or None."""
    if saved is None or saved.baseline_equity is None or abs(saved.baseline_equity - spec_cash) < 1e-9:
        return None
    return (
        f"spec.broker.cash is {spec_cash:.2f} but this paper bot continues its saved account, which started with "
        f"{saved.baseline_equity:.2f} (cash now {saved.cash:.2f}), so its profit and loss stay whole; to start over "
        f"from spec.broker.cash, run `bot-operator bot reset-paper {ref}`."
    )


def state_of(snapshot: Snapshot, baseline_equity: float) -> SavedState:
    entry_time = snapshot.entry_time
    if entry_time is not None and entry_time.tzinfo is None:  # bar times are naive UTC
        entry_time = entry_time.replace(tzinfo=UTC)
    return SavedState(
        cash=snapshot.cash,
        position=snapshot.position,
        entry_price=snapshot.entry_price,
        entry_time=entry_time,
        high_since_entry=snapshot.high_since_entry,
        realized_pnl=snapshot.realized_pnl,
        day=snapshot.day,
        day_start_equity=snapshot.day_start_equity,
        baseline_equity=baseline_equity,
        daily_halt_reason=snapshot.halt_reason,
    )


class Continuity:
    """A run's side of continuity: what it restores at start, and the state it saves as it trades."""

    def __init__(self, ctx: RunContext, news: BotNews, figures: BotFigures) -> None:
        self.ctx, self.news, self.figures = ctx, news, figures
        self.saved = ctx.fleet.load_state(ctx.bot_id)
        self.plan: StartPlan | None = None
        self.differs: str | None = None  # what the runtime does other than the spec says (status.runtime.differs)
        self.strategy: Any = None

    def decide_start(self, found: StartReconciliation | None) -> StartPlan:
        """spec.onStart's answer to what the previous runtime left (said in status and history)."""
        plan = plan_start(self.ctx.spec.mode, self.ctx.spec.on_start, self.saved, found)
        self.plan = plan
        if self.ctx.spec.mode == "paper":
            self.differs = kept_paper_account(self.ctx.spec.broker.cash, self.saved, self.ctx.bot.ref)
            if self.differs:
                log.warning("%s", self.differs)
        self.figures.baseline_equity = plan.baseline_equity
        log.info("%s", plan.summary)
        self.news.record(
            "on_start",
            plan.summary,
            "warning" if plan.action == "halt" else "info",
            {"action": plan.action, "position": plan.position.size if plan.position else 0.0},
        )
        self.news.note(plan.summary)
        if plan.action == "halt" and not [h for h in self.ctx.fleet.active_halts(self.ctx.bot) if h.scope == "bot"]:
            self.ctx.fleet.halt("bot", self.ctx.bot.ref, plan.summary, by=f"onStart ({self.ctx.holder})")
        return plan

    def restore(self, strategy: Any, broker: Any) -> None:
        """Before the first bar (Cerebro's thread): put back the position, cash and counters."""
        self.strategy = strategy
        plan = self.plan
        if plan is None:
            return
        if plan.position is not None:
            if self.ctx.spec.mode == "live":
                broker.adopt_position(strategy.data, plan.position.size, plan.position.entry_price)
            else:
                broker.positions[strategy.data] = bt.Position(size=plan.position.size, price=plan.position.entry_price)
        if plan.cash is not None:
            broker.cash = plan.cash
        saved = plan.saved
        strategy.restore(
            plan.position or RestoredPosition(0.0, 0.0),
            plan.realized_pnl,
            saved.day if saved else None,
            saved.day_start_equity if saved else None,
            saved.daily_halt_reason if saved else None,
        )
        if plan.action == "flatten":
            broker.flattener.ask(plan.summary)  # now, bars or no bars; trading goes on once flat

    def save(self) -> None:
        """The trading state, from what happened (Cerebro's thread: a fill, a new day, a new high), never
        from an older snapshot; fenced by the lease token. It is durable before trading goes on (database,
        else the spool), so a runtime killed right after a fill restarts with that fill."""
        if self.strategy is None:
            return
        snap = self.strategy.snapshot()
        state = state_of(snap, self.figures.baseline(snap))
        if state != self.saved:
            self.saved = state
            self.ctx.journal.state_now(self.ctx.lease.lease.token, state)
