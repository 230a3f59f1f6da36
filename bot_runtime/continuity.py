"""Continuity: a bot's trading state survives its pod.

At start the runtime learns what the previous runtime left (saved state in paper mode; the exchange,
reconciled, in live mode) and acts by `spec.onStart`: adopt the position (the strategy's exits keep
protecting it), flatten it, or halt until a person resumes the bot. While it runs, the state is
saved as it changes (fills, a new day, a new high), fenced by the lease token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from bot_runtime.db.fleet import SavedState
from bot_runtime.reconcile import StartReconciliation
from bot_runtime.strategies import RestoredPosition, Snapshot

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
        position = RestoredPosition(size, entry, saved.entry_time if same and saved else None,
                                    saved.high_since_entry if same and saved else entry) if size > DUST else None
        cash = None
        where = "on the exchange"
    else:
        position = (RestoredPosition(saved.position, saved.entry_price, saved.entry_time, saved.high_since_entry)
                    if saved is not None and saved.position > DUST else None)
        cash = saved.cash if saved is not None else None
        where = "in the saved state"
    action = on_start if position is not None else "adopt"
    if position is None:
        summary = f"onStart {on_start}: no position {where}" + (f"; cash {cash:.2f} restored" if cash else "")
    else:
        verb = {"adopt": "adopted", "flatten": "closing it", "halt": "halted until resumed"}[action]
        found_it = f"found position {position.size:.8g} @ {position.entry_price:.8g} {where}"
        summary = f"onStart {on_start}: {found_it}; {verb}"
    return StartPlan(position, cash, saved.realized_pnl if saved else 0.0,
                     saved.baseline_equity if saved else None, saved, action, summary)


def state_of(snapshot: Snapshot, baseline_equity: float) -> SavedState:
    entry_time = snapshot.entry_time
    if entry_time is not None and entry_time.tzinfo is None:  # bar times are naive UTC
        entry_time = entry_time.replace(tzinfo=UTC)
    return SavedState(
        cash=snapshot.cash, position=snapshot.position, entry_price=snapshot.entry_price,
        entry_time=entry_time, high_since_entry=snapshot.high_since_entry,
        realized_pnl=snapshot.realized_pnl, day=snapshot.day, day_start_equity=snapshot.day_start_equity,
        baseline_equity=baseline_equity,
    )
