"""The total mapping between a trading_bots row and a TradingBot spec.

Rows keep the original system's columns (strategy_type, strategy_params, exchange, symbol,
timeframe, mode) plus JSON columns for the rest, in snake_case. `spec_to_row` then `row_to_spec`
gives back the same spec (a hypothesis test holds us to it); messages about a row name its columns.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from bot_runtime.api.models import TradingBotSpec
from bot_runtime.api.results import ValidationResult
from bot_runtime.api.validation import validate_spec

MARKET_COLUMNS = ("exchange", "symbol", "timeframe")
MAX_NAME = 253
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")

# spec path prefix -> row column (longest prefix first)
_SPEC_TO_COLUMN = [
    ("spec.strategy.type", "strategy_type"),
    ("spec.strategy.params", "strategy_params"),
    ("spec.strategy", "strategy_type"),
    ("spec.market.exchange", "exchange"),
    ("spec.market.symbol", "symbol"),
    ("spec.market.timeframe", "timeframe"),
    ("spec.market", "market_config"),
    ("spec.mode", "mode"),
    ("spec.broker", "broker_config"),
    ("spec.risk", "risk_config"),
    ("spec.runtime", "runtime_config"),
    ("spec.restart_policy", "runtime_config.restart_policy"),
    ("spec.rollout", "runtime_config.rollout"),
    ("spec.on_start", "runtime_config.on_start"),
    ("spec.allow_shared_account", "runtime_config.allow_shared_account"),
    ("spec.notifications", "notifications_config"),
    ("spec.suspended", "suspended"),
    ("spec.description", "description"),
]


class RowLike(Protocol):
    description: str | None
    strategy_type: str
    strategy_params: dict[str, Any]
    exchange: str
    symbol: str
    timeframe: str
    mode: str
    market_config: dict[str, Any]
    broker_config: dict[str, Any]
    risk_config: dict[str, Any]
    runtime_config: dict[str, Any]
    notifications_config: dict[str, Any] | None
    suspended: bool


def _snake(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return data


def spec_to_row(spec: TradingBotSpec) -> dict[str, Any]:
    """Column values for a spec (everything but identity, source and status columns)."""
    market = _snake(spec.market)
    runtime = _snake(spec.runtime)
    runtime["restart_policy"] = _snake(spec.restart_policy)
    runtime["rollout"] = _snake(spec.rollout)
    runtime["on_start"] = spec.on_start
    runtime["allow_shared_account"] = spec.allow_shared_account
    return {
        "description": spec.description,
        "strategy_type": spec.strategy.type,
        "strategy_params": spec.strategy.params,
        **{col: market.pop(col) for col in MARKET_COLUMNS},
        "mode": spec.mode,
        "market_config": market,
        "broker_config": _snake(spec.broker),
        "risk_config": _snake(spec.risk),
        "runtime_config": runtime,
        "notifications_config": _snake(spec.notifications) if spec.notifications else None,
        "suspended": spec.suspended,
    }


def row_to_raw_spec(row: RowLike) -> dict[str, Any]:
    """The spec a row describes, unvalidated (Python field names; pydantic accepts them)."""
    runtime = dict(row.runtime_config or {})
    restart_policy = runtime.pop("restart_policy", {})
    continuity: dict[str, Any] = {
        key: runtime.pop(key) for key in ("rollout", "on_start", "allow_shared_account") if key in runtime
    }
    raw: dict[str, Any] = {
        "strategy": {"type": row.strategy_type, "params": row.strategy_params or {}},
        "market": {
            **(row.market_config or {}),
            "exchange": row.exchange,
            "symbol": row.symbol,
            "timeframe": row.timeframe,
        },
        "mode": row.mode,
        "broker": row.broker_config or {},
        "risk": row.risk_config or {},
        "runtime": runtime,
        "restart_policy": restart_policy,
        **continuity,
        "suspended": bool(row.suspended),
    }
    if row.description is not None:
        raw["description"] = row.description
    if row.notifications_config:
        raw["notifications"] = row.notifications_config
    return raw


def row_message(message: str) -> str:
    """Rewrite a spec-path message into the row's column names (and snake_case keys)."""
    path, sep, rest = message.partition(": ")
    if not sep:
        return message
    path = _CAMEL.sub(r"_\1", path).lower()
    for prefix, column in _SPEC_TO_COLUMN:
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
            return f"{column}{path[len(prefix) :]}: {rest}"
    return message


def row_to_spec(row: RowLike) -> tuple[TradingBotSpec | None, ValidationResult]:
    """Validate a row as a spec; messages name the row's columns."""
    spec, result = validate_spec(row_to_raw_spec(row))
    return spec, ValidationResult(
        errors=[row_message(m) for m in result.errors],
        warnings=[row_message(m) for m in result.warnings],
    )


def validate_row(row: Any) -> tuple[TradingBotSpec | None, ValidationResult]:
    """The checks of a whole row: its identity columns, then its spec."""
    result = ValidationResult()
    name = (row.name or "").strip()
    if not name:
        result.errors.append("name: must not be empty (it names the bot in the cluster)")
    elif len(row.name) > MAX_NAME:
        result.errors.append(f"name: {len(row.name)} characters; at most {MAX_NAME} are allowed")
    if getattr(row, "source", "database") == "database" and row.user_id is None:
        result.warnings.append("user_id: not set; a --user-id sync will not select this bot")
    spec, spec_result = row_to_spec(row)
    result.extend(spec_result)
    return (spec if result.ok else None), result


def row_configuration(row: Any) -> tuple[Any, ...]:
    """What a row configures, without what runtimes write into it (heartbeats, figures, updated_at): what the
    sync and the reconcile decide from, so an unchanged configuration is not validated again."""
    configs = [row.strategy_params, row.market_config, row.broker_config, row.risk_config, row.runtime_config]
    return (
        row.id,
        row.enabled,
        row.name,
        row.external_ref,
        row.user_id,
        row.description,
        row.strategy_type,
        row.exchange,
        row.symbol,
        row.timeframe,
        row.mode,
        row.suspended,
        json.dumps([*configs, row.notifications_config], sort_keys=True, default=str),
    )
