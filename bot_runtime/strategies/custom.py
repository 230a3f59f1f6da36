"""CustomStrategy: one entry logic mixin plus one or more exit logic mixins, chosen by name."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from bot_runtime.strategies.base import BotStrategy
from bot_runtime.strategies.logic import EntryLogic, ExitLogic, LogicRegistry, entry_logics, exit_logics
from bot_runtime.strategies.params import ParamsModel


class LogicRef(ParamsModel):
    name: str = Field(description="Registered logic mixin name.")
    params: dict[str, Any] = Field(default_factory=dict, description="The mixin's own parameters.")


def _as_ref(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class CustomStrategyParams(ParamsModel):
    entry_logic: LogicRef = Field(
        default_factory=lambda: LogicRef(name="sma_crossover"), description="Entry mixin: a name or {name, params}.",
    )
    exit_logic: list[LogicRef] = Field(
        default_factory=lambda: [LogicRef(name="stop_loss")],
        description="Exit mixins: a name, {name, params}, or a list of them; any one may close the position.",
    )
    stake: float = Field(0.95, gt=0, le=1, description="Fraction of free cash used per entry.")
    exit_on_opposite_signal: bool = Field(True, description="Also exit when the entry mixin turns bearish.")

    @field_validator("entry_logic", mode="before")
    @classmethod
    def _entry_ref(cls, value: Any) -> Any:
        return _as_ref(value)

    @field_validator("exit_logic", mode="before")
    @classmethod
    def _exit_refs(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        return [_as_ref(v) for v in items]


def check_logic_ref(registry: LogicRegistry[Any], ref: LogicRef, path: str) -> list[tuple[str, str]]:
    """Errors of one mixin reference: an unknown name, or parameters its model refuses."""
    cls = registry.get(ref.name)
    if cls is None:
        return [(f"{path}.name", f"unknown {registry.kind} logic {ref.name!r}; allowed: {', '.join(registry.names())}")]
    from bot_runtime.strategies.registry import model_errors

    return [(f"{path}.params{sub}", msg) for sub, msg in model_errors(cls.Params, ref.params)]


def logic_params(registry: LogicRegistry[Any], ref: LogicRef) -> tuple[type[Any], ParamsModel]:
    cls = registry.get(ref.name)
    if cls is None:
        raise ValueError(f"unknown {registry.kind} logic {ref.name!r}")
    return cls, cls.Params(**ref.params)


class CustomStrategy(BotStrategy):
    strategy_name = "CustomStrategy"
    description = "Composes one entry logic mixin with exit logic mixins (stop-loss, take-profit, ...)."
    Params = CustomStrategyParams

    @classmethod
    def check(cls, params: Any) -> list[tuple[str, str]]:
        errors = check_logic_ref(entry_logics, params.entry_logic, ".entry_logic")
        for i, ref in enumerate(params.exit_logic):
            errors += check_logic_ref(exit_logics, ref, f".exit_logic[{i}]")
        return errors

    @classmethod
    def max_lookback(cls, params: Any) -> int:
        refs = [(entry_logics, params.entry_logic)] + [(exit_logics, r) for r in params.exit_logic]
        return max(int(logic_cls.lookback(p)) for logic_cls, p in (logic_params(reg, ref) for reg, ref in refs))

    def build(self) -> None:
        entry_cls, entry_params = logic_params(entry_logics, self.cfg.entry_logic)
        self.entry: EntryLogic = entry_cls(self, self.data, entry_params)
        self.exits: list[ExitLogic] = []
        for ref in self.cfg.exit_logic:
            exit_cls, exit_params = logic_params(exit_logics, ref)
            self.exits.append(exit_cls(self, self.data, exit_params))

    def decide(self) -> None:
        if self.position.size > 0:
            if self.apply_exits(self.exits):
                return
            if self.cfg.exit_on_opposite_signal and self.entry.signal() < 0:
                self.exit_long(f"{self.entry.name}: bearish signal")
            return
        if self.entry.signal() > 0:
            price = float(self.data.close[0])
            self.enter_long(self.broker.getcash() * self.cfg.stake / price, f"{self.entry.name}: entry signal")
