"""Strategy parameter schemas: what `spec.strategy.params` may hold, without the strategies themselves.

Pure pydantic, no Backtrader: the operator validates specs against these schemas, the runtime's
strategy registry binds them to their Backtrader classes. Plug-ins publish theirs through the
entry-point group `botops.strategy_params` (see CONTRIBUTING.md).
"""

from bot_runtime.params.base import ParamsModel, model_errors
from bot_runtime.params.catalog import (
    FALLBACK_STRATEGY,
    SCHEMA_PLUGIN_GROUP,
    StrategyCatalog,
    StrategySchema,
    strategy_catalog,
)
from bot_runtime.params.logic import LogicSchema, entry_logic_schemas, exit_logic_schemas

__all__ = [
    "FALLBACK_STRATEGY",
    "SCHEMA_PLUGIN_GROUP",
    "LogicSchema",
    "ParamsModel",
    "StrategyCatalog",
    "StrategySchema",
    "entry_logic_schemas",
    "exit_logic_schemas",
    "model_errors",
    "strategy_catalog",
]
