"""The strategy registry API: registration contract, fallback, discovery, plug-ins, validation."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot_runtime.strategies import (
    BotStrategy,
    CustomStrategy,
    ParamsModel,
    StrategyRegistrationError,
    entry_logics,
    exit_logics,
    get_registered_strategies,
    get_strategy_class,
    strategy_handler,
    validate_strategy_config,
)
from bot_runtime.strategies.registry import StrategyHandler

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "strategies"


def test_builtins_and_mixins_are_registered() -> None:
    assert {"CustomStrategy", "AdvancedStrategyFramework"} <= set(get_registered_strategies())
    assert {"sma_crossover", "ema_crossover", "rsi_threshold", "bollinger_breakout", "macd_cross"} <= set(
        entry_logics.names()
    )
    assert {"stop_loss", "take_profit", "trailing_stop", "rsi_exit", "time_exit"} <= set(exit_logics.names())
    for _, logic in [*entry_logics, *exit_logics]:
        assert logic.description and logic.lookback(logic.Params()) >= 0


def test_installed_plugin_is_discovered_through_its_entry_point() -> None:
    strategies = get_registered_strategies()
    assert "BreakoutMomentum" in strategies
    assert strategies["BreakoutMomentum"].__module__ == "botops_example_strategy"
    result = validate_strategy_config("BreakoutMomentum", {"entry_period": 5, "exit_period": 9})
    assert result.errors == ["spec.strategy.params: exit_period (9) must not exceed entry_period (5)"]


def test_unknown_type_falls_back_to_custom_strategy(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert get_strategy_class("NoSuchStrategy") is CustomStrategy
    assert "unknown strategy type 'NoSuchStrategy': falling back to CustomStrategy" in caplog.text
    paper = validate_strategy_config("NoSuchStrategy", {}, mode="paper")
    assert paper.ok and "falls back to CustomStrategy" in paper.warnings[0]
    live = validate_strategy_config("NoSuchStrategy", {}, mode="live")
    assert not live.ok and "live mode needs a registered strategy" in live.errors[0]


def test_discover_strategies_from_a_folder() -> None:
    handler = StrategyHandler()
    assert handler.discover_strategies([FIXTURES]) == ["GoldenCross"]
    assert handler.get_strategy_class("GoldenCross").strategy_name == "GoldenCross"
    bad = handler.validate_strategy_config("GoldenCross", {"long_period": 5})
    assert bad.errors == ["spec.strategy.params.long_period: Input should be greater than or equal to 10 (got 5)"]
    with pytest.raises(FileNotFoundError):
        handler.discover_strategies([FIXTURES / "missing.py"])


class _Params(ParamsModel):
    pass


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: type("NotAStrategy", (), {}), "must subclass bot_runtime.strategies.BotStrategy"),
        (
            lambda: type("NoDecide", (BotStrategy,), {"strategy_name": "NoDecide", "Params": _Params}),
            "must implement decide()",
        ),
        (
            lambda: type(
                "OldApi",
                (BotStrategy,),
                {"strategy_name": "OldApi", "Params": _Params, "interface_version": 0, "decide": lambda self: None},
            ),
            "interface_version 0 is not supported",
        ),
        (
            lambda: type(
                "BadParams", (BotStrategy,), {"strategy_name": "BadParams", "Params": dict, "decide": lambda self: None}
            ),
            "Params must subclass",
        ),
    ],
)
def test_registration_contract_is_checked(make: object, message: str) -> None:
    with pytest.raises(StrategyRegistrationError, match=message):
        StrategyHandler().register_strategy(make())  # type: ignore[operator]


def test_a_name_cannot_be_taken_twice() -> None:
    handler = StrategyHandler()
    first = type("A", (BotStrategy,), {"strategy_name": "Same", "Params": _Params, "decide": lambda self: None})
    second = type("B", (BotStrategy,), {"strategy_name": "Same", "Params": _Params, "decide": lambda self: None})
    handler.register_strategy(first)
    with pytest.raises(StrategyRegistrationError, match="already registered"):
        handler.register_strategy(second)
    handler.register_strategy(second, replace=True)
    assert handler.get_registered_strategies()["Same"] is second


def test_singleton_is_shared() -> None:
    from bot_runtime.strategies import registry

    assert registry.strategy_handler is strategy_handler
    assert registry.register_strategy == strategy_handler.register_strategy
