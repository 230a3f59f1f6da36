"""Entry and exit logic mixins: small, registered building blocks that CustomStrategy composes and
AdvancedStrategyFramework weighs. Each declares its parameters (a pydantic model) and its maximum
lookback, so a spec can be validated and warm-up sized before any market data arrives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from bot_runtime.strategies.params import ParamsModel


@dataclass(frozen=True)
class PositionView:
    """What an exit logic may know about the open long position, on the current bar."""

    entry_price: float
    close: float
    high_since_entry: float
    bars_held: int
    entry_time: datetime | None = None


class _Logic:
    """What entry and exit logics share: a registered name, a parameter model, the bound strategy."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[ParamsModel]]

    def __init__(self, strategy: Any, data: Any, params: ParamsModel) -> None:
        self.strategy = strategy
        self.data = data
        self.p: Any = params


class EntryLogic(_Logic):
    """Decides when to enter. `signal()` is an event on this bar (a cross), `bias()` a state."""

    @classmethod
    def lookback(cls, params: ParamsModel) -> int:
        raise NotImplementedError

    def signal(self) -> int:
        """+1 enter long now, -1 a bearish event now, 0 nothing."""
        raise NotImplementedError

    def bias(self) -> int:
        """+1 bullish, -1 bearish, 0 neutral: what AdvancedStrategyFramework weighs."""
        raise NotImplementedError


class ExitLogic(_Logic):
    """Decides when to leave an open long position; returns the reason or None."""

    @classmethod
    def lookback(cls, params: ParamsModel) -> int:
        return 0

    def exit_reason(self, position: PositionView) -> str | None:
        raise NotImplementedError


L = TypeVar("L", EntryLogic, ExitLogic)


class LogicRegistry(Generic[L]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._by_name: dict[str, type[L]] = {}

    def register(self, cls: type[L], name: str | None = None) -> type[L]:
        key = name or cls.name
        if not isinstance(getattr(cls, "Params", None), type) or not issubclass(cls.Params, ParamsModel):
            raise TypeError(f"{self.kind} logic {key!r} must declare Params, a subclass of {ParamsModel.__name__}")
        self._by_name[key] = cls
        return cls

    def get(self, name: str) -> type[L] | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[tuple[str, type[L]]]:
        return iter(sorted(self._by_name.items()))


entry_logics: LogicRegistry[EntryLogic] = LogicRegistry("entry")
exit_logics: LogicRegistry[ExitLogic] = LogicRegistry("exit")
