"""The real bot-runtime against the loopback exchange, the test control plane and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from bot_runtime.db.repository import BotRepository
from tests.support.bots import Bot, RuntimeProcess
from tests.support.fake_exchange import FakeExchange
from tests.support.kube import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.db]


def test_paper_bot_trades_reports_and_stops_on_sigterm(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
) -> None:
    bot = make_bot()
    runtime = start_runtime(bot)
    runtime.wait_for_log("acquired the lease")
    wait_for(lambda: len(repository.trades(bot.bot_id)) >= 2, 90, "two paper trades in bot_trades")
    status = wait_for(
        lambda: (s := bot.runtime_status()).get("tradeCount", 0) >= 2 and s, 30, "status.runtime.tradeCount >= 2"
    )
    assert status["feedState"] == "LIVE"
    assert status["lastHeartbeat"].endswith("Z") and status["leaseToken"] >= 1
    assert status["generation"] == bot.body["metadata"]["generation"]
    assert "phase" not in (bot.resource().get("status") or {})  # operator fields untouched
    row = repository.get_bot(bot.bot_id)
    assert row is not None and row.status == "running" and row.last_heartbeat is not None
    assert row.equity is not None and row.feed_state == "LIVE"
    trades = repository.trades(bot.bot_id)
    assert {t.mode for t in trades} == {"paper"} and all(
        t.client_order_id.startswith(f"bt{bot.bot_id}-") for t in trades
    )
    assert runtime.http("/readyz")[0] == 200 and runtime.http("/healthz")[0] == 200
    code, metrics = runtime.http("/metrics")
    assert code == 200 and 'botops_feed_state{bot="' in metrics and "botops_trades_total" in metrics

    seconds = runtime.terminate()
    assert runtime.proc.returncode == 0
    assert seconds < 10, f"SIGTERM took {seconds:.1f} s"
    (run,) = repository.runs(bot.bot_id)
    assert run.stopped_at is not None and run.exit_reason == "stopped by SIGTERM"
    row = repository.get_bot(bot.bot_id)
    assert row is not None and row.status == "stopped" and row.lease_holder is None
    assert bot.runtime_status()["feedState"] == "DISCONNECTED"


def test_5xx_burst_breaks_then_recovers_the_feed(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
) -> None:
    bot = make_bot()
    runtime = start_runtime(bot)
    wait_for(lambda: bot.runtime_status().get("feedState") == "LIVE", 60, "feed LIVE")
    fake_exchange.inject("GET", "/api/v3/klines", 503, None, times=4)
    wait_for(lambda: [e for e in repository.events(bot.bot_id) if e.type == "feed_lost"], 30, "feed_lost event")
    wait_for(
        lambda: [e for e in repository.events(bot.bot_id) if e.type == "feed_recovered"], 60, "feed_recovered event"
    )
    assert runtime.proc.poll() is None
    assert runtime.terminate() < 10 and runtime.proc.returncode == 0


def test_authentication_failure_stops_with_the_reason(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
) -> None:
    bot = make_bot()
    runtime = start_runtime(bot)
    wait_for(lambda: bot.runtime_status().get("feedState") == "LIVE", 60, "feed LIVE")
    fake_exchange.inject("GET", "/api/v3/klines", 401, {"code": -2015, "msg": "Invalid API-key."}, times=1000)
    code = runtime.wait(60)
    assert code == 2, runtime.log()
    row = repository.get_bot(bot.bot_id)
    assert row is not None and row.status == "error"
    assert row.error_message is not None and "AuthenticationError" in row.error_message
    status = bot.runtime_status()
    assert "AuthenticationError" in status["message"] and status["feedState"] == "DISCONNECTED"


def test_second_runtime_for_the_same_bot_refuses_to_trade(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
) -> None:
    bot = make_bot()
    first = start_runtime(bot, label="first")
    first.wait_for_log("acquired the lease")
    second = start_runtime(bot, label="second")
    assert second.wait(60) == 3
    assert "already run by" in second.log() and "refusing to trade" in second.log()
    wait_for(lambda: len(repository.trades(bot.bot_id)) >= 1, 90, "a trade by the first runtime")
    token = bot.runtime_status()["leaseToken"]
    assert all(t.client_order_id.startswith(f"bt{bot.bot_id}-{token}-") for t in repository.trades(bot.bot_id))
    assert len(repository.runs(bot.bot_id)) == 1  # the refused runtime never started a run
    first.terminate()


def test_idle_runtime_uses_almost_no_cpu(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
) -> None:
    from tests.support.bots import spec_with

    bot = make_bot(spec_with(market__timeframe="1m", market__warmupBars=40, runtime__heartbeatIntervalSeconds=5))
    runtime = start_runtime(bot)
    wait_for(lambda: bot.runtime_status().get("feedState") == "LIVE", 60, "feed LIVE")
    time.sleep(1)
    before = runtime.cpu_seconds()
    window = 10.0
    time.sleep(window)  # measuring an idle window: CPU seconds, not how long anything took
    used = runtime.cpu_seconds() - before
    assert used < 0.1 * window, f"{used:.2f} CPU seconds in a {window:.0f} s idle window (busy loop?)"
    runtime.terminate()


def test_live_order_whose_response_times_out_is_booked_exactly_once(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
) -> None:
    from tests.support.bots import spec_with

    spec = spec_with(mode="live", broker__credentialsSecretRef={"name": "exchange-keys"}, risk__maxDailyLoss=1000)
    bot = make_bot(spec)
    # The exchange books the first order, then answers only after the client (2 s timeout) gave up.
    fake_exchange.inject("POST", "/api/v3/order", 200, None, hang=3.0)
    runtime = start_runtime(
        bot, extra_env={"BOTOPS_EXCHANGE_API_KEY": "test-key", "BOTOPS_EXCHANGE_SECRET": "test-secret"}
    )
    match = runtime.wait_for_log(r"order (bt\S+): ambiguous failure", 120)
    cid = match.group(1)
    wait_for(
        lambda: [t for t in repository.trades(bot.bot_id) if t.client_order_id == cid],
        30,
        f"the trade of {cid} recorded",
    )
    runtime.terminate()
    assert len([o for o in fake_exchange.orders if o.client_order_id == cid]) == 1
    posts = [
        p
        for m, path, p in fake_exchange.request_log
        if m == "POST" and path == "/api/v3/order" and p.get("newClientOrderId") == cid
    ]
    assert len(posts) == 1, "the order was sent again"
    (order,) = [o for o in repository.orders(bot.bot_id) if o.client_order_id == cid]
    assert order.status == "filled" and order.exchange_order_id is not None
    assert len([t for t in repository.trades(bot.bot_id) if t.client_order_id == cid]) == 1
    assert "test-secret" not in runtime.log() and "test-key" not in runtime.log()


def test_database_outage_loses_no_trade(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    migrated_database_url: str,
) -> None:
    import re

    from tests.support.tcp_proxy import CuttableProxy, pg_target, via_proxy

    proxy = CuttableProxy(pg_target(migrated_database_url))
    try:
        bot = make_bot()
        runtime = start_runtime(bot, database_url=via_proxy(migrated_database_url, proxy.port))
        # cut while the bot holds a position: its exit is a trade the outage must not lose
        wait_for(lambda: (t := repository.trades(bot.bot_id)) and t[-1].side == "buy", 90, "a position held")
        proxy.cut()
        runtime.wait_for_log("spooling to", 30)
        before = len(re.findall(r"trade (bt\S+):", runtime.log()))
        wait_for(
            lambda: (
                len(re.findall(r"trade (bt\S+): sell", runtime.log())) >= 1
                and len(re.findall(r"trade (bt\S+):", runtime.log())) > before
            ),
            90,
            "the exit while the database is away",
        )
        time.sleep(5)  # a window of the outage without the database: entries must be refused, not made
        during = re.findall(r"trade (bt\S+): (buy|sell)", runtime.log())[before:]
        assert during and all(side == "sell" for _, side in during), f"exposure added during the outage: {during}"
        status = bot.runtime_status()  # the API server still answers: the bot says why it only reduces
        assert status["tradingState"] == "reducing" and "database is unreachable" in status["haltReason"]
        assert "trading state reducing: the database is unreachable" in runtime.log()
        proxy.restore()
        runtime.wait_for_log("replayed \\d+ spooled records", 60)
        runtime.wait_for_log("trading state active", 60)  # no order needed to learn the database is back
        wait_for(lambda: bot.runtime_status().get("tradingState") == "active", 30, "status active again")
        runtime.terminate()
        assert runtime.proc.returncode == 0
        made = set(re.findall(r"trade (bt\S+):", runtime.log()))
        recorded = {t.client_order_id for t in repository.trades(bot.bot_id)}
        assert made and made == recorded
    finally:
        proxy.close()


def test_sigterm_while_starting_is_a_graceful_stop_that_loses_no_record(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
) -> None:
    """Kubernetes may delete a pod at any moment, start-up included: the stop is graceful from the first line."""
    bot = make_bot()
    runtime = start_runtime(bot)
    deadline = time.monotonic() + 60
    while "onStart" not in runtime.log() and time.monotonic() < deadline:  # mid start-up, as soon as it is said
        time.sleep(0.005)
    runtime.terminate()
    assert runtime.proc.returncode == 0, runtime.log()[-2000:]
    assert "stopping: SIGTERM" in runtime.log()
    events = [e.type for e in repository.events(bot.bot_id)]
    assert "started" in events and "stopped" in events, events  # written by the journal before the exit
    row = repository.get_bot(bot.bot_id)
    assert row is not None and row.lease_holder is None
