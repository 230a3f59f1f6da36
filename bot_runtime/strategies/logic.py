"""Entry and exit logic mixins: the Backtrader side of the logic schemas (bot_runtime.params.logic).

CustomStrategy composes them and AdvancedStrategyFramework weighs them. Each class binds to its
schema (name, description, parameters, lookback), so a spec is validated and warm-up sized from the
schema alone, before any market data arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from bot_runtime.params import LogicSchema, ParamsModel
from bot_runtime.params.logic import LogicSchemas, entry_logic_schemas, exit_logic_schemas


@dataclass(frozen=True)
class PositionView:
    """What an exit logic may know about the open long position, on the current bar."""

    entry_price: float
    close: float
    high_since_entry: float
    bars_held: int
    entry_time: datetime | None = None


class _Logic:
    """What entry and exit logics share: a schema (name, parameters, lookback), the bound strategy."""

    schema: ClassVar[LogicSchema]
    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[ParamsModel]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        schema = cls.__dict__.get("schema")
        if schema is not None:
            cls.name, cls.description, cls.Params = schema.name, schema.description, schema.Params

    def __init__(self, strategy: Any, data: Any, params: ParamsModel) -> None:
        self.strategy = strategy
        self.data = data
        self.p: Any = params

    @classmethod
    def lookback(cls, params: ParamsModel) -> int:
        return int(cls.schema.lookback(params))


class EntryLogic(_Logic):
    """Decides when to enter. `signal()` is an event on this bar (a cross), `bias()` a state."""

    def signal(self) -> int:
        """+1 enter long now, -1 a bearish event now, 0 nothing."""
        raise NotImplementedError

    def bias(self) -> int:
        """+1 bullish, -1 bearish, 0 neutral: what AdvancedStrategyFramework weighs."""
        raise NotImplementedError


class ExitLogic(_Logic):
    """Decides when to leave an open long position; returns the reason or None."""

    def exit_reason(self, position: PositionView) -> str | None:
        raise NotImplementedError

    def stop_price(self, position: PositionView) -> float | None:
        """The price below which this logic closes the position, when it is a stop (rests at the venue)."""
        return None


L = TypeVar("L", EntryLogic, ExitLogic)


class LogicRegistry(Generic[L]):
    """Implementations by name; each must bind to a schema of the matching kind."""

    def __init__(self, schemas: LogicSchemas) -> None:
        self.schemas = schemas
        self.kind = schemas.kind
        self._by_name: dict[str, type[L]] = {}

    def register(self, cls: type[L]) -> type[L]:
        schema: LogicSchema | None = cls.__dict__.get("schema")
        if schema is None or self.schemas.get(schema.name) is not schema:
            raise TypeError(
                f"{self.kind} logic {cls.__qualname__} must bind to a schema registered in "
                f"bot_runtime.params.logic ({self.kind}_logic_schemas)"
            )
        self._by_name[cls.name] = cls
        return cls

    def get(self, name: str) -> type[L] | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[tuple[str, type[L]]]:
        return iter(sorted(self._by_name.items()))


entry_logics: LogicRegistry[EntryLogic] = LogicRegistry(entry_logic_schemas)
exit_logics: LogicRegistry[ExitLogic] = LogicRegistry(exit_logic_schemas)
