"""Continuity and fleet safety on the real control plane, PostgreSQL and the loopback exchange."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from bot_runtime.db.fleet import FleetControls
from bot_runtime.db.repository import BotRepository
from tests.support.bots import Bot, RuntimeProcess, spec_with
from tests.support.fake_exchange import FakeExchange
from tests.support.kube import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.db]

# Hold a position until the stop-loss says otherwise: entries on SMA crosses, no exit on the opposite one.
HOLDER = {
    "entry_logic": {"name": "sma_crossover", "params": {"fast_period": 3, "slow_period": 8}},
    "exit_logic": [{"name": "stop_loss", "params": {"stop_loss_pct": 0.2}}],
    "exit_on_opposite_signal": False,
    "stake": 0.5,
}
RESTART = {"BOTOPS_LEASE_TTL_SECONDS": "4", "BOTOPS_LEASE_WAIT_SECONDS": "30"}
LIVE = {"BOTOPS_EXCHANGE_API_KEY": "account-one-key", "BOTOPS_EXCHANGE_SECRET": "account-one-secret"}


def holder_spec(**changes: Any) -> dict[str, Any]:
    return spec_with(strategy={"type": "CustomStrategy", "params": HOLDER}, **changes)


def live_spec(**changes: Any) -> dict[str, Any]:
    return spec_with(
        **{
            "mode": "live",
            "broker": {"credentialsSecretRef": {"name": "keys"}},
            "risk": {"maxDailyLoss": 5000},
            **changes,
        }
    )


def state(repository: BotRepository, bot: Bot) -> dict[str, Any]:
    with repository.session() as s:
        row = s.execute(sa.text("SELECT * FROM bot_state WHERE bot_id = :id"), {"id": bot.bot_id}).mappings().first()
    return dict(row or {})


def trade_lines(runtime: RuntimeProcess) -> list[tuple[datetime, str, str]]:
    return [
        (datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f"), cid, side)
        for ts, cid, side in re.findall(r"^(\S+ \S+) INFO bot_runtime: trade (\S+): (buy|sell)", runtime.log(), re.M)
    ]


def test_paper_state_survives_a_killed_runtime_and_the_stop_loss_still_protects(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
) -> None:
    bot = make_bot(holder_spec())
    first = start_runtime(bot, extra_env=RESTART, label="first")
    wait_for(lambda: state(repository, bot).get("position", 0) > 0, 90, "a position saved in bot_state")
    first.proc.kill()  # no goodbye: SIGKILL while the position is open
    first.wait(10)
    saved = state(repository, bot)
    before = repository.get_bot(bot.bot_id)
    assert before is not None

    second = start_runtime(bot, extra_env=RESTART, label="second")
    second.wait_for_log(r"onStart adopt: found position [0-9.]+ @ [0-9.]+ in the saved state; adopted", 60)
    status = bot.live_status(2, "the second runtime's status")
    assert status["position"] == pytest.approx(saved["position"])
    assert status["cash"] == pytest.approx(saved["cash"])
    assert status["tradeCount"] == before.trade_count  # counts continue, they do not reset
    assert abs(status["pnl"] - (status["equity"] - 10_000)) < 1e-6  # PnL from the bot's first cash
    fake_exchange.price_fn = lambda open_ms: 50.0  # the market falls 50 %: the adopted stop-loss must fire
    wait_for(lambda: any(side == "sell" for _, _, side in trade_lines(second)), 60, "the stop-loss sell")
    assert "stop_loss: stop loss" in second.log()
    wait_for(lambda: state(repository, bot).get("position") == 0, 30, "flat in bot_state")
    closed = wait_for(  # the adopted position's close is a round trip with its loss, not a new short trade
        lambda: (s := bot.runtime_status()).get("tradeCount") == before.trade_count + 1 and s,
        30,
        "the adopted round trip counted",
    )
    assert abs(closed["pnl"] - (closed["equity"] - 10_000)) < 1e-6
    loss = saved["position"] * (saved["entry_price"] - 50.0)  # bought near the entry, sold near 50
    realized = wait_for(lambda: (r := state(repository, bot)["realized_pnl"]) != saved["realized_pnl"] and r, 30, "PnL")
    assert realized == pytest.approx(saved["realized_pnl"] - loss, rel=0.1)
    second.terminate()


def test_a_paper_account_kept_across_a_cash_change_is_said_and_can_start_over(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    migrated_database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 18: raising spec.broker.cash keeps the saved paper account (its PnL stays whole) and says so, with the
    command that starts it over; that command refuses while a runtime trades and works once it is stopped."""
    from bot_operator.cli import main

    bot = make_bot(holder_spec())
    first = start_runtime(bot, extra_env=RESTART, label="first")
    wait_for(lambda: state(repository, bot).get("position", 0) > 0, 90, "a position saved in bot_state")
    first.terminate()
    saved = state(repository, bot)
    bot.patch_spec({"broker": {"cash": 12_000}})

    second = start_runtime(bot, extra_env=RESTART, label="second")
    status = bot.live_status(2, "the second runtime's status")
    assert status["differs"].startswith("spec.broker.cash is 12000.00 but this paper bot continues its saved account")
    assert f"bot-operator bot reset-paper {bot.namespace}/{bot.name}" in status["differs"]
    assert status["position"] == pytest.approx(saved["position"])
    reset = ["bot", "reset-paper", f"{bot.namespace}/{bot.name}", "--database-url", migrated_database_url]
    assert main(reset) == 1  # a runtime trades: nothing changes under it
    assert "is running" in capsys.readouterr().err and state(repository, bot)["position"] == saved["position"]
    second.terminate()

    assert main([*reset, "--by", "tester"]) == 0
    assert "the next start begins from spec.broker.cash" in capsys.readouterr().out
    third = start_runtime(bot, extra_env=RESTART, label="third")
    third.wait_for_log(r"onStart adopt: no position in the saved state", 60)
    status = bot.live_status(4, "the third runtime's status")
    assert status.get("differs") is None and abs(status["pnl"] - (status["equity"] - 12_000)) < 1e-6
    assert [e.message for e in repository.events(bot.bot_id, "paper_reset")] == ["paper account started over by tester"]
    third.terminate()


def test_live_fills_while_away_are_recorded_once_then_flatten_and_halt(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    fake_exchange: FakeExchange,
    migrated_database_url: str,
) -> None:
    bot = make_bot(live_spec(strategy={"type": "CustomStrategy", "params": HOLDER}))
    # an order of this bot (our client id prefix) fills on the exchange while no runtime runs
    away = fake_exchange.place(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "2",
            "newClientOrderId": f"bt{bot.bot_id}-7-1",
        }
    )
    for label in ("adopt-1", "adopt-2"):  # twice: the fill is recorded exactly once
        runtime = start_runtime(bot, extra_env={**LIVE, **RESTART}, label=label)
        runtime.wait_for_log(r"onStart adopt: found position 2 @ [0-9.]+ on the exchange; adopted", 60)
        runtime.terminate()
    trades = [t for t in repository.trades(bot.bot_id) if t.client_order_id == f"bt{bot.bot_id}-7-1"]
    assert len(trades) == 1 and trades[0].exchange_order_id == str(away.order_id)

    # a strategy that cannot enter for 1,000 bars: flat stays flat until the test stops it (HOLDER re-entered at
    # once after the flatten, once, and left a position and a resting stop for the next runtime)
    no_entry = {**HOLDER, "entry_logic": {"name": "sma_crossover", "params": {"fast_period": 3, "slow_period": 1000}}}
    bot.patch_spec({"onStart": "flatten", "strategy": {"type": "CustomStrategy", "params": no_entry}})
    runtime = start_runtime(bot, extra_env={**LIVE, **RESTART}, label="flatten")
    runtime.wait_for_log("onStart flatten: found position 2 ", 60)
    wait_for(lambda: fake_exchange.balances["BTC"] < 1e-6, 60, "the position closed on the exchange")
    runtime.terminate()

    fake_exchange.place(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "1",
            "newClientOrderId": f"bt{bot.bot_id}-7-2",
        }
    )
    # halted with a strategy that does want to trade (it exits on the next bearish cross, then re-enters)
    trader = {**HOLDER, "exit_on_opposite_signal": True}
    bot.patch_spec({"onStart": "halt", "strategy": {"type": "CustomStrategy", "params": trader}})
    runtime = start_runtime(bot, extra_env={**LIVE, **RESTART}, label="halt")
    runtime.wait_for_log("onStart halt: found position 1 ", 60)
    status = wait_for(lambda: (s := bot.runtime_status()).get("halted") and s, 30, "halted in status")
    assert "onStart halt" in status["haltReason"] and status["tradingState"] == "reducing"

    def buys() -> int:
        return len(
            [
                p
                for m, path, p in fake_exchange.request_log
                if (m, path) == ("POST", "/api/v3/order") and p.get("side") == "BUY"
            ]
        )

    posted = buys()
    time.sleep(15)  # proving a negative needs a window (several crosses): no exposure is added while halted
    assert buys() == posted
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot_operator",
            "fleet",
            "resume",
            "--bot",
            f"{bot.namespace}/{bot.name}",
            "--database-url",
            migrated_database_url,
            "--by",
            "tester",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: not bot.runtime_status().get("halted"), 30, "the halt lifted in status")
    wait_for(lambda: buys() > posted, 120, "buying again after resume")
    runtime.terminate()
    events = [e.type for e in repository.events(bot.bot_id)]
    assert events.count("on_start") == 4 and events.count("reconciled") == 4  # the choice, each start


def test_two_live_bots_on_one_account_and_symbol_are_refused_without_the_operator(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
) -> None:
    first = make_bot(live_spec(), name="first-on-account")
    runtime = start_runtime(first, extra_env=LIVE, label="first")
    runtime.wait_for_log("running CustomStrategy", 60)
    second = make_bot(live_spec(), name="second-on-account")
    refused = start_runtime(second, extra_env=LIVE, label="second")
    assert refused.wait(60) == 2
    assert (
        f"this exchange account already trades BTC/USDT through bot {first.namespace}/first-on-account" in refused.log()
    )
    assert "account-one-key" not in refused.log() and "account-one-key" not in runtime.log()
    row = repository.get_bot(first.bot_id)
    assert row is not None and row.account_fingerprint and "account-one-key" not in row.account_fingerprint
    shared = make_bot(
        live_spec(
            allowSharedAccount=True,
            market={"exchange": "binance", "symbol": "ETH/USDT", "timeframe": "1s", "warmupBars": 20},
        ),
        name="other-symbol",
    )
    other = start_runtime(shared, extra_env=LIVE, label="other")  # another symbol of the account is fine
    other.wait_for_log("running CustomStrategy", 60)
    other.terminate()
    runtime.terminate()


def test_fleet_halt_stops_ten_bots_at_once_flattens_and_resumes(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    migrated_database_url: str,
    namespace: str,
) -> None:
    bots = [make_bot(holder_spec(), name=f"fleet-{i}") for i in range(10)]
    runtimes = [start_runtime(b, label=b.name) for b in bots]
    try:
        wait_for(lambda: all(b.runtime_status().get("feedState") == "LIVE" for b in bots), 120, "ten bots live")
    except AssertionError as exc:
        late = [(b.name, b.runtime_status(), r.log()[-1500:]) for b, r in zip(bots, runtimes, strict=True)]
        raise AssertionError(f"{exc}: {[x for x in late if x[1].get('feedState') != 'LIVE']}") from None
    wait_for(lambda: sum(state(repository, b).get("position", 0) > 0 for b in bots) >= 3, 120, "open positions")

    def fleet(*args: str) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot_operator",
                "fleet",
                *args,
                "--namespace",
                namespace,
                "--database-url",
                migrated_database_url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "USER": "risk-desk"},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = fleet("halt", "--flatten", "--reason", "exchange incident", "--by", "risk-desk")
    assert "no order adds exposure from now on (exits and stop-losses still go)" in out
    with repository.session() as s:
        committed = s.execute(sa.text("SELECT max(created_at) FROM fleet_halts")).scalar_one()
    committed = committed.astimezone().replace(tzinfo=None)
    wait_for(lambda: all(b.runtime_status().get("halted") for b in bots), 30, "every bot shows the halt")
    assert all(
        "exchange incident" in b.runtime_status()["haltReason"] and "risk-desk" in b.runtime_status()["haltReason"]
        for b in bots
    )
    wait_for(lambda: all(not state(repository, b).get("position") for b in bots), 60, "every bot flat")
    for runtime in runtimes:
        after = [(t, side) for t, _, side in trade_lines(runtime) if t > committed]
        assert all(side == "sell" for _, side in after), f"{runtime.bot.name} bought after the halt: {after}"
    halts = [h for h in FleetControls(repository).active_halts() if (h.scope, h.value) == ("namespace", namespace)]
    assert len(halts) == 1 and halts[0].created_by == "risk-desk" and halts[0].flatten

    resumed_at = datetime.now()
    fleet("resume", "--by", "risk-desk")
    wait_for(lambda: not any(b.runtime_status().get("halted") for b in bots), 30, "halt lifted everywhere")
    wait_for(
        lambda: any(t > resumed_at and side == "buy" for r in runtimes for t, _, side in trade_lines(r)),
        120,
        "trading resumed",
    )
    for runtime in runtimes:
        runtime.terminate()


def test_an_exposure_cap_blocks_only_the_order_that_would_exceed_it(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    user_id: int,
) -> None:
    a = make_bot(holder_spec(), name="cap-a", user_id=user_id)
    runner_a = start_runtime(a, label="a")
    wait_for(
        lambda: (r := repository.get_bot(a.bot_id)) is not None and (r.equity or 0) - (r.cash or 0) > 100,
        90,
        "bot a holds a position",
    )
    row = repository.get_bot(a.bot_id)
    held = (row.equity or 0) - (row.cash or 0)
    FleetControls(repository).set_cap("user", str(user_id), held + 1000, "tester")  # room for a, not for b
    b = make_bot(holder_spec(), name="cap-b", user_id=user_id)
    runner_b = start_runtime(b, label="b")
    refusal = wait_for(
        lambda: [e for e in repository.events(b.bot_id) if e.type == "exposure_cap"],
        120,
        "b's entry refused by the cap",
    )
    assert f"exposure cap of user {user_id}" in refusal[0].message
    assert not [t for t in repository.trades(b.bot_id) if t.side == "buy"]
    wait_for(lambda: "exposure cap" in (b.runtime_status().get("message") or ""), 30, "the refusal in b's status")
    # an order that fits under the cap goes through: only the one that would exceed it is refused
    small = make_bot(
        spec_with(strategy={"type": "CustomStrategy", "params": {**HOLDER, "stake": 0.05}}),
        name="cap-small",
        user_id=user_id,
    )
    runner_small = start_runtime(small, label="small")
    wait_for(lambda: [t for t in repository.trades(small.bot_id) if t.side == "buy"], 120, "a small buy under the cap")
    assert not [e for e in repository.events(small.bot_id) if e.type == "exposure_cap"]
    for runner in (runner_a, runner_b, runner_small):
        runner.terminate()
