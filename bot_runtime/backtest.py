"""Backtests: the same strategy and paper broker a bot uses, over a synthetic or CSV series."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bot_runtime.api.models import TradingBotSpec
from bot_runtime.brokers.paper import paper_broker
from bot_runtime.btcompat import bt
from bot_runtime.feeds import DataFeedFactory, timeframe_ms
from bot_runtime.strategies import strategy_handler


@dataclass(frozen=True)
class BacktestResult:
    bars: int
    seconds: float
    start_value: float
    end_value: float
    max_drawdown_pct: float
    trades: int
    wins: int

    @property
    def return_pct(self) -> float:
        return (self.end_value / self.start_value - 1.0) * 100.0

    @property
    def win_rate_pct(self) -> float:
        return 100.0 * self.wins / self.trades if self.trades else 0.0

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"bars            {self.bars}\n"
            f"return          {self.return_pct:+.2f} %  ({self.start_value:.2f} -> {self.end_value:.2f})\n"
            f"max drawdown    {self.max_drawdown_pct:.2f} %\n"
            f"trades          {self.trades}\n"
            f"win rate        {self.win_rate_pct:.1f} %\n"
            f"speed           {self.bars_per_second:,.0f} bars/s"
        )


def run_backtest(spec: TradingBotSpec, *, bars: int = 10_000, feed: Any = None) -> BacktestResult:
    klass, params = strategy_handler.parse_params(spec.strategy.type, spec.strategy.params)
    cerebro = bt.Cerebro(stdstats=False)
    data = feed if feed is not None else DataFeedFactory().historical(spec.market, bars=bars)
    cerebro.adddata(data)
    cerebro.broker = paper_broker(spec.broker, risk=spec.risk)
    cerebro.addstrategy(
        klass, config=params, risk=spec.risk, timeframe_seconds=timeframe_ms(spec.market.timeframe) // 1000
    )
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
    started = time.perf_counter()
    (strategy,) = cerebro.run()
    seconds = time.perf_counter() - started
    trades = strategy.analyzers.trades.get_analysis()
    closed = int(trades.get("total", {}).get("closed", 0) or 0)
    wins = int(trades.get("won", {}).get("total", 0) or 0)
    return BacktestResult(
        bars=len(data),
        seconds=seconds,
        start_value=spec.broker.cash,
        end_value=float(cerebro.broker.getvalue()),
        max_drawdown_pct=float(strategy.analyzers.drawdown.get_analysis().max.drawdown),
        trades=closed,
        wins=wins,
    )
