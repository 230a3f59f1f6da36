"""What a run reports, shared between Cerebro's thread (which writes it) and the monitor, status and
order threads (which read it): the strategy's last snapshot, the trade count and the PnL baseline."""

from __future__ import annotations

from dataclasses import dataclass

from bot_runtime.strategies import Snapshot


@dataclass
class BotFigures:
    paper_cash: float | None  # paper mode: PnL of a first run counts from the spec's cash
    snapshot: Snapshot | None = None
    trade_count: int = 0
    baseline_equity: float | None = None  # PnL counts from it, across runs (restored at start)
    peak_equity: float = 0.0

    def baseline(self, snap: Snapshot) -> float:
        """Where PnL counts from: the first run's start (the spec's cash in paper mode), across runs."""
        if self.baseline_equity is None:
            self.baseline_equity = self.paper_cash if self.paper_cash is not None else snap.equity
        return self.baseline_equity

    def pnl(self, snap: Snapshot) -> float:
        return snap.equity - self.baseline(snap)

    def drawdown(self, snap: Snapshot) -> float:
        self.peak_equity = max(self.peak_equity, snap.equity)
        return (self.peak_equity - snap.equity) / self.peak_equity if self.peak_equity else 0.0
