"""The strategy registry (the original system's `strategy_handler`).

Strategies are BotStrategy subclasses with a pydantic `Params` model. They come from the built-ins,
from `discover_strategies(paths)` (Python files or folders) and from installed plug-ins that declare
an entry point in the group `botops.strategies` (a strategy class, or a module holding some). Each
registered class adds its schema to the strategy catalog (bot_runtime.params), which validates specs.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
import sys
import threading
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from bot_runtime.api.results import ValidationResult
from bot_runtime.params import FALLBACK_STRATEGY, ParamsModel, StrategyCatalog, strategy_catalog
from bot_runtime.params.catalog import CLASS_PLUGIN_GROUP
from bot_runtime.strategies.base import INTERFACE_VERSION, BotStrategy

log = logging.getLogger(__name__)

PLUGIN_GROUP = CLASS_PLUGIN_GROUP
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


class StrategyRegistrationError(ValueError):
    """A strategy class does not satisfy the contract; the message says which part."""


class StrategyHandler:
    def __init__(self, catalog: StrategyCatalog | None = None) -> None:
        self.catalog = catalog if catalog is not None else StrategyCatalog(builtins=(), plugins=False)
        self._strategies: dict[str, type[BotStrategy]] = {}
        self._plugins_loaded = False
        self._lock = threading.RLock()
        self.plugin_errors: list[str] = []

    # ------------------------------------------------------------------------------ registration

    def register_strategy(
        self,
        strategy: type[BotStrategy] | str,
        cls: type[BotStrategy] | None = None,
        *,
        replace: bool = False,
    ) -> Any:
        """register_strategy(Cls), register_strategy("Name", Cls), or @register_strategy as a decorator."""
        if isinstance(strategy, str):
            if cls is None:
                return lambda c: self.register_strategy(strategy, c, replace=replace)
            name, klass = strategy, cls
        else:
            klass = strategy
            name = getattr(klass, "strategy_name", "") or klass.__name__
        self._check_contract(name, klass)
        with self._lock:
            existing = self._strategies.get(name)
            if existing is not None and existing is not klass and not replace:
                raise StrategyRegistrationError(
                    f"strategy name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
                )
            self._strategies[name] = klass
        self.catalog.register(klass.schema(name))
        return klass

    @staticmethod
    def _check_contract(name: str, klass: Any) -> None:
        where = f"{getattr(klass, '__module__', '?')}.{getattr(klass, '__qualname__', klass)}"
        if not NAME_PATTERN.match(name):
            raise StrategyRegistrationError(f"{where}: strategy name {name!r} must match {NAME_PATTERN.pattern}")
        if not (inspect.isclass(klass) and issubclass(klass, BotStrategy)):
            raise StrategyRegistrationError(f"{where}: a strategy must subclass bot_runtime.strategies.BotStrategy")
        if not (inspect.isclass(klass.Params) and issubclass(klass.Params, ParamsModel)):
            raise StrategyRegistrationError(f"{where}: Params must subclass bot_runtime.strategies.ParamsModel")
        if klass.interface_version != INTERFACE_VERSION:
            raise StrategyRegistrationError(
                f"{where}: interface_version {klass.interface_version} is not supported (expected {INTERFACE_VERSION})"
            )
        if getattr(klass, "decide", None) is BotStrategy.decide:
            raise StrategyRegistrationError(f"{where}: must implement decide()")

    # --------------------------------------------------------------------------------- discovery

    def discover_strategies(self, paths: Iterable[str | Path]) -> list[str]:
        """Import Python files (or every *.py in folders) and register the strategies they define."""
        found: list[str] = []
        for raw in paths:
            path = Path(raw)
            files = sorted(path.glob("*.py")) if path.is_dir() else [path]
            for file in files:
                if file.name.startswith("_"):
                    continue
                found += self._register_module(self._import_file(file))
        return found

    @staticmethod
    def _import_file(file: Path) -> ModuleType:
        if not file.is_file():
            raise FileNotFoundError(f"strategy path {file} does not exist")
        module_name = f"botops_discovered_{file.stem}_{abs(hash(file.resolve())) & 0xFFFFFF:x}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import strategies from {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module

    def _register_module(self, module: ModuleType) -> list[str]:
        names = []
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BotStrategy) and obj.__module__ == module.__name__ and obj.strategy_name:
                self.register_strategy(obj)
                names.append(obj.strategy_name)
        return names

    def load_plugins(self) -> list[str]:
        """Register strategies of installed distributions (entry-point group `botops.strategies`)."""
        with self._lock:
            if self._plugins_loaded:
                return []
            self._plugins_loaded = True
        names: list[str] = []
        for ep in entry_points(group=PLUGIN_GROUP):
            try:
                target = ep.load()
                if inspect.ismodule(target):
                    names += self._register_module(target)
                else:
                    self.register_strategy(target)
                    names.append(getattr(target, "strategy_name", "") or target.__name__)
            except Exception as exc:  # a broken plug-in must not take the registry down
                message = f"strategy plug-in {ep.name} ({ep.value}) failed to load: {exc}"
                self.plugin_errors.append(message)
                log.error(message)
        return names

    # ----------------------------------------------------------------------------------- lookups

    def get_registered_strategies(self) -> dict[str, type[BotStrategy]]:
        self.load_plugins()
        with self._lock:
            return dict(sorted(self._strategies.items()))

    def get_strategy_class(self, name: str) -> type[BotStrategy]:
        """The registered class, or CustomStrategy (with a warning) for an unknown name."""
        strategies = self.get_registered_strategies()
        if name in strategies:
            return strategies[name]
        log.warning("unknown strategy type %r: falling back to %s", name, FALLBACK_STRATEGY)
        return strategies[FALLBACK_STRATEGY]

    def validate_strategy_config(
        self,
        strategy_type: str,
        params: Any,
        mode: str = "paper",
        path: str = "spec.strategy",
    ) -> ValidationResult:
        """Errors and warnings, each naming the field, why, and what is allowed."""
        self.load_plugins()
        return self.catalog.validate_strategy_config(strategy_type, params, mode, path)

    def parse_params(self, strategy_type: str, params: Any) -> tuple[type[BotStrategy], ParamsModel]:
        klass = self.get_strategy_class(strategy_type)
        return klass, klass.Params.model_validate(params or {})


strategy_handler = StrategyHandler(strategy_catalog)
register_strategy = strategy_handler.register_strategy
get_strategy_class = strategy_handler.get_strategy_class
validate_strategy_config = strategy_handler.validate_strategy_config
get_registered_strategies = strategy_handler.get_registered_strategies
discover_strategies = strategy_handler.discover_strategies
