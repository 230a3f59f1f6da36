"""The bad-input corpus: invalid manifests and rows, each with the words its rejection must contain.

A case is a valid base plus a patch (a value of DELETE removes the key). `layer` says who rejects it:
- "apiserver": the CRD schema (a 422 naming the field); the semantic layer must reject it too,
  because rows never pass through the apiserver;
- "semantic": only `bot_runtime.api.validation` can tell (registry, cross-field rules);
- "row": a trading_bots row; messages name the row's columns.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

DELETE = object()

BASE_SPEC: dict[str, Any] = {
    "strategy": {"type": "CustomStrategy", "params": {"entry_logic": "sma_crossover", "exit_logic": ["stop_loss"]}},
    "market": {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m"},
    "mode": "paper",
}

BASE_ROW: dict[str, Any] = {
    "name": "row-bot",
    "user_id": 7,
    "strategy_type": "CustomStrategy",
    "strategy_params": {"entry_logic": "sma_crossover"},
    "exchange": "binance",
    "symbol": "BTC/USDT",
    "timeframe": "1m",
    "mode": "paper",
    "market_config": {},
    "broker_config": {},
    "risk_config": {},
    "runtime_config": {},
}


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Case:
    id: str
    layer: str
    patch: dict[str, Any]
    expect: list[str]
    semantic_expect: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        return merge(BASE_SPEC, self.patch)

    def row(self) -> dict[str, Any]:
        return merge(BASE_ROW, self.patch)


def api(id: str, patch: dict[str, Any], expect: list[str], semantic: list[str]) -> Case:
    return Case(id, "apiserver", patch, expect, semantic)


CASES: list[Case] = [
    # ---------------------------------------------------------------- rejected by the CRD schema
    api(
        "no-strategy",
        {"strategy": DELETE},
        ["spec.strategy", "Required value"],
        ["spec.strategy: required field is missing"],
    ),
    api(
        "no-symbol",
        {"market": {"symbol": DELETE}},
        ["spec.market.symbol", "Required value"],
        ["spec.market.symbol: required field is missing"],
    ),
    api(
        "mode-demo",
        {"mode": "demo"},
        ["spec.mode", 'Unsupported value: "demo"', '"paper", "live"'],
        ["spec.mode", "'paper' or 'live'", "'demo'"],
    ),
    api(
        "timeframe-7m",
        {"market": {"timeframe": "7m"}},
        ["spec.market.timeframe", 'Unsupported value: "7m"'],
        ["spec.market.timeframe", "'1m'", "'7m'"],
    ),
    api(
        "symbol-lowercase",
        {"market": {"symbol": "btcusdt"}},
        ["spec.market.symbol", "should match"],
        ["spec.market.symbol: must be a unified ccxt symbol", "BTC/USDT", "'btcusdt'"],
    ),
    api(
        "exchange-punctuation",
        {"market": {"exchange": "Binance!"}},
        ["spec.market.exchange", "should match"],
        ["spec.market.exchange: must be a lower-case ccxt exchange id"],
    ),
    api(
        "cash-negative",
        {"broker": {"cash": -5}},
        ["spec.broker.cash", "greater than 0"],
        ["spec.broker.cash", "greater than 0", "-5"],
    ),
    api(
        "commission-half",
        {"broker": {"commission": 0.5}},
        ["spec.broker.commission", "less than or equal to 0.1"],
        ["spec.broker.commission", "less than or equal to 0.1"],
    ),
    api(
        "max-open-orders-zero",
        {"risk": {"maxOpenOrders": 0}},
        ["spec.risk.maxOpenOrders", "greater than or equal to 1"],
        ["spec.risk.maxOpenOrders", "greater than or equal to 1"],
    ),
    api(
        "max-daily-loss-zero",
        {"risk": {"maxDailyLoss": 0}},
        ["spec.risk.maxDailyLoss", "greater than 0"],
        ["spec.risk.maxDailyLoss", "greater than 0"],
    ),
    api(
        "heartbeat-zero",
        {"runtime": {"heartbeatIntervalSeconds": 0}},
        ["spec.runtime.heartbeatIntervalSeconds", "greater than or equal to 1"],
        ["spec.runtime.heartbeatIntervalSeconds", "greater than or equal to 1"],
    ),
    api(
        "restart-factor-below-one",
        {"restartPolicy": {"factor": 0.5}},
        ["spec.restartPolicy.factor", "greater than or equal to 1"],
        ["spec.restartPolicy.factor", "greater than or equal to 1"],
    ),
    api(
        "warmup-too-long",
        {"market": {"warmupBars": 10000}},
        ["spec.market.warmupBars", "less than or equal to 5000"],
        ["spec.market.warmupBars", "less than or equal to 5000"],
    ),
    api(
        "strategy-type-digit",
        {"strategy": {"type": "1bad"}},
        ["spec.strategy.type", "should match"],
        ["spec.strategy.type: must be a registered strategy name"],
    ),
    api("suspended-string", {"suspended": "yes"}, ["spec.suspended", "boolean"], ["spec.suspended", "valid boolean"]),
    api(
        "secret-name-underscore",
        {"mode": "live", "broker": {"credentialsSecretRef": {"name": "Bad_Name"}}},
        ["spec.broker.credentialsSecretRef.name", "should match"],
        ["spec.broker.credentialsSecretRef.name: must be a Secret name"],
    ),
    api(
        "feed-websocket",
        {"market": {"feed": "websocket"}},
        ["spec.market.feed", 'Unsupported value: "websocket"'],
        ["spec.market.feed", "'ccxt', 'synthetic' or 'csv'"],
    ),
    api(
        "pull-policy-sometimes",
        {"runtime": {"imagePullPolicy": "Sometimes"}},
        ["spec.runtime.imagePullPolicy", 'Unsupported value: "Sometimes"'],
        ["spec.runtime.imagePullPolicy", "'Always'"],
    ),
    api(
        "params-not-object",
        {"strategy": {"params": "fast=10"}},
        ["spec.strategy.params", "object"],
        ["spec.strategy.params", "valid dictionary"],
    ),
    api(
        "notifications-no-secret",
        {"notifications": {"minSeverity": "info"}},
        ["spec.notifications.secretRef", "Required value"],
        ["spec.notifications.secretRef: required field is missing"],
    ),
    api(
        "notifications-severity-debug",
        {"notifications": {"secretRef": {"name": "n"}, "minSeverity": "debug"}},
        ["spec.notifications.minSeverity", 'Unsupported value: "debug"'],
        ["spec.notifications.minSeverity", "'info', 'warning' or 'error'"],
    ),
    api(
        "notifications-unknown-event",
        {"notifications": {"secretRef": {"name": "n"}, "events": ["moon_landing"]}},
        ["spec.notifications.events", 'Unsupported value: "moon_landing"'],
        ["spec.notifications.events[0]", "'started'", "'moon_landing'"],
    ),
    api(
        "notifications-bad-secret-name",
        {"notifications": {"secretRef": {"name": "Telegram_Keys"}}},
        ["spec.notifications.secretRef.name", "should match"],
        ["spec.notifications.secretRef.name: must be a Secret name"],
    ),
    api(
        "seed-negative",
        {"market": {"seed": -1}},
        ["spec.market.seed", "greater than or equal to 0"],
        ["spec.market.seed", "greater than or equal to 0"],
    ),
    # ------------------------------------------------------------- rejected by semantic validation
    Case(
        "exchange-typo",
        "semantic",
        {"market": {"exchange": "binanse"}},
        ["spec.market.exchange", "'binanse' is not a ccxt exchange id", "did you mean binance"],
    ),
    Case(
        "live-without-credentials",
        "semantic",
        {"mode": "live"},
        ["spec.broker.credentialsSecretRef: required in live mode"],
    ),
    Case(
        "live-unknown-strategy",
        "semantic",
        {
            "mode": "live",
            "strategy": {"type": "MoonShot", "params": {}},
            "broker": {"credentialsSecretRef": {"name": "keys"}},
        },
        ["spec.strategy.type: unknown strategy 'MoonShot'", "live mode", "CustomStrategy"],
    ),
    Case(
        "live-venue-outside-the-matrix",
        "semantic",
        {"mode": "live", "market": {"exchange": "kraken"}, "broker": {"credentialsSecretRef": {"name": "keys"}}},
        ["spec.market.exchange: live mode trades on binance, bybit, okx only", "'kraken' is allowed in paper mode"],
    ),
    Case(
        "live-synthetic-feed",
        "semantic",
        {"mode": "live", "market": {"feed": "synthetic"}, "broker": {"credentialsSecretRef": {"name": "keys"}}},
        ["spec.market.feed", "synthetic is allowed in paper mode only"],
    ),
    Case(
        "csv-without-path",
        "semantic",
        {"market": {"feed": "csv"}},
        ["spec.market.csvPath: required when spec.market.feed is csv"],
    ),
    Case(
        "unknown-entry-logic",
        "semantic",
        {"strategy": {"params": {"entry_logic": "moon_phase"}}},
        ["spec.strategy.params.entry_logic.name", "unknown entry logic 'moon_phase'", "sma_crossover"],
    ),
    Case(
        "sma-fast-not-below-slow",
        "semantic",
        {
            "strategy": {
                "params": {"entry_logic": {"name": "sma_crossover", "params": {"fast_period": 50, "slow_period": 20}}}
            }
        },
        ["spec.strategy.params.entry_logic.params", "fast_period (50) must be less than slow_period (20)"],
    ),
    Case(
        "exit-param-unknown",
        "semantic",
        {"strategy": {"params": {"exit_logic": [{"name": "stop_loss", "params": {"stop": 0.1}}]}}},
        ["spec.strategy.params.exit_logic[0].params.stop", "unknown parameter; allowed: stop_loss_pct"],
    ),
    Case(
        "exit-param-out-of-range",
        "semantic",
        {"strategy": {"params": {"exit_logic": [{"name": "trailing_stop", "params": {"trail_pct": 1.5}}]}}},
        ["spec.strategy.params.exit_logic[0].params.trail_pct", "less than 1", "1.5"],
    ),
    Case(
        "advanced-weight-zero",
        "semantic",
        {
            "strategy": {
                "type": "AdvancedStrategyFramework",
                "params": {
                    "entry_logic": DELETE,
                    "exit_logic": DELETE,
                    "signals": [{"name": "rsi_threshold", "weight": 0}],
                },
            }
        },
        ["spec.strategy.params.signals[0].weight", "greater than 0"],
    ),
    Case(
        "advanced-duplicate-signal",
        "semantic",
        {
            "strategy": {
                "type": "AdvancedStrategyFramework",
                "params": {
                    "entry_logic": DELETE,
                    "exit_logic": DELETE,
                    "signals": [{"name": "macd_cross"}, {"name": "macd_cross"}],
                },
            }
        },
        ["spec.strategy.params", "signals names must be unique; repeated: macd_cross"],
    ),
    Case(
        "restart-cap-below-first-delay",
        "semantic",
        {"restartPolicy": {"initialDelaySeconds": 120, "maxDelaySeconds": 60}},
        ["spec.restartPolicy.maxDelaySeconds", "below initialDelaySeconds"],
    ),
    Case(
        "memory-limit-words",
        "semantic",
        {"runtime": {"resources": {"limits": {"memory": "lots"}}}},
        ["spec.runtime.resources.limits.memory", "should match pattern", "'lots'"],
    ),
    Case(
        "negative-cpu",
        "semantic",
        {"runtime": {"resources": {"requests": {"cpu": -1}}}},
        ["spec.runtime.resources.requests.cpu", "must be more than 0 and at most 16"],
    ),
    Case(
        "gpu-resource",
        "semantic",
        {"runtime": {"resources": {"limits": {"nvidia.com/gpu": 1, "memory": "256Mi"}}}},
        ["spec.runtime.resources.limits.nvidia.com/gpu", "allowed: cpu, memory, ephemeral-storage"],
    ),
    Case(
        "memory-beyond-bound",
        "semantic",
        {"runtime": {"resources": {"limits": {"memory": "2Ti"}}}},
        ["spec.runtime.resources.limits.memory", "'2Ti' must be more than 0 and at most 64Gi"],
    ),
    Case(
        "request-above-limit",
        "semantic",
        {"runtime": {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}}},
        ["spec.runtime.resources.requests.memory", "more than its limit"],
    ),
    Case(
        "image-with-space",
        "semantic",
        {"runtime": {"image": "registry.example/bot:1 --privileged"}},
        ["spec.runtime.image", "is not an image reference", "no spaces"],
    ),
    Case(
        "image-uppercase",
        "semantic",
        {"runtime": {"image": "Registry.example/Bot"}},
        ["spec.runtime.image", "is not an image reference"],
    ),
    Case(
        "nul-in-a-param",
        "semantic",
        {"strategy": {"params": {"entry_logic": "sma\x00crossover"}}},
        ["spec.strategy.params.entry_logic", "NUL character"],
    ),
    Case(
        "strategy-param-typo",
        "semantic",
        {"strategy": {"params": {"entry_logik": "sma_crossover"}}},
        ["spec.strategy.params.entry_logik", "unknown parameter; allowed: entry_logic, exit_logic"],
    ),
    Case(
        "rsi-levels-inverted",
        "semantic",
        {
            "strategy": {
                "params": {"entry_logic": {"name": "rsi_threshold", "params": {"oversold": 80, "overbought": 20}}}
            }
        },
        ["spec.strategy.params.entry_logic.params", "oversold (80.0) must be below overbought (20.0)"],
    ),
    # ------------------------------------------------------------------------ invalid table rows
    Case(
        "row-symbol-lowercase", "row", {"symbol": "btc-usdt"}, ["symbol: must be a unified ccxt symbol", "'btc-usdt'"]
    ),
    Case("row-timeframe", "row", {"timeframe": "7m"}, ["timeframe:", "'1m'", "'7m'"]),
    Case("row-unknown-exchange", "row", {"exchange": "ftx2"}, ["exchange: 'ftx2' is not a ccxt exchange id"]),
    Case(
        "row-unknown-entry-logic",
        "row",
        {"strategy_params": {"entry_logic": "astrology"}},
        ["strategy_params.entry_logic.name: unknown entry logic 'astrology'"],
    ),
    Case("row-negative-cash", "row", {"broker_config": {"cash": -1}}, ["broker_config.cash", "greater than 0"]),
    Case(
        "row-restart-factor",
        "row",
        {"runtime_config": {"restart_policy": {"factor": 0}}},
        ["runtime_config.restart_policy.factor", "greater than or equal to 1"],
    ),
    Case("row-empty-name", "row", {"name": "  "}, ["name: must not be empty"]),
    Case(
        "row-max-open-orders-text",
        "row",
        {"risk_config": {"max_open_orders": "many"}},
        ["risk_config.max_open_orders", "valid integer", "'many'"],
    ),
    Case(
        "row-csv-without-path",
        "row",
        {"market_config": {"feed": "csv"}},
        ["market_config.csv_path: required when", "csv"],
    ),
    Case("row-unknown-config-key", "row", {"risk_config": {"max_loss": 5}}, ["risk_config.max_loss", "unknown field"]),
    Case(
        "row-live-venue-outside-the-matrix",
        "row",
        {"mode": "live", "exchange": "coinbase", "broker_config": {"credentials_secret_ref": {"name": "keys"}}},
        ["exchange: live mode trades on binance, bybit, okx only", "'coinbase' is allowed in paper mode"],
    ),
    Case(
        "row-live-without-credentials",
        "row",
        {"mode": "live"},
        ["broker_config.credentials_secret_ref: required in live mode"],
    ),
]
