"""The repository on real PostgreSQL: configurations, leases with fencing, idempotent trades."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from bot_runtime.api.models import TradingBotSpec
from bot_runtime.api.rows import validate_row
from bot_runtime.db.repository import BotRepository, LeaseLost, TradeRecord
from bot_runtime.db.schema import TradingBot
from tests.corpus import BASE_SPEC

pytestmark = pytest.mark.db


def new_bot(repo: BotRepository, name: str, user_id: int = 1, enabled: bool = True) -> int:
    return repo.create_bot(
        TradingBotSpec.model_validate(BASE_SPEC), name=f"{name}-{time.monotonic_ns()}", user_id=user_id, enabled=enabled
    )


def test_enabled_bots_filtered_by_user(repository: BotRepository) -> None:
    a = new_bot(repository, "a", user_id=901)
    b = new_bot(repository, "b", user_id=902)
    off = new_bot(repository, "off", user_id=901, enabled=False)
    mine = {bot.id for bot in repository.get_enabled_bots(user_id=901)}
    assert a in mine and b not in mine and off not in mine
    everyone = {bot.id for bot in repository.get_enabled_bots()}
    assert {a, b} <= everyone and off not in everyone


def test_row_validates_back_to_its_spec(repository: BotRepository) -> None:
    bot = repository.get_bot(new_bot(repository, "v"))
    assert bot is not None
    spec, result = validate_row(bot)
    assert result.errors == [] and spec == TradingBotSpec.model_validate(BASE_SPEC)


def test_mark_error_keeps_the_message(repository: BotRepository) -> None:
    bot_id = new_bot(repository, "err")
    repository.mark_error(bot_id, "symbol: must be a unified ccxt symbol")
    bot = repository.get_bot(bot_id)
    assert bot is not None and (bot.status, bot.error_message) == ("error", "symbol: must be a unified ccxt symbol")
    with pytest.raises(ValueError, match="not one of"):
        repository.set_status(bot_id, "exploded")


def test_lease_is_exclusive_and_fenced(repository: BotRepository) -> None:
    bot_id = new_bot(repository, "lease")
    first = repository.acquire_lease(bot_id, "pod-a/1", ttl_seconds=30)
    assert first is not None
    assert repository.acquire_lease(bot_id, "pod-b/1", ttl_seconds=30) is None  # a live lease cannot be taken
    assert repository.lease_is_held(first)
    assert repository.renew_lease(first, 30)
    repository.heartbeat(first, feed_state="LIVE", equity=1000.0)


def test_expired_lease_is_taken_over_and_old_holder_fenced_out(repository: BotRepository) -> None:
    bot_id = new_bot(repository, "takeover")
    old = repository.acquire_lease(bot_id, "pod-a/1", ttl_seconds=0.2)
    assert old is not None
    time.sleep(0.4)
    new = repository.acquire_lease(bot_id, "pod-b/2", ttl_seconds=30)
    assert new is not None and new.token == old.token + 1
    assert not repository.lease_is_held(old)
    assert not repository.renew_lease(old, 30)
    with pytest.raises(LeaseLost):
        repository.heartbeat(old, feed_state="LIVE")
    repository.release_lease(old)  # a stale release must not free the new holder's lease
    assert repository.lease_is_held(new)
    repository.release_lease(new)
    assert repository.acquire_lease(bot_id, "pod-c/3", ttl_seconds=30) is not None


def test_heartbeat_writes_status_and_metrics(repository: BotRepository) -> None:
    bot_id = new_bot(repository, "hb")
    lease = repository.acquire_lease(bot_id, "pod/1", 30)
    assert lease is not None
    beat = repository.heartbeat(lease, feed_state="LIVE", equity=1010.5, cash=500.0, pnl=10.5, position=0.1)
    bot = repository.get_bot(bot_id)
    assert bot is not None
    assert (bot.status, bot.feed_state, bot.equity, bot.pnl, bot.last_heartbeat) == (
        "running",
        "LIVE",
        1010.5,
        10.5,
        beat,
    )


def test_record_trade_is_idempotent(repository: BotRepository) -> None:
    bot_id = new_bot(repository, "trades")
    trade = TradeRecord(
        client_order_id="b1t1r1",
        exchange_order_id="9001",
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("0.01"),
        price=Decimal("50000"),
        fee=Decimal("0.5"),
        executed_at=datetime.now(UTC),
        mode="paper",
    )
    assert repository.record_trade(bot_id, trade) is True
    assert repository.record_trade(bot_id, trade) is False
    # the same exchange order under another client id (e.g. found on the exchange later) is a repeat too
    assert repository.record_trade(bot_id, TradeRecord(**{**trade.__dict__, "client_order_id": "other"})) is False
    trades = repository.trades(bot_id)
    assert len(trades) == 1 and trades[0].amount == Decimal("0.01")
    bot = repository.get_bot(bot_id)
    assert bot is not None and bot.trade_count == 1


def test_runs_events_and_performance_are_kept(repository: BotRepository) -> None:
    bot_id = new_bot(repository, "hist")
    lease = repository.acquire_lease(bot_id, "pod/1", 30)
    assert lease is not None
    run_id = repository.start_run(lease, pod="hist-bot", image="img:1", generation=3)
    repository.record_performance(
        bot_id, run_id, ts=datetime.now(UTC), equity=1.0, cash=1.0, pnl=0.0, drawdown=0.0, position=0.0
    )
    repository.record_event(bot_id, "runtime", "started", "started CustomStrategy on BTC/USDT")
    repository.finish_run(run_id, "SIGTERM")
    (run,) = repository.runs(bot_id)
    assert (run.generation, run.lease_token, run.exit_reason) == (3, lease.token, "SIGTERM")
    assert run.stopped_at is not None
    assert [e.type for e in repository.events(bot_id)] == ["started"]


def test_kubernetes_bot_upsert_is_stable(repository: BotRepository) -> None:
    spec = TradingBotSpec.model_validate(BASE_SPEC)
    first = repository.upsert_kubernetes_bot("ns1", "gitops-bot", spec, user_id=None)
    changed = spec.model_copy(update={"description": "changed"})
    assert repository.upsert_kubernetes_bot("ns1", "gitops-bot", changed, user_id=5) == first
    with repository.session() as s:
        row = s.execute(sa.select(TradingBot).where(TradingBot.id == first)).scalar_one()
        assert (row.source, row.external_ref, row.description, row.user_id) == (
            "kubernetes",
            "ns1/gitops-bot",
            "changed",
            5,
        )


def test_example_rows_are_valid_bots(postgres_server: Any) -> None:
    """examples/trading_bots.sql, as a user would run it, gives rows the operator will load."""
    from pathlib import Path

    from bot_runtime.db import migrate
    from bot_runtime.db.engine import create_engine
    from botops_dev.postgres import scratch_database

    sql = (Path(__file__).resolve().parents[2] / "examples" / "trading_bots.sql").read_text()
    with scratch_database(postgres_server, "tbo_examples") as url:
        migrate.upgrade(url)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)
            repo = BotRepository(engine)
            rows = repo.get_enabled_bots()
            assert len(rows) == 3
            for row in rows:
                spec, result = validate_row(row)
                assert spec is not None, (row.name, result.errors)
        finally:
            engine.dispose()
