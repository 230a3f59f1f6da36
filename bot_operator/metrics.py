"""The operator's Prometheus metrics (one registry per process)."""

from __future__ import annotations

from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot_runtime.api.models import Phase

PHASES: tuple[str, ...] = get_args(Phase)


class OperatorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.bots = Gauge("botops_operator_bots", "TradingBots by phase", ["phase"], registry=r)
        self.reconciles = Counter("botops_operator_reconciles", "Reconcile passes by result", ["result"], registry=r)
        self.reconcile_seconds = Histogram(
            "botops_operator_reconcile_duration_seconds",
            "Reconcile duration",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.reconcile_errors = Counter("botops_operator_reconcile_errors", "Reconciles that failed", registry=r)
        self.api_writes = Counter(
            "botops_operator_api_writes", "Kubernetes API writes", ["component", "verb"], registry=r
        )
        self.syncs = Counter("botops_operator_syncs", "Database sync passes", ["trigger"], registry=r)
        self.sync_lag = Gauge(
            "botops_operator_sync_lag_seconds",
            "Seconds from a trading_bots change to its resource being written (last sync)",
            registry=r,
        )
        self.sync_loaded = Gauge("botops_operator_sync_bots", "Bots in the last sync", ["state"], registry=r)
        self.leader = Gauge("botops_operator_leader", "1 on the replica that acts", registry=r)

    def set_phases(self, counts: dict[str, int]) -> None:
        for phase in (*PHASES, "Unknown"):
            self.bots.labels(phase=phase).set(counts.get(phase, 0))
