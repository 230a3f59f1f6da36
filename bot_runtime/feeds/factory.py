"""DataFeedFactory: the one place that turns `spec.market` into a Backtrader feed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot_runtime.api.models import TIMEFRAMES, MarketSpec
from bot_runtime.exchange import Pacer
from bot_runtime.feeds.base import FeedState, ListFeed, QueueFeed
from bot_runtime.feeds.ccxt_feed import CcxtPoller
from bot_runtime.feeds.replay import ReplayProducer, csv_bars, live_synthetic_bars, synthetic_bars

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "M": 2_592_000_000}


def timeframe_ms(timeframe: str) -> int:
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
    return int(timeframe[:-1]) * _UNIT_MS[timeframe[-1]]


class DataFeedFactory:
    def __init__(
        self,
        *,
        exchange: Any = None,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.time,
        replay_pace: float | None = None,
    ) -> None:
        self.exchange = exchange
        self.pacer = pacer
        self.clock = clock
        self.replay_pace = replay_pace

    def live(self, market: MarketSpec, *, default_seed: int = 0) -> QueueFeed:
        """A live feed; its producer resumes after the last delivered bar when restarted."""
        state = FeedState()
        tf_ms = timeframe_ms(market.timeframe)
        seed = market.seed if market.seed is not None else default_seed

        def producer(out: Any, st: FeedState) -> Any:
            resume = st.last_bar_ms
            if market.feed == "ccxt":
                if self.exchange is None:
                    raise ValueError("a ccxt feed needs an exchange client")
                return CcxtPoller(
                    out,
                    st,
                    exchange=self.exchange,
                    symbol=market.symbol,
                    timeframe=market.timeframe,
                    warmup_bars=market.warmup_bars,
                    resume_after_ms=resume,
                    clock=self.clock,
                    pacer=self.pacer,
                )
            if market.feed == "synthetic":
                bars = live_synthetic_bars(seed, tf_ms, market.warmup_bars, self.clock)
                return ReplayProducer(
                    out,
                    st,
                    bars=bars,
                    warmup_bars=market.warmup_bars,
                    pace=None,
                    resume_after_ms=resume,
                    clock=self.clock,
                )
            pace = self.replay_pace if self.replay_pace is not None else tf_ms / 1000
            return ReplayProducer(
                out,
                st,
                bars=iter(csv_bars(market.csv_path or "")),
                warmup_bars=market.warmup_bars,
                pace=pace,
                resume_after_ms=resume,
                clock=self.clock,
            )

        return QueueFeed(producer_factory=producer, state=state)

    def historical(
        self, market: MarketSpec, *, bars: int = 10_000, default_seed: int = 0, start_ms: int = 1_700_000_000_000
    ) -> ListFeed:
        """A backtest feed: the synthetic series (bars long) or the CSV file."""
        if market.feed == "csv":
            return ListFeed(bars=csv_bars(market.csv_path or ""))
        if market.feed == "ccxt":
            raise ValueError("backtests run on synthetic or csv data (set market.feed), not on the live exchange")
        seed = market.seed if market.seed is not None else default_seed
        return ListFeed(bars=list(synthetic_bars(seed, bars, timeframe_ms(market.timeframe), start_ms)))
