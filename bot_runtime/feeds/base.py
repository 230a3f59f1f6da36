"""Feed plumbing shared by every data source.

A producer thread (exchange poller, replay) puts ('bar' | 'status' | 'end', ...) items on a queue;
`QueueFeed._load` blocks on it for at most `qcheck` seconds, so Cerebro never spins
(docs/research/backtrader-ccxt.md §1.5) and `runstop()` is seen within half a second. Bars are stamped with
their close time, naive UTC.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot_runtime.btcompat import bt

STATUS_NAMES = ("DELAYED", "LIVE", "CONNBROKEN", "DISCONNECTED")


@dataclass(frozen=True)
class Bar:
    close_ms: int  # the candle's close time (open + timeframe), ms since the epoch, UTC
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def close_time(self) -> datetime:
        return datetime.fromtimestamp(self.close_ms / 1000, tz=UTC).replace(tzinfo=None)


class FeedState:
    """Thread-safe view of a feed for the monitor, health and status threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.status = "DELAYED"
        self.reason: str | None = None
        self.last_bar_ms: int | None = None
        self.bars = 0
        self.errors = 0

    def set(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self, key, value)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": self.status,
                "reason": self.reason,
                "last_bar_ms": self.last_bar_ms,
                "bars": self.bars,
                "errors": self.errors,
            }


class FeedProducer(threading.Thread):
    """Base of producer threads: puts items on `out`, stops when `stop_event` is set."""

    def __init__(self, out: queue.Queue[tuple[Any, ...]], state: FeedState, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.out = out
        self.state = state
        self.stop_event = threading.Event()
        self._status: str | None = None

    def put_status(self, status: str, reason: str | None = None) -> None:
        if status != self._status:
            self._status = status
            self.state.set(status=status, reason=reason)
            self.out.put(("status", status, reason))

    def put_bar(self, bar: Bar) -> None:
        self.state.set(last_bar_ms=bar.close_ms, bars=self.state.bars + 1)
        self.out.put(("bar", bar))

    def end(self, reason: str) -> None:
        self.put_status("DISCONNECTED", reason)
        self.out.put(("end", reason))

    def stop(self) -> None:
        self.stop_event.set()


class QueueFeed(bt.feed.DataBase):  # type: ignore[misc]
    """A live Backtrader feed fed by a producer thread."""

    params = (("qcheck", 0.5),)

    def __init__(self, producer_factory: Any, state: FeedState) -> None:
        super().__init__()
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._factory = producer_factory
        self.state = state
        self.producer: FeedProducer | None = None
        self.end_reason: str | None = None
        self._restarting = threading.Lock()

    def islive(self) -> bool:
        return True

    def haslivedata(self) -> bool:
        return not self._queue.empty()

    def start(self) -> None:
        super().start()
        self.restart_producer()

    def restart_producer(self) -> None:
        """Start (or replace) the producer thread; it resumes after the last bar delivered. Published only once
        started: the monitor takes a producer that is not alive for a dead one and replaces it."""
        with self._restarting:
            if self.producer is not None:
                self.producer.stop()
            producer = self._factory(self._queue, self.state)
            producer.start()
            self.producer = producer

    def stop(self) -> None:
        if self.producer is not None:
            self.producer.stop()
        super().stop()

    def _load(self) -> bool | None:
        while True:
            try:
                item = self._queue.get(timeout=self._qcheck or self.p.qcheck)
            except queue.Empty:
                return None
            kind = item[0]
            if kind == "status":
                self.put_notification(getattr(self, item[1]), item[2])
                continue
            if kind == "end":
                self.end_reason = item[1]
                return False
            bar: Bar = item[1]
            self.lines.datetime[0] = bt.date2num(bar.close_time)
            self.lines.open[0], self.lines.high[0] = bar.open, bar.high
            self.lines.low[0], self.lines.close[0] = bar.low, bar.close
            self.lines.volume[0], self.lines.openinterest[0] = bar.volume, 0.0
            return True


class ListFeed(bt.feed.DataBase):  # type: ignore[misc]
    """A historical feed from a list of bars (backtests: preload and runonce stay on)."""

    def __init__(self, bars: Sequence[Bar] | Iterable[Bar]) -> None:
        super().__init__()
        self._bars = iter(bars)

    def _load(self) -> bool:
        bar = next(self._bars, None)
        if bar is None:
            return False
        self.lines.datetime[0] = bt.date2num(bar.close_time)
        self.lines.open[0], self.lines.high[0] = bar.open, bar.high
        self.lines.low[0], self.lines.close[0] = bar.low, bar.close
        self.lines.volume[0], self.lines.openinterest[0] = bar.volume, 0.0
        return True
