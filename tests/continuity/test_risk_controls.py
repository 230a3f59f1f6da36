"""Risk controls on a bad day, through the real runtime, PostgreSQL, the control plane and the exchange double:
one gate in the broker, reducing halts, flatten now, stops resting at the venue, risk state across restarts,
caps that cannot be raced, fills saved as they happen."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot_runtime.db.fleet import FleetControls, SavedState
from bot_runtime.db.repository import BotRepository
from tests.support.bots import Bot, RuntimeProcess, spec_with
from tests.support.exchange_double import ExchangeDouble
from tests.support.fake_exchange import FakeExchange
from tests.support.kube import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.db]

STRATEGIES = {"BOTOPS_STRATEGY_PATHS": str(Path(__file__).resolve().parents[1] / "support/strategies/scripted.py")}
LIVE = {
    **STRATEGIES,
    "BOTOPS_EXCHANGE_SECRET": "risk-secret",
    "BOTOPS_EXCHANGE_PASSWORD": "risk-pass",
    "BOTOPS_ORDER_POLL_SECONDS": "0.5",
}
RESTART = {"BOTOPS_LEASE_TTL_SECONDS": "4", "BOTOPS_LEASE_WAIT_SECONDS": "30"}


def scripted(strategy: str = "Scripted", **params: Any) -> dict[str, Any]:
    return spec_with(strategy={"type": strategy, "params": params}, market__warmupBars=5)


def live(venue: ExchangeDouble, strategy: str = "Scripted", timeframe: str = "1s", **params: Any) -> dict[str, Any]:
    return spec_with(
        mode="live",
        strategy={"type": strategy, "params": params},
        market={"exchange": venue.venue.name, "symbol": "BTC/USDT", "timeframe": timeframe, "warmupBars": 3},
        broker={"credentialsSecretRef": {"name": "keys"}},
        risk={"maxDailyLoss": 5000},
    )


def live_env(bot: Bot) -> dict[str, str]:
    return {**LIVE, "BOTOPS_EXCHANGE_API_KEY": f"key-{bot.name}"}  # an account of its own


@pytest.fixture
def binance() -> Iterator[ExchangeDouble]:
    double = ExchangeDouble("binance").start()
    yield double
    double.stop()


def trades(repository: BotRepository, bot: Bot, side: str | None = None) -> list[Any]:
    return [t for t in repository.trades(bot.bot_id) if side is None or t.side == side]


def resting_stops(venue: ExchangeDouble) -> list[Any]:
    """The stop orders open at the venue (the double's truth)."""
    return [o for o in venue.orders if o.type == "stop_loss" and o.is_open]


def held(repository: BotRepository, bot: Bot) -> Decimal:
    return sum((Decimal(f.net_amount) for f in repository.fills(bot.bot_id)), Decimal(0))


def halt(repository: BotRepository, bot: Bot, **kwargs: Any) -> int:
    return FleetControls(repository).halt("bot", f"{bot.namespace}/{bot.name}", "risk test", by="tester", **kwargs)


def test_a_plugin_calling_buy_directly_while_halted_places_nothing(
    make_bot: Callable[..., Bot], start_runtime: Callable[..., RuntimeProcess], repository: BotRepository
) -> None:
    bot = make_bot(scripted("DirectBuyer", buy_amount=1))
    halt(repository, bot)
    runtime = start_runtime(bot, extra_env=STRATEGIES)
    runtime.wait_for_log(r"order \d+ refused: reducing only \(no new exposure\): halted by tester", 60)
    refused = runtime.log().count("refused: reducing only")
    wait_for(lambda: runtime.log().count("refused: reducing only") >= refused + 3, 30, "three more bars refused")
    assert trades(repository, bot) == []
    assert bot.runtime_status()["tradingState"] == "reducing"
    runtime.terminate()


def test_a_bracket_in_live_mode_rests_its_stop_at_the_venue(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    binance: ExchangeDouble,
) -> None:
    bot = make_bot(live(binance, "Bracketeer", buy_amount=0.5, stop_loss_pct=0.1))
    runtime = start_runtime(bot, exchange_url=binance.url, extra_env=live_env(bot))
    wait_for(lambda: held(repository, bot) > 0, 60, "the bracket's buy filled")
    stop = wait_for(lambda: resting_stops(binance), 30, "a stop at the venue")
    assert Decimal(str(stop[0].qty)) == held(repository, bot)  # it protects the whole net position
    runtime.proc.kill()  # the pod dies: the stop still rests at the venue and protects the position
    runtime.wait(10)
    binance.price_fn = lambda open_ms: 50.0
    binance.tick()
    assert binance.account().total("BTC") < 1e-9  # the venue sold, without any runtime
    restarted = start_runtime(bot, exchange_url=binance.url, extra_env={**live_env(bot), **RESTART}, label="again")
    restarted.wait_for_log("start reconciliation: position 0", 60)
    wait_for(lambda: held(repository, bot) == 0, 30, "the stop's fill recorded by the next runtime")
    restarted.terminate()


def test_a_restart_adopts_the_stop_resting_at_the_venue_and_trades_on(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    binance: ExchangeDouble,
) -> None:
    binance.price_fn = lambda open_ms: 100.0  # flat: neither the stop (90) nor the take-profit fires meanwhile
    bot = make_bot(live(binance, "Bracketeer", buy_amount=0.5, stop_loss_pct=0.1))
    runtime = start_runtime(bot, exchange_url=binance.url, extra_env=live_env(bot))
    wait_for(lambda: resting_stops(binance), 60, "a stop at the venue")
    runtime.proc.kill()  # the stop rests at the venue; the next runtime starts before any bar with it
    runtime.wait(10)
    restarted = start_runtime(bot, exchange_url=binance.url, extra_env={**live_env(bot), **RESTART}, label="again")
    restarted.wait_for_log(r"start reconciliation: position 0\.[1-9]", 60)  # half a coin less the fee in coins
    status = bot.live_status(2, "the restarted runtime live")
    assert Decimal(str(status.get("position"))).quantize(Decimal("0.00001")) == held(repository, bot) > 0, (
        restarted.log()[-3000:]
    )
    assert restarted.proc.poll() is None, restarted.log()[-3000:]
    assert len([o for o in binance.orders if o.type == "stop_loss"]) == 1  # adopted, not placed again
    (stop,) = [o for o in binance.orders if o.type == "stop_loss"]
    binance.price_fn = lambda open_ms: 50.0
    binance.tick()  # the adopted stop fires at the venue; the runtime records it as its own
    # (then Bracketeer, flat again, may buy at once: the position alone cannot tell the stop's fill was booked)

    def stop_fill_booked() -> bool:
        return any(
            t.client_order_id == stop.client_order_id and t.side == "sell" for t in repository.trades(bot.bot_id)
        )

    try:
        wait_for(stop_fill_booked, 30, "the adopted stop's fill recorded")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: {[(o.type, o.status) for o in binance.orders]}\n{restarted.log()[-4000:]}"
        ) from None
    restarted.terminate()


def test_a_brackets_take_profit_lifts_its_stop_at_the_venue_and_sells_once(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    binance: ExchangeDouble,
) -> None:
    bot = make_bot(live(binance, "Bracketeer", buy_amount=0.5, stop_loss_pct=0.1))
    runtime = start_runtime(bot, exchange_url=binance.url, extra_env=live_env(bot))
    wait_for(lambda: resting_stops(binance), 60, "a stop at the venue")
    binance.price_fn = lambda open_ms: 1000.0  # far above the take-profit (1.5 x the entry bar's close)
    wait_for(lambda: held(repository, bot) == 0, 60, "the take-profit's sell recorded")
    runtime.wait_for_log(r"limit bt\S+ reached at", 5)
    stops = [o for o in binance.orders if o.type == "stop_loss"]
    sells = [o for o in binance.orders if o.side == "sell" and o.type == "market"]
    assert [o.status for o in stops] == ["CANCELED"]  # lifted before the sell: it held the coins
    assert len(sells) == 1 and sells[0].status == "FILLED"
    assert [o for o in binance.orders if o.is_open] == []
    runtime.terminate()


def test_a_stop_that_fired_at_the_venue_is_not_sold_again_by_the_bots_own_exit(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    binance: ExchangeDouble,
) -> None:
    """The venue's stop and the strategy's stop-loss see the same fall. The bot learns of the venue's fill at
    its next look-up (every 20 s here), after its own exit fired: cancelling the stop then says "unknown order",
    which means filled or gone, not cancelled, so the exit must wait for the look-up, not sell the coins again."""
    bot = make_bot(live(binance, buy_amount=0.5, stop_loss_pct=0.2))
    env = {**live_env(bot), "BOTOPS_ORDER_POLL_SECONDS": "20"}
    runtime = start_runtime(bot, exchange_url=binance.url, extra_env=env)
    wait_for(lambda: resting_stops(binance), 60, "a stop at the venue")
    binance.price_fn = lambda open_ms: 50.0
    wait_for(lambda: held(repository, bot) == 0, 60, "flat in the bot's fills")
    assert [o.status for o in binance.orders if o.type == "stop_loss"] == ["FILLED"]
    assert [o for o in binance.orders if o.side == "sell" and o.type == "market"] == []  # no second sell
    assert "insufficient" not in runtime.log().lower()
    runtime.terminate()


def test_flatten_closes_a_1h_bot_with_its_feed_down_within_seconds(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    binance: ExchangeDouble,
    migrated_database_url: str,
) -> None:
    bot = make_bot(live(binance, timeframe="1h", buy_amount=0.5))
    runtime = start_runtime(bot, exchange_url=binance.url, extra_env=live_env(bot))
    wait_for(lambda: held(repository, bot) > 0, 60, "a position")
    binance.inject("GET", "/api/v3/klines", 503, times=100_000)
    # market data is gone (the next 1h bar would be an hour away anyway): the flatten needs neither
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot_operator",
            "fleet",
            "halt",
            "--bot",
            f"{bot.namespace}/{bot.name}",
            "--flatten",
            "--reason",
            "exchange incident",
            "--database-url",
            migrated_database_url,
            "--by",
            "risk-desk",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "positions are being closed now" in done.stdout
    wait_for(lambda: binance.account().total("BTC") < 1e-9, 20, "flat at the venue")
    elapsed = time.monotonic() - started
    wait_for(lambda: held(repository, bot) == 0, 20, "the close recorded")
    assert elapsed < 20, f"flat after {elapsed:.1f} s"  # bars are an hour apart and the feed is down
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot_operator",
            "fleet",
            "status",
            "--namespace",
            bot.namespace,
            "--output",
            "json",
            "--database-url",
            migrated_database_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and f'"bot": "{bot.namespace}/{bot.name}"' in status.stdout
    runtime.terminate()


def test_a_halted_bots_stop_loss_still_fires(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
) -> None:
    bot = make_bot(scripted(buy_amount=10, stop_loss_pct=0.05))
    runtime = start_runtime(bot, extra_env=STRATEGIES)
    wait_for(lambda: trades(repository, bot, "buy"), 60, "a position")
    halt(repository, bot)  # reducing: nothing adds exposure, protection still works
    wait_for(lambda: bot.runtime_status().get("tradingState") == "reducing", 30, "reducing in status")
    fake_exchange.price_fn = lambda open_ms: 50.0
    wait_for(lambda: trades(repository, bot, "sell"), 60, "the stop-loss sell while halted")
    assert "stop_loss: stop loss" in runtime.log()
    runtime.terminate()


def test_a_restart_on_a_bad_day_keeps_the_daily_loss_halt(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
) -> None:
    bot = make_bot(
        spec_with(
            strategy={"type": "Scripted", "params": {"buy_amount": 1}},
            market__timeframe="1h",
            market__warmupBars=30,
            risk__maxDailyLoss=100,
        )
    )
    today = datetime.now(UTC).date()
    reason = f"daily loss 150.00 reached max_daily_loss 100; entries halted until {today.isoformat()} 24:00 UTC"
    FleetControls(repository).save_state(
        bot.bot_id,
        0,
        SavedState(
            cash=9_850,
            position=0,
            entry_price=0,
            entry_time=None,
            high_since_entry=0,
            realized_pnl=-150,
            day=today,
            day_start_equity=10_000,
            baseline_equity=10_000,
            daily_halt_reason=reason,
        ),
    )
    # 30 one-hour warm-up bars reach into yesterday: they must neither open a new day nor lift the halt
    runtime = start_runtime(bot, extra_env=STRATEGIES)
    status = wait_for(lambda: (s := bot.runtime_status()).get("feedState") == "LIVE" and s, 60, "live")
    assert status["tradingState"] == "reducing" and "max_daily_loss 100" in status["haltReason"]
    time.sleep(3)  # the flat bot wants to buy on its first live bar: the halt of today forbids it
    assert trades(repository, bot) == []
    runtime.terminate()


def test_a_trailing_stop_survives_a_restart_with_warm_up_bars_above_the_entry(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
) -> None:
    fake_exchange.price_fn = lambda open_ms: 100.0
    bot = make_bot(scripted(buy_amount=1, trail_pct=0.03))
    first = start_runtime(bot, extra_env={**STRATEGIES, **RESTART}, label="first")
    wait_for(lambda: trades(repository, bot, "buy"), 60, "the entry at 100")
    first.proc.kill()
    first.wait(10)
    restart_ms = time.time() * 1000
    # the history the next runtime warms up on: 105 before the restart (a high the position never saw), then 101
    fake_exchange.price_fn = lambda open_ms: 105.0 if open_ms < restart_ms - 3000 else 101.0
    second = start_runtime(bot, extra_env={**STRATEGIES, **RESTART}, label="second")
    second.wait_for_log(r"found position 1 @ 100(\.\d+)? in the saved state", 60)
    wait_for(lambda: bot.runtime_status().get("feedState") == "LIVE", 60, "live")
    time.sleep(5)  # five bars at 101: 2 % under the warm-up's 105, 1 % over the entry's 100
    assert trades(repository, bot, "sell") == [], "the warm-up's 105 raised the trailing stop"
    second.terminate()


def test_ten_bots_deciding_on_the_same_candle_never_exceed_their_cap_together(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
    user_id: int,
) -> None:
    fake_exchange.price_fn = lambda open_ms: 100.0
    FleetControls(repository).set_cap("user", str(user_id), 220.0, by="tester")  # room for four 50-notional buys
    buy_after = time.time() + 40  # every bot enters on the same bar, once all of them are live (a loaded machine)
    bots = [
        make_bot(scripted(buy_amount=0.5, buy_after=buy_after), name=f"capped-{i}", user_id=user_id) for i in range(10)
    ]
    runtimes = [start_runtime(b, extra_env=STRATEGIES, label=b.name) for b in bots]
    wait_for(
        lambda: all("trade bt" in r.log() or "exposure cap" in r.log() for r in runtimes),
        120,
        "every bot decided",
    )
    time.sleep(2)  # the last fills' exposure written
    bought = [b for b in bots if trades(repository, b, "buy")]
    with repository.session() as s:
        exposure = s.execute(
            sa.text("SELECT sum(exposure) FROM trading_bots WHERE user_id = :u"), {"u": user_id}
        ).scalar_one()
    assert 1 <= len(bought) <= 4 and float(exposure) <= 220.0 + 1e-6, (len(bought), exposure)
    assert sum("exposure cap of user" in r.log() for r in runtimes) >= 6 - (4 - len(bought))
    for runtime in runtimes:
        runtime.terminate()


def test_a_runtime_killed_right_after_a_fill_restarts_with_that_fills_state(
    make_bot: Callable[..., Bot], start_runtime: Callable[..., RuntimeProcess], repository: BotRepository
) -> None:
    bot = make_bot(scripted(buy_amount=2))
    first = start_runtime(bot, extra_env={**STRATEGIES, **RESTART}, label="first")
    first.wait_for_log(r"trade bt\S+: buy 2 @", 60)
    os.kill(first.pid, 9)  # at once: the journal's background writer has had no time
    first.wait(10)
    second = start_runtime(bot, extra_env={**STRATEGIES, **RESTART}, label="second")
    second.wait_for_log(r"onStart adopt: found position 2 @ [0-9.]+ in the saved state; adopted", 60)
    second.terminate()
