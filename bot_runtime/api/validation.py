"""Semantic validation of a TradingBot spec: what the apiserver's schema cannot say.

Used by the operator (manifests and rows), the syncer (rows) and the runtime (before it trades), with
the strategy catalog's parameter schemas (no strategy is imported). Every message names the field,
says why, and what is allowed.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity
from pydantic import ValidationError

from bot_runtime.api.constants import LIVE_VENUES
from bot_runtime.api.exchanges import EXCHANGES
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.api.results import ValidationResult
from bot_runtime.params import StrategyCatalog, strategy_catalog

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


# registry[:port]/path[:tag][@sha256:digest], lowercase repository, no spaces (the apiserver refuses worse)
IMAGE = re.compile(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
# the resources a bot container may ask for, each with the most one bot may take
RESOURCE_BOUNDS = {"cpu": Decimal(16), "memory": Decimal(64 * 2**30), "ephemeral-storage": Decimal(64 * 2**30)}
RESOURCE_BOUND_TEXT = {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "64Gi"}


def nul_paths(value: Any, path: str = "spec") -> list[str]:
    """Where a NUL character hides in a raw spec (PostgreSQL cannot store one; the apiserver accepts it)."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nul_paths(k, path) + nul_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nul_paths(v, f"{path}[{i}]")]
    return []


def parse_spec(raw: dict[str, Any]) -> tuple[TradingBotSpec | None, list[str]]:
    nul = sorted(set(nul_paths(raw)))
    if nul:
        return None, [f"{p}: contains a NUL character (\\u0000), which the database cannot store" for p in nul]
    try:
        return TradingBotSpec.model_validate(raw), []
    except ValidationError as exc:
        return None, schema_errors(exc)


def validate_spec(
    raw: dict[str, Any] | TradingBotSpec,
    catalog: StrategyCatalog = strategy_catalog,
) -> tuple[TradingBotSpec | None, ValidationResult]:
    """Parse and check a spec; the spec is returned only when it has no errors."""
    if isinstance(raw, TradingBotSpec):
        spec: TradingBotSpec | None = raw
        errors: list[str] = []
    else:
        spec, errors = parse_spec(raw)
    result = ValidationResult(errors=errors)
    if spec is None:
        return None, result
    result.extend(semantic_checks(spec, catalog))
    return (spec if result.ok else None), result


def semantic_checks(spec: TradingBotSpec, catalog: StrategyCatalog = strategy_catalog) -> ValidationResult:
    result = ValidationResult()
    for check in (_market_checks, _broker_checks, _restart_policy_checks, _runtime_checks):
        check(spec, result)
    _strategy_checks(spec, catalog, result)
    return result


def _market_checks(spec: TradingBotSpec, result: ValidationResult) -> None:
    market, err, warn = spec.market, result.errors.append, result.warnings.append
    if market.exchange not in EXCHANGES:
        close = difflib.get_close_matches(market.exchange, sorted(EXCHANGES), n=3)
        suggestion = f"; did you mean {', '.join(close)}?" if close else ""
        err(
            f"spec.market.exchange: {market.exchange!r} is not a ccxt exchange id{suggestion} "
            f"(ccxt knows {len(EXCHANGES)} exchanges, e.g. binance, kraken, coinbase)"
        )
    if market.feed == "csv" and not market.csv_path:
        err(
            "spec.market.csvPath: required when spec.market.feed is csv (a CSV file with "
            "timestamp,open,high,low,close,volume rows)"
        )
    if market.feed != "csv" and market.csv_path:
        warn(f"spec.market.csvPath: ignored because spec.market.feed is {market.feed}")
    if spec.mode == "live" and market.exchange in EXCHANGES and market.exchange not in LIVE_VENUES:
        err(
            f"spec.market.exchange: live mode trades on {', '.join(LIVE_VENUES)} only (the venues whose behaviour "
            f"the test suite reproduces; docs/venues.md lists what was tested); {market.exchange!r} is allowed in "
            "paper mode"
        )
    if spec.mode == "live" and market.feed != "ccxt":
        err(
            f"spec.market.feed: live mode trades real money and needs the exchange's data (ccxt); "
            f"{market.feed} is allowed in paper mode only"
        )


def _broker_checks(spec: TradingBotSpec, result: ValidationResult) -> None:
    live = spec.mode == "live"
    if live and spec.broker.credentials_secret_ref is None:
        result.errors.append(
            "spec.broker.credentialsSecretRef: required in live mode (a Secret with the exchange "
            "API key and secret; credentials are never written into the resource)"
        )
    if not live and spec.broker.credentials_secret_ref is not None:
        result.warnings.append("spec.broker.credentialsSecretRef: ignored in paper mode (no orders reach the exchange)")
    if live and spec.risk.max_daily_loss is None:
        result.warnings.append(
            "spec.risk.maxDailyLoss: not set; a live bot without a daily loss limit can lose without bound"
        )


def _restart_policy_checks(spec: TradingBotSpec, result: ValidationResult) -> None:
    policy = spec.restart_policy
    if policy.max_delay_seconds < policy.initial_delay_seconds:
        result.errors.append(
            f"spec.restartPolicy.maxDelaySeconds: {policy.max_delay_seconds:g} is below "
            f"initialDelaySeconds {policy.initial_delay_seconds:g}; the cap must be at least the "
            "first delay"
        )


def _runtime_checks(spec: TradingBotSpec, result: ValidationResult) -> None:
    runtime, err = spec.runtime, result.errors.append
    if runtime.image is not None and not IMAGE.fullmatch(runtime.image):
        err(
            f"spec.runtime.image: {runtime.image!r} is not an image reference (registry/repository[:tag]"
            "[@sha256:digest]: lowercase repository, no spaces)"
        )
    resources = runtime.resources
    if resources is None:
        return
    parsed: dict[str, dict[str, Decimal]] = {}
    for kind, values in (("requests", resources.requests), ("limits", resources.limits)):
        for name, raw in (values or {}).items():
            field = f"spec.runtime.resources.{kind}.{name}"
            if name not in RESOURCE_BOUNDS:
                err(f"{field}: not a resource a bot may ask for; allowed: {', '.join(RESOURCE_BOUNDS)}")
                continue
            try:
                amount = Decimal(parse_quantity(raw))  # type: ignore[no-untyped-call]
            except ValueError:
                err(f"{field}: {raw!r} is not a quantity (e.g. 500m, 256Mi, 1)")
                continue
            if amount <= 0 or amount > RESOURCE_BOUNDS[name]:
                err(f"{field}: {raw!r} must be more than 0 and at most {RESOURCE_BOUND_TEXT[name]}")
                continue
            parsed.setdefault(kind, {})[name] = amount
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            err(f"spec.runtime.resources.requests.{name}: more than its limit (limits.{name}); a request must fit")


def _strategy_checks(spec: TradingBotSpec, catalog: StrategyCatalog, result: ValidationResult) -> None:
    strategy = catalog.validate_strategy_config(spec.strategy.type, spec.strategy.params, spec.mode)
    result.extend(strategy)
    if not strategy.ok:
        return
    schema, params = catalog.resolve(spec.strategy.type, spec.strategy.params)
    lookback = int(schema.max_lookback(params))
    warmup = spec.market.warmup_bars
    if warmup < lookback:
        result.warnings.append(
            f"spec.market.warmupBars: {warmup} is below the strategy's lookback of {lookback} "
            f"bars; it will not trade until {lookback - warmup} more bars have closed"
        )


def strategy_fallback(spec: TradingBotSpec, catalog: StrategyCatalog = strategy_catalog) -> str | None:
    """A sentence when the strategy that runs is not the one the spec names (paper mode, an unknown name), or None."""
    runs = catalog.runs(spec.strategy.type)
    if runs == spec.strategy.type:
        return None
    return (
        f"spec.strategy.type {spec.strategy.type!r} is not a registered strategy, so this paper bot runs {runs} "
        "with the given parameters; name one that `bot-runtime strategies` lists (live mode refuses an unknown name)."
    )
