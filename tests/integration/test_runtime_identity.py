"""Each bot its own database identity (issue 16): connected with a bot's own role, a runtime does its work
(lease, heartbeat, trades, halts read, caps and account claims weighed against the other bots) and nothing
else: it cannot lift or add fleet halts, change caps, read or write another bot's rows, or change its own
configuration. Backtest pods' role writes backtest results only. Real PostgreSQL, the real migrations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from bot_runtime.db.engine import create_engine
from bot_runtime.db.fleet import BotRef, FleetControls
from bot_runtime.db.identity import RuntimeIdentities, scram_verifier
from bot_runtime.db.repository import BotRepository, TradeRecord
from tests.operator.helpers import insert_row, sql

pytestmark = [pytest.mark.db]


@pytest.fixture
def two_bots(repository: BotRepository, user_id: int) -> tuple[int, int]:
    mine, theirs = insert_row(repository, user_id, "mine"), insert_row(repository, user_id, "theirs")
    sql(
        repository,
        "UPDATE trading_bots SET external_ref = 'bots/' || name || '-' || id WHERE id IN (:a, :b)",
        a=mine,
        b=theirs,
    )
    return mine, theirs


@pytest.fixture
def as_bot(repository: BotRepository, migrated_database_url: str, two_bots: tuple[int, int]) -> Iterator[sa.Engine]:
    url = RuntimeIdentities(repository.engine, migrated_database_url).issue_bot(two_bots[0])
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def refused(engine: sa.Engine, statement: str, **params: Any) -> str:
    with pytest.raises(sa.exc.ProgrammingError) as caught, engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege), caught.value
    return str(caught.value.orig)


def trade(cid: str) -> TradeRecord:
    from datetime import UTC, datetime
    from decimal import Decimal

    return TradeRecord(
        client_order_id=cid,
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("0.1"),
        price=Decimal("100"),
        executed_at=datetime.now(UTC),
        mode="paper",
        fee=Decimal("0.01"),
        fee_currency="USDT",
    )


def test_a_bot_role_does_its_work_on_its_own_rows(
    as_bot: sa.Engine, repository: BotRepository, two_bots: tuple[int, int], user_id: int
) -> None:
    mine, theirs = two_bots
    repository.record_trade(theirs, trade(f"theirs-{theirs}"))
    sql(repository, "UPDATE trading_bots SET exposure = 150 WHERE id = :id", id=theirs)
    own = BotRepository(as_bot)
    lease = own.acquire_lease(mine, "pod-a", 30)
    assert lease is not None and own.heartbeat(lease, equity=1000.0, cash=900.0)
    assert own.record_trade(mine, trade(f"mine-{mine}"))
    assert [t.client_order_id for t in own.trades(mine)] == [f"mine-{mine}"]
    assert own.trades(theirs) == [] and own.get_bot(theirs) is None  # another bot's rows are not there for it
    assert own.get_bot(mine) is not None and own.get_bot(mine).trade_count == 1

    fleet, operator = FleetControls(own), FleetControls(repository)
    me = BotRef(mine, user_id, "bots", f"mine-{mine}")
    operator.halt("user", str(user_id), "a bad day", by="test")
    held, halts, refusal = fleet.check_order(lease, me, None, 10.0, increases_exposure=True)
    assert held and [h.reason for h in halts] == ["a bad day"]
    operator.set_cap("user", str(user_id), 200.0, by="test")
    # the cap weighs the other bot's 150 though this role cannot read its row
    _, _, refusal = fleet.check_order(lease, me, None, 60.0, increases_exposure=True)
    assert refusal is not None and "150.00 held" in refusal
    fleet.halt("bot", me.ref, "onStart: halt", by="runtime")  # a halt of its own bot it may add
    sql(
        repository,
        "UPDATE trading_bots SET account_fingerprint = 'acct', mode = 'live', symbol = 'BTC/USDT' WHERE id = :id",
        id=theirs,
    )
    conflict = fleet.claim_account(mine, "acct", "BTC/USDT", allow_shared=False)
    assert conflict is not None and f"bots/theirs-{theirs}" in conflict  # named, though its row is hidden


def test_a_bot_role_cannot_switch_the_safety_controls_off_or_touch_other_bots(
    as_bot: sa.Engine, repository: BotRepository, two_bots: tuple[int, int], user_id: int
) -> None:
    mine, theirs = two_bots
    # a halt of this test's user only: a fleet-wide one would halt every bot of the session's shared database
    FleetControls(repository).halt("user", str(user_id), "incident", by="test")
    assert "fleet_halts" in refused(as_bot, "UPDATE fleet_halts SET resumed_at = now()")
    assert "fleet_halts" in refused(as_bot, "DELETE FROM fleet_halts")
    assert "row-level security" in refused(
        as_bot, "INSERT INTO fleet_halts (scope, value, reason, created_by) VALUES ('all', '*', 'x', 'x')"
    )
    assert "exposure_caps" in refused(as_bot, "DELETE FROM exposure_caps")
    assert "exposure_caps" in refused(
        as_bot, "INSERT INTO exposure_caps (scope, value, max_notional, created_by) VALUES ('user', '1', 1e9, 'x')"
    )
    assert "trading_bots" in refused(as_bot, "UPDATE trading_bots SET strategy_params = '{}' WHERE id = :id", id=mine)
    assert "trading_bots" in refused(
        as_bot, "UPDATE trading_bots SET enabled = true, suspended = false WHERE id = :id", id=mine
    )
    assert "row-level security" in refused(
        as_bot,
        "INSERT INTO bot_events (bot_id, source, type, message) VALUES (:id, 'runtime', 'x', 'forged')",
        id=theirs,
    )
    assert "a bot asks only about itself" in refused(
        as_bot, "SELECT * FROM botops_cap_usage(:id, 'user', '1', NULL)", id=theirs
    )
    with as_bot.begin() as conn:  # another bot's heartbeat and trades are not its to see or write
        touched = conn.execute(sa.text("UPDATE trading_bots SET last_heartbeat = now() WHERE id = :id"), {"id": theirs})
        assert touched.rowcount == 0
        assert conn.execute(sa.text("SELECT count(*) FROM trading_bots")).scalar_one() == 1
    assert "backtest_results" in refused(as_bot, "SELECT * FROM backtest_results")


def test_the_backtest_role_writes_results_only(repository: BotRepository, migrated_database_url: str) -> None:
    engine = create_engine(RuntimeIdentities(repository.engine, migrated_database_url).issue_backtests())
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO backtest_results (namespace, name, uid, generation, fill_model, metrics, result) "
                    "VALUES ('ns', 'bt', 'uid-rls', 1, 'm', '{}', '{}')"
                )
            )
        assert "trading_bots" in refused(engine, "SELECT * FROM trading_bots")
        assert "fleet_halts" in refused(engine, "DELETE FROM fleet_halts")
    finally:
        engine.dispose()


def test_passwords_reach_postgresql_as_scram_verifiers() -> None:
    verifier = scram_verifier("pencil", salt=b"\x00" * 16)
    assert verifier.startswith("SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$") and "pencil" not in verifier


def test_a_deleted_bots_role_logs_in_no_more_and_is_dropped_once_unused(
    as_bot: sa.Engine, repository: BotRepository, migrated_database_url: str, two_bots: tuple[int, int]
) -> None:
    identities = RuntimeIdentities(repository.engine, migrated_database_url)
    role = identities.bot_role(two_bots[0])
    with as_bot.connect() as session:  # the stopping runtime's session
        session.execute(sa.text("SELECT 1"))
        identities.retire_bot(two_bots[0])
        assert identities.drop_retired() == []  # still in use: kept
        assert session.execute(sa.text("SELECT count(*) FROM trading_bots")).scalar_one() == 1  # works on
    as_bot.dispose()
    with pytest.raises(sa.exc.OperationalError, match="not permitted to log in"), as_bot.connect():
        pass
    assert identities.drop_retired() == [role]
