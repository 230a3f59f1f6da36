"""What `bot-operator bots`, `fleet list` and `fleet status` print: the fleet as the database holds it, as a
table for people or as JSON for scripts (`--output json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot_runtime.db.fleet import BotRef, FleetControls
from bot_runtime.db.repository import BotRepository
from bot_runtime.db.schema import ExposureCap
from bot_runtime.db.schema import TradingBot as BotRow


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def bot_name(row: BotRow) -> str:
    return row.external_ref or f"row {row.id} ({row.name})"


def _ref(row: BotRow) -> BotRef:
    namespace, _, name = (row.external_ref or "").partition("/")
    return BotRef(row.id, row.user_id, namespace, name)


def _cap_applies(cap: ExposureCap, row: BotRow) -> bool:
    if cap.scope == "user":
        return row.user_id is not None and cap.value == str(row.user_id)
    return cap.scope == "account" and cap.value == row.account_fingerprint


def _selected(rows: Sequence[BotRow], namespace: str | None) -> list[BotRow]:
    return [r for r in rows if not namespace or (r.external_ref or "").startswith(f"{namespace}/")]


def bots(repo: BotRepository, fleet: FleetControls, namespace: str | None, user_id: int | None) -> list[dict[str, Any]]:
    """Every bot row with the halts and caps that apply to it and its account claim."""
    halts, caps = fleet.active_halts(), fleet.caps()
    return [
        {
            "bot": bot_name(r),
            "id": r.id,
            "source": r.source,
            "user": r.user_id,
            "enabled": r.enabled,
            "mode": r.mode,
            "strategy": r.strategy_type,
            "exchange": r.exchange,
            "symbol": r.symbol,
            "status": r.status,
            "tradingState": r.trading_state,
            "lastHeartbeat": _time(r.last_heartbeat),
            "position": r.position,
            "pnl": r.pnl,
            "halts": [h.id for h in halts if h.applies_to(_ref(r))],
            "caps": [f"{c.scope}:{c.max_notional:g}" for c in caps if _cap_applies(c, r)],
            # the keyed fingerprint's head: enough to see two bots share an account, never the key
            "account": r.account_fingerprint[:12] if r.account_fingerprint else None,
            "error": r.error_message,
        }
        for r in _selected(repo.get_bots(user_id=user_id), namespace)
    ]


def fleet_controls(fleet: FleetControls) -> dict[str, Any]:
    return {
        "halts": [
            {
                "id": h.id,
                "scope": h.scope,
                "value": h.value,
                "mode": h.mode,
                "flatten": h.flatten,
                "reason": h.reason,
                "by": h.created_by,
                "at": _time(h.created_at),
            }
            for h in fleet.active_halts()
        ],
        "caps": [
            {"scope": c.scope, "value": c.value, "maxNotional": c.max_notional, "by": c.created_by}
            for c in fleet.caps()
        ],
    }


def positions(repo: BotRepository, namespace: str | None, user_id: int | None) -> list[dict[str, Any]]:
    """Per enabled bot: trading state, position, exposure and flatten progress."""
    return [
        {
            "bot": bot_name(r),
            "mode": r.mode,
            "status": r.status,
            "tradingState": r.trading_state,
            "position": r.position,
            "exposure": r.exposure,
            "lastFlattenAttempt": _time(r.flatten_attempt_at),
            "flattenError": r.flatten_error,
        }
        for r in _selected(repo.get_bots(user_id=user_id), namespace)
        if r.enabled
    ]


# ------------------------------------------------------------------------------------ printing


def _cell(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.8g}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def table(records: list[dict[str, Any]], columns: dict[str, str], empty: str) -> str:
    """`columns`: heading -> record key. Left-aligned, as wide as the widest cell."""
    if not records:
        return empty
    cells = [[_cell(r[key]) for key in columns.values()] for r in records]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(columns)]
    lines = [list(columns), *cells]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


BOT_COLUMNS = {
    "BOT": "bot",
    "ID": "id",
    "SOURCE": "source",
    "ENABLED": "enabled",
    "MODE": "mode",
    "STRATEGY": "strategy",
    "SYMBOL": "symbol",
    "STATUS": "status",
    "TRADING": "tradingState",
    "POSITION": "position",
    "PNL": "pnl",
    "HALTS": "halts",
    "CAPS": "caps",
    "ACCOUNT": "account",
}
STATUS_COLUMNS = {
    "BOT": "bot",
    "MODE": "mode",
    "STATUS": "status",
    "TRADING": "tradingState",
    "POSITION": "position",
    "EXPOSURE": "exposure",
    "LAST FLATTEN": "lastFlattenAttempt",
    "FLATTEN ERROR": "flattenError",
}


def controls_text(fleet: FleetControls) -> str:
    halts, caps = fleet.active_halts(), fleet.caps()
    lines = [f"halt {h.id}: {h.describe()}" + (" [flatten]" if h.flatten else "") for h in halts]
    lines += [f"cap {c.scope} {c.value[:12]}: {c.max_notional:g} (set by {c.created_by})" for c in caps]
    return "\n".join(lines) or "no halts, no caps: every bot trades within its own limits"
