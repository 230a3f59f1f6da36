"""Live trading against each venue's double, through the real runtime process, ccxt, PostgreSQL and the
control plane. Each scenario compares what the bot believes (its fills, its state, its status) with what
the venue holds (the double's truth), to the last lot step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot_runtime.db.repository import BotRepository
from tests.support.bots import Bot, RuntimeProcess, spec_with
from tests.support.exchange_double import ExchangeDouble
from tests.support.kube import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.db]

SCRIPTED = Path(__file__).resolve().parents[1] / "support" / "strategies" / "scripted.py"
STEP = Decimal("0.00001")
LIVE = {
    "BOTOPS_EXCHANGE_SECRET": "venue-secret",
    "BOTOPS_EXCHANGE_PASSWORD": "venue-passphrase",  # OKX signs with a passphrase too
    "BOTOPS_STRATEGY_PATHS": str(SCRIPTED),
    "BOTOPS_ORDER_POLL_SECONDS": "0.5",
}
RESTART = {"BOTOPS_LEASE_TTL_SECONDS": "4", "BOTOPS_LEASE_WAIT_SECONDS": "30"}


@pytest.fixture(params=["binance", "okx", "bybit"])
def venue(request: pytest.FixtureRequest) -> Iterator[ExchangeDouble]:
    double = ExchangeDouble(request.param).start()
    try:
        yield double
    finally:
        double.stop()
        assert not double.errors, f"requests the double could not answer: {double.errors}"


def live_spec(venue: ExchangeDouble, symbol: str = "BTC/USDT", **params: Any) -> dict[str, Any]:
    return spec_with(
        mode="live",
        strategy={"type": "Scripted", "params": params},
        market={"exchange": venue.venue.name, "symbol": symbol, "timeframe": "1s", "warmupBars": 3},
        broker={"credentialsSecretRef": {"name": "keys"}},
        risk={"maxDailyLoss": 5000},
        allowSharedAccount=False,
    )


def start(
    start_runtime: Callable[..., RuntimeProcess], bot: Bot, venue: ExchangeDouble, label: str = "runtime", **env: str
) -> RuntimeProcess:
    # one account per test: the double's own (every key trades the double's default account)
    env = {"BOTOPS_EXCHANGE_API_KEY": f"key-{id(venue)}", **LIVE, **env}
    return start_runtime(bot, exchange_url=venue.url, extra_env=env, label=label)


def held(repository: BotRepository, bot: Bot) -> Decimal:
    """The bot's position as its recorded fills add it up."""
    return sum((Decimal(f.net_amount) for f in repository.fills(bot.bot_id) if f.mode == "live"), Decimal(0))


def posts(venue: ExchangeDouble) -> list[dict[str, Any]]:
    """The market orders sent (a protective stop resting at the venue is not one of them)."""
    create = {"binance": "/api/v3/order", "okx": "/api/v5/trade/batch-orders", "bybit": "/v5/order/create"}
    return [
        p
        for m, path, p in venue.request_log
        if m == "POST" and path == create[venue.venue.name] and p.get("type", "MARKET") == "MARKET"
    ]


def test_fee_in_the_bought_asset_then_the_stop_loss_sells_exactly_the_net_holding(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    bot = make_bot(live_spec(venue, buy_amount=0.5))
    runtime = start(start_runtime, bot, venue)
    wait_for(lambda: held(repository, bot) > 0, 90, "the buy's fills recorded")
    net = Decimal("0.5") * (1 - Decimal("0.001"))  # the venue kept 0.1 % of the BTC received
    assert held(repository, bot) == net
    assert Decimal(str(venue.account().total("BTC"))).quantize(STEP) == net
    status = wait_for(lambda: (s := bot.runtime_status()).get("position") and s, 30, "the position in status")
    assert Decimal(str(status["position"])) == net

    venue.price_fn = lambda open_ms: 50.0  # -50 %: the stop-loss fires
    wait_for(lambda: held(repository, bot) == 0, 60, "flat in the bot's fills")
    assert venue.account().total("BTC") < float(STEP)
    sells = [f for f in repository.fills(bot.bot_id) if f.side == "sell"]
    assert sum(Decimal(f.amount) for f in sells) == net  # exactly the net holding: no insufficient balance
    assert all(o.status == "filled" for o in repository.orders(bot.bot_id))
    assert "insufficient" not in runtime.log().lower()
    runtime.terminate()
    row = repository.get_bot(bot.bot_id)
    assert row is not None and row.status == "stopped", (row.status, row.error_message, runtime.log()[-3000:])


def test_an_ambiguous_create_with_a_lagging_lookup_places_exactly_one_order(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    venue.behaviour.ambiguous_creates = 1  # booked, then answered with a 502
    venue.behaviour.not_found_s = 4.0  # and the order reads "does not exist" for a while
    bot = make_bot(live_spec(venue, buy_amount=0.5, entries=3))
    runtime = start(start_runtime, bot, venue, BOTOPS_NOT_FOUND_WINDOW_SECONDS="20")
    cid = runtime.wait_for_log(r"order (bt\S+): ambiguous failure", 60).group(1)
    runtime.wait_for_log(f"order {cid} found at the venue after an ambiguous send", 60)
    wait_for(lambda: held(repository, bot) > 0, 30, "the order's fills recorded")
    assert len([o for o in venue.orders if o.client_order_id == cid]) == 1
    assert len(posts(venue)) == 1, "an order was sent again"
    assert [e.message for e in repository.events(bot.bot_id, "order_unresolved")], "the wait was not said"
    assert Decimal(str(venue.account().total("BTC"))).quantize(STEP) == held(repository, bot)
    runtime.terminate()


def test_a_partial_fill_then_a_restart_gives_the_position_the_venue_holds(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    venue.behaviour.partial_fills = 10  # a tenth now, a tenth at each later look-up
    bot = make_bot(live_spec(venue, buy_amount=0.4))
    first = start(start_runtime, bot, venue, "first", BOTOPS_ORDER_POLL_SECONDS="2", **RESTART)
    wait_for(lambda: held(repository, bot) > 0, 90, "the first part's fill recorded")
    first.proc.kill()  # no goodbye, the order half done
    first.wait(10)

    second = start(start_runtime, bot, venue, "second", **RESTART)
    second.wait_for_log("start reconciliation: ", 90)
    venue_holds = Decimal(str(venue.account().total("BTC"))).quantize(STEP)
    assert Decimal(0) < venue_holds < Decimal("0.4") * (1 - Decimal("0.001"))  # a part of the order, cancelled
    wait_for(lambda: held(repository, bot) == venue_holds, 30, "the bot's fills equal to what the venue holds")
    try:
        status = wait_for(
            lambda: (s := bot.runtime_status()).get("leaseToken", 0) >= 2 and s.get("position") and s, 60, "the status"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status {bot.runtime_status()}; runtime log:\n{second.log()[-4000:]}") from None
    assert Decimal(str(status["position"])).quantize(STEP) == venue_holds
    assert len(posts(venue)) == 1  # adopted, not bought again
    second.terminate()


def test_an_amount_under_the_minimum_is_skipped_and_said(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    bot = make_bot(live_spec(venue, buy_amount=0.00005))  # the minimum quantity is 0.0001
    runtime = start(start_runtime, bot, venue)
    event = wait_for(lambda: repository.events(bot.bot_id, "order_skipped"), 90, "an order_skipped event")[0]
    assert "below the minimum quantity 0.0001" in event.message
    assert "order skipped: amount 0.00005 is below the minimum quantity" in runtime.log()
    assert posts(venue) == []
    assert runtime.proc.poll() is None  # skipped, not crashed
    runtime.terminate()
    assert runtime.proc.returncode == 0


def test_two_bots_on_one_key_with_different_quote_assets_each_sell_only_their_own_fills(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    usdt = make_bot(live_spec(venue, "BTC/USDT", buy_amount=0.5))
    eur = make_bot(live_spec(venue, "BTC/EUR", buy_amount=0.3))
    runtimes = [start(start_runtime, usdt, venue, "usdt"), start(start_runtime, eur, venue, "eur")]
    for bot in (usdt, eur):
        wait_for(lambda b=bot: held(repository, b) > 0, 90, f"{bot.name}'s buy recorded")
    fee = 1 - Decimal("0.001")
    assert (held(repository, usdt), held(repository, eur)) == (Decimal("0.5") * fee, Decimal("0.3") * fee)

    venue.price_fn = lambda open_ms: 50.0  # both stop-losses fire
    for bot, bought in ((usdt, Decimal("0.5") * fee), (eur, Decimal("0.3") * fee)):
        wait_for(lambda b=bot: held(repository, b) == 0, 60, f"{bot.name} flat")
        sold = sum(Decimal(f.amount) for f in repository.fills(bot.bot_id) if f.side == "sell")
        assert sold == bought  # its own coins, to the last step: never the other bot's
    assert venue.account().total("BTC") < float(STEP)
    for runtime in runtimes:
        runtime.terminate()


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"], indirect=True)
def test_an_authentication_failure_on_an_order_stops_the_bot_and_says_so(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    bot = make_bot(live_spec(venue, buy_amount=0.5, wait_bars=3))
    runtime = start(start_runtime, bot, venue)
    wait_for(lambda: bot.runtime_status().get("feedState") == "LIVE", 60, "trading on a live feed")
    venue.behaviour.rejected_keys.add(f"key-{id(venue)}")  # the key is revoked while the bot runs
    assert runtime.wait(60) == 2, runtime.log()
    assert "authentication failed on an order" in runtime.log()
    row = repository.get_bot(bot.bot_id)
    assert row is not None and row.status == "error" and "AuthenticationError" in (row.error_message or "")
    assert "AuthenticationError" in bot.runtime_status()["message"]


@pytest.mark.parametrize("venue", ["binance"], indirect=True)
def test_a_rate_limit_holds_every_call_for_the_venues_retry_after(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    bot = make_bot(live_spec(venue, buy_amount=0.5, stop_loss_pct=0.5))
    runtime = start(start_runtime, bot, venue)
    wait_for(lambda: held(repository, bot) > 0, 90, "the buy recorded")
    venue.behaviour.retry_after_s = 5
    venue.behaviour.rate_limit = 1  # a second request within a second is refused: 429 with Retry-After: 5
    first = wait_for(lambda: next((t for t, _, _, s in venue.answers if s == 429), None), 30, "a 429 answered")
    venue.behaviour.rate_limit = None
    wait_for(lambda: any(t > first + 5 for t, *_ in venue.answers), 30, "calls again after the wait")
    # answers already on their way when the 429 came are allowed a moment; nothing is asked during the wait
    during = [(round(t - first, 2), m, p) for t, m, p, _ in venue.answers if first + 0.5 < t < first + 4.8]
    assert during == [], f"calls while the venue asked to wait: {during}"
    assert runtime.proc.poll() is None
    runtime.terminate()


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"], indirect=True)
def test_a_clock_outside_the_venues_window_is_resynchronised(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    venue.behaviour.clock_offset_ms = -45_000  # the venue's clock is 45 s behind ours: every window is exceeded
    bot = make_bot(live_spec(venue, buy_amount=0.5))
    runtime = start(start_runtime, bot, venue)
    wait_for(lambda: held(repository, bot) > 0, 90, "the buy placed and recorded")
    venue.behaviour.clock_offset_ms = 45_000  # and now 45 s ahead: the next signed call is refused, then resent
    venue.price_fn = lambda open_ms: 50.0
    wait_for(lambda: held(repository, bot) == 0, 60, "the stop-loss placed after a resync")
    assert runtime.proc.poll() is None
    runtime.terminate()


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"], indirect=True)
def test_an_account_holding_less_than_the_ledger_is_a_drift_and_the_bot_sells_only_what_is_there(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    venue: ExchangeDouble,
) -> None:
    bot = make_bot(live_spec(venue, buy_amount=0.5))
    runtime = start(start_runtime, bot, venue, BOTOPS_BALANCE_POLL_SECONDS="1")
    wait_for(lambda: held(repository, bot) > 0, 90, "the buy recorded")
    venue.balances["BTC"] = venue.balances["BTC"] - 0.2  # someone sold 0.2 BTC of this account by hand
    status = wait_for(lambda: (s := bot.runtime_status()).get("drift") and s, 60, "the drift in status")
    assert "the account holds 0.2995 BTC, less than the 0.4995" in status["drift"]
    # the event goes through the journal, which may write it a moment after the status patch
    wait_for(lambda: repository.events(bot.bot_id, "position_drift"), 30, "the drift event")
    venue.price_fn = lambda open_ms: 50.0

    def sold() -> Decimal:
        return sum((Decimal(f.amount) for f in repository.fills(bot.bot_id) if f.side == "sell"), Decimal(0))

    wait_for(lambda: sold() > 0, 60, "the stop-loss sell recorded")
    assert sold() == Decimal("0.2995")  # what the account held: no insufficient-balance refusal
    assert venue.account().total("BTC") < float(STEP)
    # a protective stop sent as the coins went may be refused; once the bot knows the drift, no sell is
    assert "insufficient" not in runtime.log().split("position drift", 1)[1].lower()
    runtime.terminate()
