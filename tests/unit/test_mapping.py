"""Row <-> spec mapping: every spec survives the trip through a trading_bots row (hypothesis)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot_runtime.api.models import NOTIFICATION_EVENTS, TIMEFRAMES, TradingBotSpec
from bot_runtime.api.rows import row_message, row_to_raw_spec, spec_to_row

names = st.from_regex(r"[a-z][a-z0-9]{1,10}", fullmatch=True)
secret_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
small = st.floats(min_value=0.0001, max_value=1e6, allow_nan=False, allow_infinity=False)
json_scalars = st.one_of(st.integers(-1000, 1000), st.booleans(), st.text(max_size=8), small)
quantities = st.one_of(st.integers(1, 64), st.sampled_from(["100m", "1", "256Mi", "2Gi", "0.5"]))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def specs(draw: st.DrawFn) -> TradingBotSpec:
    mode = draw(st.sampled_from(["paper", "live"]))
    feed = "ccxt" if mode == "live" else draw(st.sampled_from(["ccxt", "synthetic", "csv"]))
    raw: dict[str, Any] = {
        "description": draw(optional(st.text(max_size=40))),
        "strategy": {
            "type": draw(st.from_regex(r"[A-Z][A-Za-z0-9_]{0,20}", fullmatch=True)),
            "params": draw(st.dictionaries(names, json_scalars, max_size=4)),
        },
        "market": {
            "exchange": draw(st.sampled_from(["binance", "kraken", "coinbase", "okx"])),
            "symbol": draw(st.from_regex(r"[A-Z0-9]{1,6}/[A-Z0-9]{1,6}(:[A-Z]{1,4})?", fullmatch=True)),
            "timeframe": draw(st.sampled_from(TIMEFRAMES)),
            "warmup_bars": draw(st.integers(0, 5000)),
            "feed": feed,
            "csv_path": draw(optional(st.sampled_from(["/data/a.csv", "b.csv"]))),
            "seed": draw(optional(st.integers(0, 2**31 - 1))),
            "sandbox": draw(st.booleans()),
        },
        "mode": mode,
        "broker": {
            "cash": draw(small),
            "commission": draw(st.floats(0, 0.1)),
            "slippage": draw(st.floats(0, 0.1)),
            "credentials_secret_ref": draw(
                optional(
                    st.fixed_dictionaries(
                        {"name": secret_names},
                        optional={"api_key_key": names, "secret_key": names, "password_key": names},
                    )
                )
            ),
        },
        "risk": {
            "max_position_size": draw(optional(small)),
            "max_daily_loss": draw(optional(small)),
            "max_open_orders": draw(st.integers(1, 100)),
        },
        "runtime": {
            "image": draw(optional(st.sampled_from(["ghcr.io/x/bot:1", "bot:dev"]))),
            "image_pull_policy": draw(optional(st.sampled_from(["Always", "IfNotPresent", "Never"]))),
            "resources": draw(
                optional(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "requests": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities, max_size=2),
                            "limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities, max_size=2),
                        },
                    )
                )
            ),
            "heartbeat_interval_seconds": draw(optional(st.integers(1, 300))),
        },
        "restart_policy": {
            "max_restarts": draw(st.integers(0, 1000)),
            "initial_delay_seconds": draw(st.floats(0, 3600)),
            "factor": draw(st.floats(1, 10)),
            "max_delay_seconds": draw(st.floats(1, 86400)),
        },
        "suspended": draw(st.booleans()),
        "on_start": draw(st.sampled_from(["adopt", "flatten", "halt"])),
        "rollout": {
            "strategy": draw(st.sampled_from(["immediate", "whenFlat"])),
            "max_wait_seconds": draw(st.integers(0, 86400)),
        },
        "allow_shared_account": draw(st.booleans()),
        "notifications": draw(
            optional(
                st.fixed_dictionaries(
                    {
                        "secret_ref": st.fixed_dictionaries({"name": secret_names}, optional={"key": names}),
                        "events": optional(st.lists(st.sampled_from(NOTIFICATION_EVENTS), max_size=3, unique=True)),
                        "min_severity": st.sampled_from(["info", "warning", "error"]),
                    }
                )
            )
        ),
    }
    return TradingBotSpec.model_validate(raw)


@settings(max_examples=300, deadline=None)
@given(specs())
def test_spec_row_spec_round_trip(spec: TradingBotSpec) -> None:
    row = SimpleNamespace(**spec_to_row(spec))
    assert TradingBotSpec.model_validate(row_to_raw_spec(row)) == spec


@settings(max_examples=100, deadline=None)
@given(specs())
def test_resource_form_round_trip(spec: TradingBotSpec) -> None:
    """What the syncer writes into a resource parses back to the same spec."""
    assert TradingBotSpec.model_validate(spec.to_resource()) == spec


def test_row_messages_name_columns() -> None:
    assert row_message("spec.market.symbol: bad") == "symbol: bad"
    assert row_message("spec.market.warmupBars: too long") == "market_config.warmup_bars: too long"
    assert (
        row_message("spec.restartPolicy.maxDelaySeconds: low") == "runtime_config.restart_policy.max_delay_seconds: low"
    )
    assert row_message("spec.strategy.params.exit_logic[0].name: x") == "strategy_params.exit_logic[0].name: x"
