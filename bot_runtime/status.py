"""What the runtime reports in `status.runtime`, and when.

The database row gets every heartbeat. The resource is patched only when something a user sees
changes (feed state, position, trades, open orders, halts, the run), and otherwise at most once a
minute: a fleet of a thousand bots must not turn heartbeats into etcd writes (as node heartbeats
once did, before Leases).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# status.runtime keys whose change is worth a patch at once
VISIBLE = ("feedState", "position", "tradeCount", "openOrders", "halted", "haltReason", "generation",
           "leaseToken", "runId", "pod", "message")
QUIET_PATCH_SECONDS = 60.0


def build_runtime_status(*, heartbeat: datetime, feed_state: str, equity: float, cash: float, pnl: float,
                         position: float, trade_count: int, open_orders: int, generation: int | None,
                         lease_token: int, run_id: int, pod: str | None, halted: bool, halt_reason: str | None,
                         message: str | None) -> dict[str, Any]:
    return {
        "lastHeartbeat": heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "feedState": feed_state,
        "equity": round(equity, 8),
        "cash": round(cash, 8),
        "pnl": round(pnl, 8),
        "position": round(position, 12),
        "tradeCount": trade_count,
        "openOrders": open_orders,
        "generation": generation,
        "leaseToken": lease_token,
        "runId": run_id,
        "pod": pod,
        "halted": halted,
        "haltReason": halt_reason,  # None clears it in a merge patch
        "message": message,
    }


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
