"""Strategy registry API and the built-in strategies and logic mixins.

from bot_runtime.strategies import strategy_handler, register_strategy, BotStrategy
"""

from bot_runtime.api.results import ValidationResult
from bot_runtime.params import FALLBACK_STRATEGY, ParamsModel
from bot_runtime.strategies import entry, exits  # noqa: F401  (registers the built-in logic mixins)
from bot_runtime.strategies.advanced import AdvancedStrategyFramework
from bot_runtime.strategies.base import BotStrategy, RestoredPosition, Snapshot, StrategyHooks
from bot_runtime.strategies.custom import CustomStrategy
from bot_runtime.strategies.logic import EntryLogic, ExitLogic, PositionView, entry_logics, exit_logics
from bot_runtime.strategies.registry import (
    PLUGIN_GROUP,
    StrategyRegistrationError,
    discover_strategies,
    get_registered_strategies,
    get_strategy_class,
    register_strategy,
    strategy_handler,
    validate_strategy_config,
)

register_strategy(CustomStrategy)
register_strategy(AdvancedStrategyFramework)

__all__ = [
    "FALLBACK_STRATEGY",
    "PLUGIN_GROUP",
    "AdvancedStrategyFramework",
    "BotStrategy",
    "CustomStrategy",
    "EntryLogic",
    "ExitLogic",
    "ParamsModel",
    "PositionView",
    "RestoredPosition",
    "Snapshot",
    "StrategyHooks",
    "StrategyRegistrationError",
    "ValidationResult",
    "discover_strategies",
    "entry_logics",
    "exit_logics",
    "get_registered_strategies",
    "get_strategy_class",
    "register_strategy",
    "strategy_handler",
    "validate_strategy_config",
]
