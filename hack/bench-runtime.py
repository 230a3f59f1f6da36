#!/usr/bin/env python3
"""Benchmark the bot runtime; prints numbers, asserts nothing (machines here are shared and noisy).

1. resident memory of a real `bot-runtime` process once its feed is LIVE (paper bot, loopback exchange,
   test control plane and PostgreSQL, as in the tests);
2. its CPU seconds over one idle minute (1m candles: nothing to do between closes);
3. backtest speed in bars per second over a 100,000-bar synthetic series.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubernetes import client  # noqa: E402

from bot_runtime.api.models import TradingBotSpec  # noqa: E402
from bot_runtime.backtest import run_backtest  # noqa: E402
from bot_runtime.db import migrate  # noqa: E402
from bot_runtime.db.engine import create_engine  # noqa: E402
from bot_runtime.db.repository import BotRepository  # noqa: E402
from botops_dev.controlplane import running_control_plane  # noqa: E402
from botops_dev.postgres import find_server, scratch_database  # noqa: E402
from tests.conftest import install_crds  # noqa: E402
from tests.support.bots import Bot, RuntimeProcess, spec_with  # noqa: E402
from tests.support.fake_exchange import FakeExchange  # noqa: E402
from tests.support.kube import api_client_for, create_namespace, wait_for  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def runtime_numbers(idle_seconds: float) -> tuple[float, float]:
    server = find_server()
    exchange = FakeExchange().start()
    try:
        with (
            running_control_plane() as plane,
            scratch_database(server, "tbo_bench") as url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            install_crds(plane)
            migrate.upgrade(url)
            engine = create_engine(url)
            api: client.ApiClient = api_client_for(plane.kubeconfig_path)
            create_namespace(plane, "bench")
            bot = Bot(
                plane,
                api,
                BotRepository(engine),
                "bench",
                "bench-bot",
                spec_with(market__timeframe="1m", market__warmupBars=100, runtime__heartbeatIntervalSeconds=10),
                Path(tmp),
            )
            runtime = RuntimeProcess(bot, url, Path(tmp), exchange_url=exchange.url)
            try:
                wait_for(lambda: bot.runtime_status().get("feedState") == "LIVE", 120, "feed LIVE")
                memory = rss_mib(runtime.pid)
                before = runtime.cpu_seconds()
                time.sleep(idle_seconds)
                cpu = (runtime.cpu_seconds() - before) * 60.0 / idle_seconds
                runtime.terminate()
            finally:
                runtime.close()
                engine.dispose()
            return memory, cpu
    finally:
        exchange.stop()
        server.stop()


def backtest_speed(bars: int) -> tuple[float, int]:
    spec = TradingBotSpec.model_validate(
        {
            "strategy": {
                "type": "CustomStrategy",
                "params": {"entry_logic": "sma_crossover", "exit_logic": ["stop_loss", "take_profit"]},
            },
            "market": {"exchange": "binance", "symbol": "BTC/USDT", "feed": "synthetic", "seed": 1},
        }
    )
    from bot_runtime.feeds import DataFeedFactory

    feed = DataFeedFactory().historical(spec.market, bars=bars)  # generated before the clock starts
    result = run_backtest(spec, feed=feed)
    metrics = result.metrics()
    return metrics["barsPerSecond"], metrics["trades"]


def main() -> int:
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    memory, cpu = runtime_numbers(idle)
    speed, trades = backtest_speed(100_000)
    print(f"runtime resident memory after start     {memory:8.1f} MiB")
    print(f"runtime CPU per idle minute             {cpu:8.3f} s   (measured over {idle:.0f} s)")
    print(f"backtest speed, 100,000 synthetic bars  {speed:8.0f} bars/s ({trades} round trips)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
