"""AdvancedStrategyFramework: several entry signals weighed against a threshold, position sizing by
risk fraction, and protective exits (stop-loss always, take-profit and trailing stop optional)."""

from __future__ import annotations

from typing import Any

from bot_runtime.params.logic import StopLossParams, TakeProfitParams, TrailingStopParams
from bot_runtime.params.strategies import AdvancedStrategyParams, advanced_lookback, check_advanced
from bot_runtime.strategies.base import BotStrategy
from bot_runtime.strategies.custom import build_logic
from bot_runtime.strategies.exits import StopLoss, TakeProfit, TrailingStop
from bot_runtime.strategies.logic import EntryLogic, ExitLogic, entry_logics


class AdvancedStrategyFramework(BotStrategy):
    strategy_name = "AdvancedStrategyFramework"
    description = "Weighted entry signals with a threshold, risk-fraction sizing and protective exits."
    Params = AdvancedStrategyParams

    @classmethod
    def check(cls, params: Any) -> list[tuple[str, str]]:
        return check_advanced(params)

    @classmethod
    def max_lookback(cls, params: Any) -> int:
        return advanced_lookback(params)

    def build(self) -> None:
        self.signals: list[tuple[EntryLogic, float]] = []
        for signal in self.cfg.signals:
            self.signals.append((build_logic(entry_logics, signal, self), signal.weight))
        self.total_weight = sum(weight for _, weight in self.signals)
        self.exits: list[ExitLogic] = [StopLoss(self, self.data, StopLossParams(stop_loss_pct=self.cfg.stop_loss_pct))]
        if self.cfg.take_profit_pct:
            self.exits.append(TakeProfit(self, self.data, TakeProfitParams(take_profit_pct=self.cfg.take_profit_pct)))
        if self.cfg.trailing_stop_pct:
            self.exits.append(TrailingStop(self, self.data, TrailingStopParams(trail_pct=self.cfg.trailing_stop_pct)))

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
            self.enter_long(
                min(size, self.affordable(1.0, price)), stake=1.0, reason=f"score {score:.2f} >= {self.cfg.threshold:g}"
            )
