"""CustomStrategy: one entry logic mixin plus one or more exit logic mixins, chosen by name."""

from __future__ import annotations

from typing import Any

from bot_runtime.params.strategies import CustomStrategyParams, check_custom, custom_lookback
from bot_runtime.strategies.base import BotStrategy
from bot_runtime.strategies.logic import EntryLogic, ExitLogic, LogicRegistry, entry_logics, exit_logics


def build_logic(registry: LogicRegistry[Any], ref: Any, strategy: BotStrategy) -> Any:
    """The implementation of a mixin reference, bound to the strategy and its data."""
    cls = registry.get(ref.name)
    if cls is None:
        raise ValueError(f"unknown {registry.kind} logic {ref.name!r}")
    return cls(strategy, strategy.data, cls.Params(**ref.params))


class CustomStrategy(BotStrategy):
    strategy_name = "CustomStrategy"
    description = "Composes one entry logic mixin with exit logic mixins (stop-loss, take-profit, ...)."
    Params = CustomStrategyParams

    @classmethod
    def check(cls, params: Any) -> list[tuple[str, str]]:
        return check_custom(params)

    @classmethod
    def max_lookback(cls, params: Any) -> int:
        return custom_lookback(params)

    def build(self) -> None:
        self.entry: EntryLogic = build_logic(entry_logics, self.cfg.entry_logic, self)
        self.exits: list[ExitLogic] = [build_logic(exit_logics, ref, self) for ref in self.cfg.exit_logic]

    def decide(self) -> None:
        if self.position.size > 0:
            if self.apply_exits(self.exits):
                return
            if self.cfg.exit_on_opposite_signal and self.entry.signal() < 0:
                self.exit_long(f"{self.entry.name}: bearish signal")
            return
        if self.entry.signal() > 0:
            price = float(self.data.close[0])
            size = self.affordable(self.cfg.stake, price)
            self.enter_long(size, f"{self.entry.name}: entry signal", stake=self.cfg.stake)
