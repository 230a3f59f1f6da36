"""The ccxt polling live feed: closed candles only, warm-up and gap backfill, no busy loop.

One poll per candle close (plus a settle delay). Transient errors (ccxt `OperationFailed`) report
CONNBROKEN and back off exponentially; when the exchange answers again the gap is backfilled from
the last delivered candle, so no bar is missed. Fatal errors end the feed with their reason.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

from bot_runtime.exchange import RATE_LIMITED, ErrorKind, Pacer, classify
from bot_runtime.feeds.base import Bar, FeedProducer, FeedState

log = logging.getLogger(__name__)

MAX_UNKNOWN_ERRORS = 5  # consecutive unclassified read errors before the feed gives up


def valid_candle(c: Any) -> bool:
    return isinstance(c, (list, tuple)) and len(c) >= 6 and all(isinstance(v, (int, float)) for v in c[:6])


class CcxtPoller(FeedProducer):
    def __init__(
        self,
        out: queue.Queue[tuple[Any, ...]],
        state: FeedState,
        *,
        exchange: Any,
        symbol: str,
        timeframe: str,
        warmup_bars: int,
        resume_after_ms: int | None = None,
        settle: float | None = None,
        page_limit: int = 1000,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__(out, state, name=f"ccxt-feed-{symbol}")
        self.pacer = pacer if pacer is not None else Pacer()  # shared with the broker in a live run
        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.tf_ms = int(exchange.parse_timeframe(timeframe) * 1000)
        self.warmup_bars = warmup_bars
        self.last_open_ms = None if resume_after_ms is None else resume_after_ms - self.tf_ms
        # Poll a little after each close, when the exchange has published the candle.
        self.settle = settle if settle is not None else min(2.0, self.tf_ms / 5000)
        self.page_limit = page_limit
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def latest_closed_open(self, now_ms: int) -> int:
        return now_ms - now_ms % self.tf_ms - self.tf_ms

    def run(self) -> None:
        self.put_status("DELAYED")
        delay = self.backoff_initial
        unknown = 0
        while not self.stop_event.is_set():
            if not self.pacer.wait(self.stop_event):  # the venue asked every call to wait (Retry-After)
                return
            try:
                self.catch_up()
                delay, unknown = self.backoff_initial, 0
                self.pacer.answered()
            except Exception as exc:
                if isinstance(exc, RATE_LIMITED):
                    delay = max(delay, self.pacer.rate_limited(self.exchange))
                kind = classify(exc)
                unknown = unknown + 1 if kind is ErrorKind.unknown else 0
                if kind is ErrorKind.fatal or unknown >= MAX_UNKNOWN_ERRORS:
                    reason = f"{type(exc).__name__}: {exc}"
                    log.error("market data feed stopped: %s", reason)
                    self.end(reason)
                    return
                self.state.set(errors=self.state.errors + 1)
                self.put_status("CONNBROKEN", f"{type(exc).__name__}: {str(exc)[:200]}")
                log.warning("market data fetch failed (%s), retrying in %.1f s", type(exc).__name__, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            now = self.now_ms()
            next_close = now - now % self.tf_ms + self.tf_ms
            self.stop_event.wait(max(0.05, (next_close - now) / 1000 + self.settle))

    def catch_up(self) -> None:
        """Fetch every closed candle after the last delivered one; go LIVE when caught up."""
        while not self.stop_event.is_set():
            now = self.now_ms()
            target = self.latest_closed_open(now)
            if self.last_open_ms is not None and self.last_open_ms >= target:
                self.put_status("LIVE")
                return
            since = (
                self.last_open_ms + self.tf_ms
                if self.last_open_ms is not None
                else target - max(self.warmup_bars - 1, 0) * self.tf_ms
            )
            candles = self.exchange.fetch_ohlcv(self.symbol, self.timeframe, since=since, limit=self.page_limit)
            closed = sorted(
                {
                    int(c[0]): c
                    for c in candles
                    if valid_candle(c)
                    and int(c[0]) + self.tf_ms <= now
                    and (self.last_open_ms is None or int(c[0]) > self.last_open_ms)
                }.items()
            )
            if not closed:
                # the exchange has nothing newer yet (late candle): try again at the next poll
                if self.last_open_ms is None:
                    self.last_open_ms = since - self.tf_ms
                return
            for open_ms, c in closed:
                # Backfilled candles (more than one behind) are DELAYED and not traded; LIVE comes just
                # before the latest closed candles, so the strategy trades the freshest bar
                # (docs/research/backtrader-ccxt.md §1.5).
                self.put_status("LIVE" if open_ms >= target - self.tf_ms else "DELAYED")
                self.put_bar(Bar(open_ms + self.tf_ms, float(c[1]), float(c[2]), float(c[3]), float(c[4]), float(c[5])))
                self.last_open_ms = open_ms
