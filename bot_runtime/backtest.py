"""Backtests: the same strategy and paper broker a bot uses, over a synthetic or CSV series, with results a
trader reads (bot_runtime.results): the fill model, the figures, each trade and each refused order."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any

from bot_runtime.api.models import TradingBotSpec
from bot_runtime.brokers.paper import paper_broker
from bot_runtime.btcompat import bt
from bot_runtime.feeds import DataFeedFactory, timeframe_ms
from bot_runtime.lots import LotRules
from bot_runtime.results import BacktestReport, ClosedTrade, Refusal
from bot_runtime.strategies import strategy_handler

MARGIN = "not enough cash for the order and its commission"


def fill_model(spec: TradingBotSpec, rules: LotRules) -> str:
    broker = spec.broker
    when = (
        "at the next bar's open"
        if broker.fill == "nextOpen"
        else "at the signal bar's close (cheat-on-close: for comparison, no live order can)"
    )
    lots = (
        f"lot step {rules.step}, minimum quantity {rules.min_qty}, minimum order value {rules.min_notional}"
        if rules != LotRules()
        else "no lot rules (the venue's market is not known)"
    )
    return (
        f"market orders fill {when}; commission {100 * broker.commission:g} % of the value, slippage "
        f"{100 * broker.slippage:g} %; {lots}; stakes are sized net of commission and slippage"
    )


class Recorder(bt.Analyzer):  # type: ignore[misc]
    """Per bar: the account's value and whether a position is open; per trade: its round trip; per refused
    order: why."""

    def start(self) -> None:
        self._values: list[tuple[float, float]] = []
        self.equity: list[tuple[Any, float]] = []
        self.in_market = 0
        self.trades: list[ClosedTrade] = []
        self.refusals: list[Refusal] = []
        self._opened: dict[int, float] = {}  # trade ref -> size when it opened

    def next(self) -> None:
        self._values.append((self.data.datetime[0], float(self.strategy.broker.getvalue())))
        if self.strategy.position.size:
            self.in_market += 1

    def stop(self) -> None:
        self.equity = [(bt.num2date(at), value) for at, value in self._values]  # converted once, not per bar

    def notify_order(self, order: Any) -> None:
        if order.status in (order.Margin, order.Rejected):
            reason = order.info.get("reject_reason") or (MARGIN if order.status == order.Margin else "rejected")
            side = "buy" if order.isbuy() else "sell"
            self.refusals.append(Refusal(self.data.datetime.datetime(0), side, abs(float(order.size)), str(reason)))

    def notify_trade(self, trade: Any) -> None:
        if trade.justopened:
            self._opened[trade.ref] = float(trade.size)
        if not trade.isclosed:
            return
        size = self._opened.pop(trade.ref, 0.0)
        exit_price = trade.price + trade.pnl / size if size else trade.price
        self.trades.append(
            ClosedTrade(
                opened=bt.num2date(trade.dtopen),
                closed=bt.num2date(trade.dtclose),
                size=size,
                entry_price=float(trade.price),
                exit_price=float(exit_price),
                pnl=float(trade.pnl),
                fees=float(trade.commission),
            )
        )


class Progress(bt.Analyzer):  # type: ignore[misc]
    """A progress bar on stderr for long runs (tqdm), moved every EVERY bars so it costs nothing per bar."""

    EVERY = 1000

    def start(self) -> None:
        from tqdm import tqdm

        self.count = 0
        self.bar = tqdm(total=self.data.buflen(), unit="bar", desc="backtest", file=sys.stderr)

    def next(self) -> None:
        self.count += 1
        if self.count % self.EVERY == 0:
            self.bar.update(self.EVERY)

    def stop(self) -> None:
        self.bar.update(self.count % self.EVERY)
        self.bar.close()


def run_backtest(
    spec: TradingBotSpec,
    *,
    bars: int = 10_000,
    feed: Any = None,
    rules: LotRules | None = None,
    progress: bool = False,
) -> BacktestReport:
    rules = rules or LotRules()
    klass, params = strategy_handler.parse_params(spec.strategy.type, spec.strategy.params)
    cerebro = bt.Cerebro(stdstats=False)
    data = feed if feed is not None else DataFeedFactory().historical(spec.market, bars=bars)
    cerebro.adddata(data)
    cerebro.broker = paper_broker(spec.broker, risk=spec.risk, rules=rules)
    timeframe = timeframe_ms(spec.market.timeframe) // 1000
    cerebro.addstrategy(klass, config=params, risk=spec.risk, timeframe_seconds=timeframe)
    cerebro.addanalyzer(Recorder, _name="recorder")
    if progress:
        cerebro.addanalyzer(Progress)
    started = time.perf_counter()
    (strategy,) = cerebro.run()
    seconds = time.perf_counter() - started
    recorded = strategy.analyzers.recorder
    return BacktestReport(
        model=fill_model(spec, rules),
        timeframe=timedelta(seconds=timeframe),
        start_value=spec.broker.cash,
        equity=recorded.equity,
        in_market=recorded.in_market,
        trades=recorded.trades,
        refusals=recorded.refusals,
        seconds=seconds,
    )
