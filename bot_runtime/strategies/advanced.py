"""AdvancedStrategyFramework: several entry signals weighed against a threshold, position sizing by
risk fraction, and protective exits (stop-loss always, take-profit and trailing stop optional)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from bot_runtime.strategies.base import BotStrategy
from bot_runtime.strategies.custom import LogicRef, check_logic_ref, logic_params
from bot_runtime.strategies.exits import StopLoss, TakeProfit, TrailingStop
from bot_runtime.strategies.logic import EntryLogic, ExitLogic, entry_logics
from bot_runtime.strategies.params import ParamsModel


class WeightedSignal(LogicRef):
    weight: float = Field(1.0, gt=0, le=100, description="Weight of this signal's bias in the score.")


class AdvancedStrategyParams(ParamsModel):
    signals: list[WeightedSignal] = Field(
        default_factory=lambda: [
            WeightedSignal(name="ema_crossover", weight=2.0),
            WeightedSignal(name="rsi_threshold", weight=1.0),
            WeightedSignal(name="macd_cross", weight=1.0),
        ],
        min_length=1, max_length=10,
        description="Entry mixins whose bias (+1 bullish, -1 bearish) is weighed.",
    )
    threshold: float = Field(
        0.5, gt=0, le=1, description="Enter when the weighted score reaches this; exit at -threshold.",
    )
    risk_fraction: float = Field(0.01, gt=0, le=0.2, description="Fraction of equity risked per trade (to the stop).")
    stop_loss_pct: float = Field(0.02, gt=0, lt=1, description="Protective stop below entry; also sizes positions.")
    take_profit_pct: float | None = Field(None, gt=0, le=100, description="Optional take-profit above entry.")
    trailing_stop_pct: float | None = Field(None, gt=0, lt=1, description="Optional trailing stop below the high.")

    @model_validator(mode="after")
    def _unique_signals(self) -> AdvancedStrategyParams:
        names = [s.name for s in self.signals]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"signals names must be unique; repeated: {', '.join(duplicates)}")
        return self


class AdvancedStrategyFramework(BotStrategy):
    strategy_name = "AdvancedStrategyFramework"
    description = "Weighted entry signals with a threshold, risk-fraction sizing and protective exits."
    Params = AdvancedStrategyParams

    @classmethod
    def check(cls, params: Any) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        for i, signal in enumerate(params.signals):
            errors += check_logic_ref(entry_logics, signal, f".signals[{i}]")
        return errors

    @classmethod
    def max_lookback(cls, params: Any) -> int:
        lookbacks = (logic_cls.lookback(p) for logic_cls, p in (logic_params(entry_logics, s) for s in params.signals))
        return max(int(n) for n in lookbacks)

    def build(self) -> None:
        self.signals: list[tuple[EntryLogic, float]] = []
        for signal in self.cfg.signals:
            logic_cls, logic_p = logic_params(entry_logics, signal)
            self.signals.append((logic_cls(self, self.data, logic_p), signal.weight))
        self.total_weight = sum(weight for _, weight in self.signals)
        self.exits: list[ExitLogic] = [StopLoss(self, self.data, StopLoss.Params(stop_loss_pct=self.cfg.stop_loss_pct))]
        if self.cfg.take_profit_pct:
            self.exits.append(TakeProfit(self, self.data, TakeProfit.Params(take_profit_pct=self.cfg.take_profit_pct)))
        if self.cfg.trailing_stop_pct:
            self.exits.append(TrailingStop(self, self.data, TrailingStop.Params(trail_pct=self.cfg.trailing_stop_pct)))

    def score(self) -> float:
        return sum(logic.bias() * weight for logic, weight in self.signals) / self.total_weight

    def decide(self) -> None:
        score = self.score()
        if self.position.size > 0:
            if self.apply_exits(self.exits):
                return
            if score <= -self.cfg.threshold:
                self.exit_long(f"score {score:.2f} <= -{self.cfg.threshold:g}")
            return
        if score >= self.cfg.threshold:
            price = float(self.data.close[0])
            risk_budget = self.equity() * self.cfg.risk_fraction
            size = risk_budget / (price * self.cfg.stop_loss_pct)
            affordable = self.broker.getcash() * 0.99 / price
            self.enter_long(min(size, affordable), f"score {score:.2f} >= {self.cfg.threshold:g}")
