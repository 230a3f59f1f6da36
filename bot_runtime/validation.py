"""Semantic validation of a TradingBot spec: what the apiserver's schema cannot say.

Used by the operator (manifests and rows), the syncer (rows, through the repository) and the
runtime (before it trades). Every message names the field, says why, and what is allowed.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import ValidationError

from bot_runtime.api.exchanges import EXCHANGES
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.strategies import strategy_handler
from bot_runtime.strategies.registry import ValidationResult

# What a pattern means, in words, for the fields whose pattern alone would puzzle a user.
HINTS = {
    "spec.market.symbol": "a unified ccxt symbol in capitals, BASE/QUOTE like BTC/USDT (or BASE/QUOTE:SETTLE)",
    "spec.market.exchange": "a lower-case ccxt exchange id like binance or kraken",
    "spec.strategy.type": "a registered strategy name like CustomStrategy",
    "spec.broker.credentialsSecretRef.name": "a Secret name (lower-case letters, digits and '-')",
    "spec.notifications.secretRef.name": "a Secret name (lower-case letters, digits and '-')",
}


def _loc(loc: tuple[Any, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def schema_errors(exc: ValidationError) -> list[str]:
    messages = []
    for err in exc.errors():
        path = _loc(tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not part of the TradingBot API; check its spelling and nesting)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif isinstance(err.get("input"), (str, int, float, bool)):
            msg = f"{msg} (got {err['input']!r})"
        hint = HINTS.get(path)
        if hint and err["type"] == "string_pattern_mismatch":
            msg = f"must be {hint} (got {err['input']!r})"
        messages.append(f"{path}: {msg}")
    return messages


def parse_spec(raw: dict[str, Any]) -> tuple[TradingBotSpec | None, list[str]]:
    try:
        return TradingBotSpec.model_validate(raw), []
    except ValidationError as exc:
        return None, schema_errors(exc)


def validate_spec(raw: dict[str, Any] | TradingBotSpec) -> tuple[TradingBotSpec | None, ValidationResult]:
    """Parse and check a spec; the spec is returned only when it has no errors."""
    if isinstance(raw, TradingBotSpec):
        spec: TradingBotSpec | None = raw
        errors: list[str] = []
    else:
        spec, errors = parse_spec(raw)
    result = ValidationResult(errors=errors)
    if spec is None:
        return None, result
    result.extend(semantic_checks(spec))
    return (spec if result.ok else None), result


def semantic_checks(spec: TradingBotSpec) -> ValidationResult:
    result = ValidationResult()
    err, warn = result.errors.append, result.warnings.append
    market, live = spec.market, spec.mode == "live"

    if market.exchange not in EXCHANGES:
        close = difflib.get_close_matches(market.exchange, sorted(EXCHANGES), n=3)
        suggestion = f"; did you mean {', '.join(close)}?" if close else ""
        err(f"spec.market.exchange: {market.exchange!r} is not a ccxt exchange id{suggestion} "
            f"(ccxt knows {len(EXCHANGES)} exchanges, e.g. binance, kraken, coinbase)")
    if market.feed == "csv" and not market.csv_path:
        err("spec.market.csvPath: required when spec.market.feed is csv (a CSV file with "
            "timestamp,open,high,low,close,volume rows)")
    if market.feed != "csv" and market.csv_path:
        warn(f"spec.market.csvPath: ignored because spec.market.feed is {market.feed}")
    if live and market.feed != "ccxt":
        err(f"spec.market.feed: live mode trades real money and needs the exchange's data (ccxt); "
            f"{market.feed} is allowed in paper mode only")
    if live and spec.broker.credentials_secret_ref is None:
        err("spec.broker.credentialsSecretRef: required in live mode (a Secret with the exchange API key and "
            "secret; credentials are never written into the resource)")
    if not live and spec.broker.credentials_secret_ref is not None:
        warn("spec.broker.credentialsSecretRef: ignored in paper mode (no orders reach the exchange)")
    if live and spec.risk.max_daily_loss is None:
        warn("spec.risk.maxDailyLoss: not set; a live bot without a daily loss limit can lose without bound")
    policy = spec.restart_policy
    if policy.max_delay_seconds < policy.initial_delay_seconds:
        err(f"spec.restartPolicy.maxDelaySeconds: {policy.max_delay_seconds:g} is below initialDelaySeconds "
            f"{policy.initial_delay_seconds:g}; the cap must be at least the first delay")

    strategy = strategy_handler.validate_strategy_config(spec.strategy.type, spec.strategy.params, spec.mode)
    result.extend(strategy)
    if strategy.ok:
        klass, params = strategy_handler.parse_params(spec.strategy.type, spec.strategy.params)
        lookback = klass.max_lookback(params)
        if market.warmup_bars < lookback:
            warn(f"spec.market.warmupBars: {market.warmup_bars} is below the strategy's lookback of {lookback} "
                 f"bars; it will not trade until {lookback - market.warmup_bars} more bars have closed")
    return result
