"""`bot-runtime backtest-job`: the pod of a Backtest resource. It reads the job the operator resolved (env
BOTOPS_BACKTEST_JOB: the bot spec, the data range, who it is for), fetches the venue's history when asked,
backtests, and writes the whole result into the database; the operator copies the summary into the status.
The last line it prints says how the run ended (the pod's termination message)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot_runtime.api.backtest_resource import BacktestData, parse_time
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.api.validation import validate_spec
from bot_runtime.backtest import run_backtest
from bot_runtime.db.backtest_results import BacktestStore
from bot_runtime.db.engine import create_engine
from bot_runtime.feeds import timeframe_ms
from bot_runtime.feeds.base import ListFeed
from bot_runtime.lots import LotRules


class JobError(ValueError):
    """The job cannot run as given (said as the pod's last line)."""


def read_job(text: str | None) -> tuple[dict[str, Any], TradingBotSpec, BacktestData]:
    if not text:
        raise JobError("no job: BOTOPS_BACKTEST_JOB is empty (this command runs in a Backtest's pod)")
    try:
        job = json.loads(text)
        data = BacktestData.model_validate(job["data"], strict=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise JobError(f"the job document is unreadable: {exc}") from exc
    spec, result = validate_spec(job.get("bot") or {})
    if spec is None:
        raise JobError("the bot spec cannot be backtested: " + "; ".join(result.errors))
    return job, spec, data


def history(spec: TradingBotSpec, data: BacktestData, cache: Path) -> tuple[ListFeed, LotRules]:
    """The venue's candles for the bot's market in [from, to): downloaded into the cache (resuming what it
    holds), gaps said, then read back with the market's lot rules."""
    from bot_runtime.exchange import build_exchange
    from bot_runtime.history import cached_series, download

    market = spec.market
    start, end = parse_time(data.start or "", "spec.data.from"), parse_time(data.end or "", "spec.data.to")
    exchange = build_exchange(market.exchange)
    fetched = download(exchange, market.symbol, market.timeframe, start, end, cache)
    print(fetched.describe(timeframe_ms(market.timeframe)), flush=True)
    bars, rules, _ = cached_series(cache, market.exchange, market.symbol, market.timeframe, start, end)
    return ListFeed(bars=bars), rules


def run_job(text: str | None, database_url: str, cache: Path) -> int:
    job, spec, data = read_job(text)
    feed, rules = None, None
    if data.source == "history":
        feed, rules = history(spec, data, cache)
    else:  # the Backtest's data source decides, not the bot's live feed
        seed = spec.market.seed if data.seed is None else data.seed
        spec = spec.model_copy(update={"market": spec.market.model_copy(update={"feed": "synthetic", "seed": seed})})
    print(
        f"backtest {job['namespace']}/{job['name']} (generation {job['generation']}): {spec.strategy.type} on "
        f"{spec.market.symbol} {spec.market.timeframe}, {data.source} data",
        flush=True,
    )
    report = run_backtest(spec, bars=data.bars, feed=feed, rules=rules)
    print(report.summary(), flush=True)
    engine = create_engine(database_url, pool_size=1)
    try:
        result_id = BacktestStore(engine).save(job, report.model, report.to_json())
    finally:
        engine.dispose()
    metrics = report.metrics()
    print(
        f"done: {metrics['totalReturnPct']:+.2f} %, {metrics['trades']} trades, max drawdown "
        f"{metrics['maxDrawdownPct']:.2f} %; the whole result is backtest_results row {result_id}",
        flush=True,
    )
    return 0
