"""Real history for backtests (issue 19, in part): `bot-runtime data download` pages through a venue's klines
with the real ccxt client, waits out the venue's rate limit, resumes after what it holds, reports the
candles the venue does not have, and a backtest replays the cache. Against the Binance double."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot_runtime.cli import main
from bot_runtime.exchange import build_exchange
from bot_runtime.history import cache_file, download
from tests.support.exchange_double import Behaviour, ExchangeDouble

MINUTE_MS = 60_000
_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
END = _HOUR_AGO.replace(minute=_HOUR_AGO.minute - _HOUR_AGO.minute % 5, second=0, microsecond=0)  # 5m-aligned
START = END - timedelta(days=3)  # 4,320 one-minute candles: five pages of 1,000
GAP = (int((START + timedelta(hours=30)).timestamp() * 1000), int((START + timedelta(hours=31)).timestamp() * 1000))


@pytest.fixture
def binance() -> Iterator[ExchangeDouble]:
    # a second-scale rate limit, escalating to a ban on the third refusal in a window, as Binance does (SOURCES.md)
    behaviour = Behaviour(rate_limit=2, rate_window_s=1.0, retry_after_s=1, missing_candles=(GAP,))
    double = ExchangeDouble("binance", behaviour=behaviour).start()
    try:
        yield double
        assert double.errors == []  # every request was one the double models
    finally:
        double.stop()


def opens(path: Path) -> list[int]:
    with path.open(newline="") as handle:
        return [int(row[0]) - MINUTE_MS for row in csv.reader(handle)]


def test_a_download_pages_waits_out_the_rate_limit_resumes_and_reports_the_gap(
    binance: ExchangeDouble, tmp_path: Path
) -> None:
    exchange = build_exchange("binance", api_url=binance.url)
    exchange.enableRateLimit = False  # nothing spaces the calls but the venue's answers
    half = download(exchange, "BTC/USDT", "1m", START, START + timedelta(hours=20), tmp_path)
    assert half.fetched == 20 * 60 and half.gaps == []

    rest = download(exchange, "BTC/USDT", "1m", START, END, tmp_path)  # resumes after the 1,200 it holds
    missing = (GAP[1] - GAP[0]) // MINUTE_MS + 1
    assert rest.fetched == 3 * 24 * 60 - 20 * 60 - missing
    assert rest.gaps == [GAP], rest.describe(MINUTE_MS)
    assert rest.waits, "the venue's rate limit was met and waited out"
    assert rest.calls >= 4 + len(rest.waits)  # (4,320 - 1,200) candles need four pages at least

    got = opens(cache_file(tmp_path, "binance", "BTC/USDT", "1m"))
    first = int(START.timestamp() * 1000)
    expected = [t for t in range(first, int(END.timestamp() * 1000), MINUTE_MS) if not GAP[0] <= t <= GAP[1]]
    assert got == expected  # every candle once, in order, none invented in the gap
    again = download(exchange, "BTC/USDT", "1m", START, END, tmp_path)
    assert again.fetched == 0 and again.gaps == [GAP]  # nothing twice; the gap is still said


def test_the_commands_download_two_symbols_and_backtest_the_cache(
    binance: ExchangeDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOTOPS_EXCHANGE_API_URL", binance.url)
    span = ["--from", (END - timedelta(days=2)).isoformat(), "--to", END.isoformat(), "--cache", str(tmp_path)]
    assert (
        main(
            ["data", "download", "--exchange", "binance", "--symbols", "BTC/USDT,ETH/USDT", "--timeframe", "5m", *span]
        )
        == 0
    )
    out = capsys.readouterr().out
    # two days of 5m candles less the venue's missing hour (its 61 one-minute opens hold 13 5m opens, END being
    # aligned to 5 minutes), said for each symbol
    assert out.count(" new candles in ") == 2 and "BTC/USDT: 563 new candles" in out and "ETH/USDT: 563" in out
    assert out.count("(13 candles)") == 2

    spec = ["backtest", "--strategy", "CustomStrategy", "--symbol", "ETH/USDT", "--timeframe", "5m", "--history"]
    assert main([*spec, *span]) == 0
    out = capsys.readouterr().out
    assert "history: 563 candles from" in out and "bars            563" in out
    assert "fill model      market orders fill at the next bar's open" in out
    assert "lot step 0.0001, minimum quantity 0.0001" in out  # the venue's rules, saved with the candles

    assert main([*spec, "--symbol", "SOL/USDT", *span]) == 2  # the last --symbol wins: nothing downloaded for it
    err = capsys.readouterr().err
    assert "no downloaded history" in err and "bot-runtime data download --exchange binance --symbols SOL/USDT" in err
