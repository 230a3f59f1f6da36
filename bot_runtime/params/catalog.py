"""The strategy catalog: every strategy the cluster knows, as a schema the operator can check specs
against without importing a strategy.

Built-in schemas are registered here; plug-ins publish theirs through the entry-point group
`botops.strategy_params` (a StrategySchema, or a module holding some). The runtime's strategy registry
adds the schema of each strategy class it registers, so both sides judge a spec the same way.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import ConfigDict

from bot_runtime.api.results import ValidationResult
from bot_runtime.params.base import ParamsModel, model_errors
from bot_runtime.params.strategies import (
    AdvancedStrategyParams,
    CustomStrategyParams,
    advanced_lookback,
    check_advanced,
    check_custom,
    custom_lookback,
)

log = logging.getLogger(__name__)

SCHEMA_PLUGIN_GROUP = "botops.strategy_params"
CLASS_PLUGIN_GROUP = "botops.strategies"  # the runtime's plug-in group (classes); its names are known here too
FALLBACK_STRATEGY = "CustomStrategy"
ORDER_TYPES = ("market", "limit", "stop", "bracket")  # what the paper and the live broker both place


def _no_errors(params: Any) -> list[tuple[str, str]]:
    return []


def _no_lookback(params: Any) -> int:
    return 0


class OpaqueParams(ParamsModel):
    """The parameters of a plug-in that publishes no schema: anything goes until its runtime starts."""

    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(frozen=True)
class StrategySchema:
    name: str
    description: str
    Params: type[ParamsModel]
    check: Callable[[Any], list[tuple[str, str]]] = _no_errors  # semantic errors beyond Params
    max_lookback: Callable[[Any], int] = _no_lookback
    opaque: bool = False  # a plug-in known by name only: its runtime checks the parameters
    order_types: tuple[str, ...] = ("market",)  # what it places; brokers accept ORDER_TYPES (paper and live)


BUILTINS = (
    StrategySchema(
        "CustomStrategy",
        "Composes one entry logic mixin with exit logic mixins (stop-loss, take-profit, ...).",
        CustomStrategyParams,
        check_custom,
        custom_lookback,
    ),
    StrategySchema(
        "AdvancedStrategyFramework",
        "Weighted entry signals with a threshold, risk-fraction sizing and protective exits.",
        AdvancedStrategyParams,
        check_advanced,
        advanced_lookback,
    ),
)


class StrategyCatalog:
    def __init__(self, builtins: tuple[StrategySchema, ...] = BUILTINS, plugins: bool = True) -> None:
        self._schemas: dict[str, StrategySchema] = {s.name: s for s in builtins}
        self._plugins_loaded = not plugins
        self._lock = threading.RLock()

    def register(self, schema: StrategySchema) -> None:
        with self._lock:
            self._schemas[schema.name] = schema

    def schemas(self) -> dict[str, StrategySchema]:
        self._load_plugins()
        with self._lock:
            return dict(sorted(self._schemas.items()))

    def get(self, name: str) -> StrategySchema | None:
        return self.schemas().get(name)

    def runs(self, strategy_type: str) -> str:
        """The strategy a spec naming `strategy_type` runs (paper falls back from an unknown name)."""
        return strategy_type if strategy_type in self.schemas() else FALLBACK_STRATEGY

    def _load_plugins(self) -> None:
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
        for ep in entry_points(group=SCHEMA_PLUGIN_GROUP):
            try:
                target = ep.load()
                found = [v for _, v in inspect.getmembers(target)] if inspect.ismodule(target) else [target]
                for schema in (s for s in found if isinstance(s, StrategySchema)):
                    self._add_unless_known(schema)
            except Exception as exc:  # a broken plug-in must not take validation down
                log.error("strategy schema plug-in %s (%s) failed to load: %s", ep.name, ep.value, exc)
        for ep in entry_points(group=CLASS_PLUGIN_GROUP):
            self._add_unless_known(StrategySchema(ep.name, f"plug-in {ep.value}", OpaqueParams, opaque=True))

    def _add_unless_known(self, schema: StrategySchema) -> None:
        with self._lock:
            if schema.name not in self._schemas or self._schemas[schema.name].opaque:
                self._schemas[schema.name] = schema

    def resolve(self, strategy_type: str, params: Any) -> tuple[StrategySchema, ParamsModel]:
        """The schema (CustomStrategy for an unknown name) and the parsed parameters."""
        schemas = self.schemas()
        schema = schemas.get(strategy_type) or schemas[FALLBACK_STRATEGY]
        return schema, schema.Params.model_validate(params or {})

    def validate_strategy_config(
        self,
        strategy_type: str,
        params: Any,
        mode: str = "paper",
        path: str = "spec.strategy",
    ) -> ValidationResult:
        """Errors and warnings, each naming the field, why, and what is allowed."""
        result = ValidationResult()
        schemas = self.schemas()
        schema = schemas.get(strategy_type)
        if schema is None:
            known = ", ".join(schemas)
            if mode == "live":
                result.errors.append(
                    f"{path}.type: unknown strategy {strategy_type!r}; live mode needs a registered strategy "
                    f"(no fallback with real money): one of {known}"
                )
                return result
            result.warnings.append(
                f"{path}.type: unknown strategy {strategy_type!r}; paper mode falls back to "
                f"{FALLBACK_STRATEGY} (registered: {known})"
            )
            schema = schemas[FALLBACK_STRATEGY]
        if schema.opaque:
            result.warnings.append(
                f"{path}.params: plug-in strategy {schema.name!r} publishes no parameter schema "
                f"({SCHEMA_PLUGIN_GROUP}); its runtime checks the parameters when it starts"
            )
            return result
        unplaceable = sorted(set(schema.order_types) - set(ORDER_TYPES))
        if unplaceable:
            message = (
                f"{path}.type: {schema.name} places {', '.join(unplaceable)} orders, which the brokers do not "
                f"place (paper and live both place {', '.join(ORDER_TYPES)})"
            )
            (result.errors if mode == "live" else result.warnings).append(message)
        problems = model_errors(schema.Params, params if params is not None else {})
        if not problems:
            problems = schema.check(schema.Params.model_validate(params or {}))
        result.errors += [f"{path}.params{sub}: {msg}" for sub, msg in problems]
        return result


strategy_catalog = StrategyCatalog()
