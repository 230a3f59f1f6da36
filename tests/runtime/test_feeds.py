"""Feeds: the ccxt poller against real ccxt and the loopback exchange; replay feeds; live gating."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot_runtime.btcompat import bt
from bot_runtime.exchange import build_exchange
from bot_runtime.feeds import Bar, FeedState, QueueFeed
from bot_runtime.feeds.ccxt_feed import CcxtPoller
from bot_runtime.feeds.replay import CsvFormatError, ReplayProducer, csv_bars, synthetic_bars
from tests.support.fake_exchange import FakeExchange
from tests.support.kube import wait_for


class Collector:
    """Runs a poller and collects what it emits."""

    def __init__(self, exchange: FakeExchange, warmup: int = 5) -> None:
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.state = FeedState()
        client = build_exchange("binance", api_url=exchange.url, timeout_ms=1500)
        self.poller = CcxtPoller(
            self.queue,
            self.state,
            exchange=client,
            symbol="BTC/USDT",
            timeframe="1s",
            warmup_bars=warmup,
            backoff_initial=0.2,
            backoff_max=1.0,
        )
        self.items: list[tuple[Any, ...]] = []

    def drain(self) -> list[tuple[Any, ...]]:
        while True:
            try:
                self.items.append(self.queue.get_nowait())
            except queue.Empty:
                return self.items

    def statuses(self) -> list[str]:
        return [i[1] for i in self.drain() if i[0] == "status"]

    def bars(self) -> list[Bar]:
        return [i[1] for i in self.drain() if i[0] == "bar"]


def test_poller_delivers_closed_candles_once_then_goes_live(fake_exchange: FakeExchange) -> None:
    feed = Collector(fake_exchange, warmup=5)
    feed.poller.start()
    try:
        wait_for(lambda: len(feed.bars()) >= 10, 20, "ten bars")
    finally:
        feed.poller.stop()
    bars, now_ms = feed.bars(), fake_exchange.now_ms()
    closes = [b.close_ms for b in bars]
    assert closes == sorted(set(closes)), "duplicates or disorder"
    assert all(b - a == 1000 for a, b in itertools.pairwise(closes)), "a gap"
    assert all(close <= now_ms for close in closes), "a candle still forming was delivered"
    assert feed.statuses()[:2] == ["DELAYED", "LIVE"]
    # no busy loop: about one klines request per candle (plus warm-up)
    assert fake_exchange.requests["GET /api/v3/klines"] <= len(bars) + 5


def test_poller_recovers_from_5xx_burst_without_missing_bars(fake_exchange: FakeExchange) -> None:
    feed = Collector(fake_exchange)
    feed.poller.start()
    try:
        wait_for(lambda: "LIVE" in feed.statuses(), 20, "LIVE")
        fake_exchange.inject("GET", "/api/v3/klines", 503, None, times=4)
        wait_for(lambda: "CONNBROKEN" in feed.statuses(), 20, "CONNBROKEN")
        wait_for(lambda: feed.statuses()[-1] == "LIVE" and "CONNBROKEN" in feed.statuses(), 30, "LIVE again")
        wait_for(lambda: len(feed.bars()) >= 15, 30, "more bars")
    finally:
        feed.poller.stop()
    statuses = feed.statuses()
    broken = statuses.index("CONNBROKEN")
    assert "LIVE" in statuses[broken:]
    closes = [b.close_ms for b in feed.bars()]
    assert all(b - a == 1000 for a, b in itertools.pairwise(closes)), "bars missing after the outage"
    assert feed.state.errors >= 1


def test_poller_ends_on_authentication_error(fake_exchange: FakeExchange) -> None:
    fake_exchange.inject("GET", "/api/v3/klines", 401, {"code": -2015, "msg": "Invalid API-key."}, times=100)
    feed = Collector(fake_exchange)
    feed.poller.start()
    feed.poller.join(20)
    assert not feed.poller.is_alive()
    items = feed.drain()
    assert items[-1][0] == "end" and "AuthenticationError" in items[-1][1]
    assert feed.statuses()[-1] == "DISCONNECTED"


class _Recorder(bt.Strategy):  # type: ignore[misc]
    def __init__(self) -> None:
        self.seen: list[tuple[float, bool]] = []
        self.live = False

    def notify_data(self, data: Any, status: int, *args: Any, **kwargs: Any) -> None:
        self.live = status == data.LIVE

    def next(self) -> None:
        self.seen.append((float(self.data.close[0]), self.live))


def test_queue_feed_blocks_and_stops_within_qcheck() -> None:
    state = FeedState()
    bars = list(synthetic_bars(7, 30, 1000, 1_700_000_000_000))
    feed = QueueFeed(
        producer_factory=lambda out, st: ReplayProducer(out, st, bars=iter(bars), warmup_bars=10, pace=0.05),
        state=state,
    )
    cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
    cerebro.adddata(feed)
    cerebro.addstrategy(_Recorder)
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.extend(cerebro.run()))
    runner.start()
    wait_for(lambda: result or (feed.state.bars >= 20), 10, "bars flowing")
    started = time.monotonic()
    cerebro.runstop()
    runner.join(5)
    assert not runner.is_alive() and time.monotonic() - started < 2
    seen = result[0].seen
    assert not any(live for _, live in seen[:10]), "warm-up bars must not be live"
    assert all(live for _, live in seen[10:])


def test_csv_replay_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "timestamp,open,high,low,close,volume\n1700000060,1,2,0.5,1.5,10\n"
        "2023-11-14T22:15:20Z,1.5,2,1,1.8,3\n1700000180000,1.8,1.9,1.7,1.75,2\n"
    )
    bars = csv_bars(good)
    assert [b.close_ms for b in bars] == [1_700_000_060_000, 1_700_000_120_000, 1_700_000_180_000]
    for content, message in [
        ("1700000060,1,2,0.5\n", "line 1: expected timestamp,open,high,low,close,volume; got 4 columns"),
        ("1700000060,1,2,x,1,1\n", "line 1: open/high/low/close/volume must be numbers"),
        ("yesterday,1,2,1,1,1\n", "line 1: timestamp 'yesterday' is neither epoch"),
        ("1700000120,1,2,1,1,1\n1700000060,1,2,1,1,1\n", "line 2: timestamps must increase"),
        ("timestamp,open,high,low,close,volume\n", "no bars"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text(content)
        with pytest.raises(CsvFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
            csv_bars(bad)


def test_synthetic_series_is_a_function_of_time() -> None:
    whole = list(synthetic_bars(5, 200, 60_000, 1_700_000_000_000))
    later = list(synthetic_bars(5, 10, 60_000, whole[150].close_ms))
    assert later == whole[150:160]  # a restarted bot sees the same prices
    assert whole != list(synthetic_bars(6, 200, 60_000, 1_700_000_000_000))
