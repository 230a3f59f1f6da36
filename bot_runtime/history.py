"""Real history for backtests: OHLCV downloaded through ccxt into a local cache a backtest reads.

The cache is one CSV per venue, symbol and timeframe: `<cache>/<exchange>/<BASE-QUOTE>/<timeframe>.csv`, rows
`timestamp,open,high,low,close,volume` with the candle's close time in epoch milliseconds (the format
`bot-runtime backtest --csv` replays). A download pages forward from the last cached candle, so an interrupted
one resumes where it stopped; ccxt's own rate limiter spaces the calls, and a rate-limit answer waits for the
venue's Retry-After (else an exponential back-off) before the page is asked again. Candles the venue does not
have (a maintenance window, a halted market) are reported as gaps, never invented.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ccxt

from bot_runtime.exchange import Pacer
from bot_runtime.feeds import timeframe_ms
from bot_runtime.feeds.base import Bar
from bot_runtime.feeds.replay import csv_bars
from bot_runtime.lots import TICK_SIZE, LotRules

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("BOTOPS_OHLCV_CACHE", "~/.cache/tradingbot-operator/ohlcv")).expanduser()
PAGE = 1000  # candles asked per call (venues cap it: Binance 1000, OKX 300, Bybit 1000)
RATE_LIMITED = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)


def cache_file(cache: Path, exchange: str, symbol: str, timeframe: str) -> Path:
    return cache / exchange / symbol.replace("/", "-").replace(":", "_") / f"{timeframe}.csv"


@dataclass
class Download:
    symbol: str
    path: Path
    fetched: int = 0  # candles new in the cache
    calls: int = 0
    waits: list[float] = field(default_factory=list)  # seconds waited after a rate-limit answer
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) missing open times, ms

    def describe(self, step: int) -> str:
        gaps = ", ".join(f"{_iso(a)}..{_iso(b)} ({(b - a) // step + 1} candles)" for a, b in self.gaps) or "none"
        waited = f"; waited {sum(self.waits):.0f} s for the venue's rate limit" if self.waits else ""
        return f"{self.symbol}: {self.fetched} new candles in {self.calls} calls{waited}; gaps: {gaps}; {self.path}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def cached_opens(path: Path, step: int) -> list[int]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [int(row[0]) - step for row in csv.reader(handle) if row and row[0].isdigit()]


def find_gaps(opens: list[int], start: int, end: int, step: int) -> list[tuple[int, int]]:
    """Missing candle open times in [start, end), as (first, last) ranges."""
    have = {t for t in opens if start <= t < end}
    gaps: list[tuple[int, int]] = []
    first = start + -start % step
    for t in range(first, end, step):
        if t not in have:
            if gaps and gaps[-1][1] == t - step:
                gaps[-1] = (gaps[-1][0], t)
            else:
                gaps.append((t, t))
    return gaps


def download(
    exchange: Any,
    symbol: str,
    timeframe: str,
    start: datetime,
    end: datetime,
    cache: Path = DEFAULT_CACHE,
    sleep: Callable[[float], None] = time.sleep,
    max_waits: int = 10,
) -> Download:
    """Fill the cache with `symbol`'s closed candles from `start` to `end` (UTC), resuming after what it holds."""
    step = timeframe_ms(timeframe)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    path = cache_file(cache, exchange.id, symbol, timeframe)
    path.parent.mkdir(parents=True, exist_ok=True)
    opens = cached_opens(path, step)
    result, pacer = Download(symbol, path), Pacer()
    since = max(start_ms, opens[-1] + step) if opens else start_ms
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        while since < end_ms:
            candles = _page(exchange, symbol, timeframe, since, result, pacer, sleep, max_waits)
            closed = [c for c in candles if since <= c[0] < end_ms and c[0] + step <= exchange.milliseconds()]
            for c in closed:
                writer.writerow([int(c[0]) + step, *c[1:6]])
            handle.flush()  # a page is kept as soon as it is read: an interruption resumes after it
            result.fetched += len(closed)
            opens += [int(c[0]) for c in closed]
            if not candles or candles[-1][0] < since:
                break  # nothing more at the venue
            since = int(candles[-1][0]) + step
    result.gaps = find_gaps(opens, start_ms, min(end_ms, exchange.milliseconds() - step + 1), step)
    save_rules(exchange, symbol, path.parent / "market.json")
    return result


def save_rules(exchange: Any, symbol: str, path: Path) -> None:
    """The market's lot rules beside its candles, so an offline backtest applies them as the live broker does."""
    market = exchange.market(symbol)
    kept = {
        "precision": market.get("precision"),
        "limits": market.get("limits"),
        "precisionMode": exchange.precisionMode,
    }
    path.write_text(json.dumps(kept, indent=2, default=str))


def cached_series(
    cache: Path, exchange: str, symbol: str, timeframe: str, start: datetime | None, end: datetime | None
) -> tuple[list[Bar], LotRules, Path]:
    """The downloaded candles that opened in [start, end) (either open-ended), the market's lot rules saved with
    them, and the file they came from; ValueError says what to download when there is nothing."""
    path = cache_file(cache, exchange, symbol, timeframe)
    if not path.is_file():
        raise ValueError(
            f"no downloaded history at {path}: run `bot-runtime data download --exchange {exchange} "
            f"--symbols {symbol} --timeframe {timeframe} --from ... --to ...` first"
        )
    first = start.timestamp() * 1000 if start else float("-inf")
    last = end.timestamp() * 1000 if end else float("inf")
    step = timeframe_ms(timeframe)
    held = csv_bars(path) if path.stat().st_size else []  # a download that found nothing leaves an empty file
    bars = [b for b in held if first <= b.close_ms - step < last]  # opened in [from, to), as downloaded
    if not bars:
        raise ValueError(
            f"no {symbol} {timeframe} candles of {exchange} between {start or 'the start'} and {end or 'the end'} "
            f"(the cache holds {len(held)} others at {path})"
        )
    return bars, load_rules(path.parent), path


def load_rules(directory: Path) -> LotRules:
    path = directory / "market.json"
    if not path.is_file():
        return LotRules()
    market = json.loads(path.read_text())
    return LotRules.of_market(market, market.get("precisionMode", TICK_SIZE))


def _page(
    exchange: Any,
    symbol: str,
    timeframe: str,
    since: int,
    result: Download,
    pacer: Pacer,
    sleep: Callable[[float], None],
    max_waits: int,
) -> list[list[Any]]:
    while True:
        result.calls += 1
        try:
            candles = exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=PAGE)
            pacer.answered()
            # ccxt passes an odd body through as [[None, ...]] (backtrader-ccxt.md 3.1): such rows are no candles
            return [c for c in candles if len(c) >= 6 and None not in c[:6]]
        except RATE_LIMITED as exc:
            if len(result.waits) >= max_waits:
                raise
            delay = pacer.rate_limited(exchange)  # the venue's Retry-After, else an exponential back-off
            log.warning("%s: rate limited by %s (%s); waiting %.0f s", symbol, exchange.id, type(exc).__name__, delay)
            result.waits.append(delay)
            sleep(delay)
