"""Feeds that need no exchange: a seeded synthetic series and a CSV replay.

As historical series they drive backtests (`bars()`); as live producers they drive paper bots in
demos: the warm-up arrives at once (DELAYED), then one bar per timeframe in real time (LIVE).
"""

from __future__ import annotations

import csv
import math
import queue
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot_runtime.feeds.base import Bar, FeedProducer, FeedState


class CsvFormatError(ValueError):
    """The CSV file cannot be replayed; the message names the line and the problem."""


def synthetic_bars(seed: int, count: int | None, tf_ms: int, start_ms: int, price: float = 100.0) -> Iterator[Bar]:
    """A seeded random-walk-like series that is a pure function of each bar's time, so a restarted
    bot sees the prices it saw before. Log-price is a sum of value-noise octaves whose amplitude
    grows with the square root of their period (Brownian scaling), so there is structure at every
    scale but no wave a strategy could learn (never ends if count is None)."""
    salt = random.Random(seed).getrandbits(32)

    def lattice(octave: int, knot: int) -> float:  # a hash of (seed, octave, knot) in [-1, 1)
        h = (knot * 2654435761 + octave * 40503 + salt) % 4294967296
        h = (h ^ (h >> 15)) * 2246822519 % 4294967296
        return (h ^ (h >> 13)) / 2147483648 - 1.0

    def log_price(bar_index: int) -> float:
        total = 0.0
        for octave in range(17):
            period = 1 << octave
            knot, frac = divmod(bar_index, period)
            a, b = lattice(octave, knot), lattice(octave, knot + 1)
            total += 0.0012 * math.sqrt(period) * (a + (b - a) * frac / period)
        return total

    close_ms = start_ms
    produced = 0
    previous = price * math.exp(log_price(start_ms // tf_ms - 1))
    while count is None or produced < count:
        index = close_ms // tf_ms
        open_, close = previous, price * math.exp(log_price(index))
        wick = abs(lattice(99, index)) * 0.001 * close
        yield Bar(
            close_ms,
            round(open_, 6),
            round(max(open_, close) + wick, 6),
            round(min(open_, close) - wick, 6),
            round(close, 6),
            round(1.0 + abs(lattice(98, index)) * 4.0, 4),
        )
        previous = close
        close_ms += tf_ms
        produced += 1


def _parse_time(raw: str, line: int) -> int:
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise CsvFormatError(f"line {line}: timestamp {raw!r} is neither epoch (s or ms) nor ISO 8601") from exc
        if parsed.tzinfo is None:  # naive timestamps are UTC
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    return int(value if value > 1e11 else value * 1000)


def csv_bars(path: str | Path) -> list[Bar]:
    """Rows of timestamp,open,high,low,close,volume (a header line is allowed); timestamps are UTC
    close times as epoch seconds, epoch milliseconds or ISO 8601."""
    bars: list[Bar] = []
    file = Path(path)
    if not file.is_file():
        raise CsvFormatError(f"{file}: no such file")
    with file.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].strip().lower() in ("timestamp", "time", "date", "datetime"):
                continue
            if len(row) < 6:
                raise CsvFormatError(
                    f"line {line}: expected timestamp,open,high,low,close,volume; got {len(row)} columns"
                )
            try:
                values = [float(v) for v in row[1:6]]
            except ValueError as exc:
                raise CsvFormatError(f"line {line}: open/high/low/close/volume must be numbers ({exc})") from exc
            bar = Bar(_parse_time(row[0], line), *values)
            if bars and bar.close_ms <= bars[-1].close_ms:
                raise CsvFormatError(f"line {line}: timestamps must increase")
            bars.append(bar)
    if not bars:
        raise CsvFormatError(f"{file}: no bars")
    return bars


class ReplayProducer(FeedProducer):
    """Warm-up bars at once (DELAYED), then LIVE: one bar every `pace` seconds, or with pace None
    each bar when the wall clock reaches its close time."""

    def __init__(
        self,
        out: queue.Queue[tuple[Any, ...]],
        state: FeedState,
        *,
        bars: Iterator[Bar],
        warmup_bars: int,
        pace: float | None,
        resume_after_ms: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(out, state, name="replay-feed")
        self.bars, self.warmup_bars, self.pace, self.clock = bars, warmup_bars, pace, clock
        self.resume_after_ms = resume_after_ms

    def run(self) -> None:
        self.put_status("DELAYED")
        delivered = 0
        for bar in self.bars:
            if self.stop_event.is_set():
                return
            if self.resume_after_ms is not None and bar.close_ms <= self.resume_after_ms:
                continue
            if delivered >= self.warmup_bars:
                self.put_status("LIVE")
                wait = self.pace if self.pace is not None else bar.close_ms / 1000 - self.clock()
                if wait > 0 and self.stop_event.wait(wait):
                    return
            self.put_bar(bar)
            delivered += 1
        self.end("replay finished")


def live_synthetic_bars(
    seed: int, tf_ms: int, warmup_bars: int, clock: Callable[[], float] = time.time
) -> Iterator[Bar]:
    """Synthetic bars stamped in real time: the warm-up in the past, then each timeframe close."""
    now_ms = int(clock() * 1000)
    last_close = now_ms - now_ms % tf_ms
    return synthetic_bars(seed, None, tf_ms, last_close - (warmup_bars - 1) * tf_ms)
