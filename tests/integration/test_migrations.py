"""Migrations on real PostgreSQL: empty -> head -> empty, the models agree, the NOTIFY trigger."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot_runtime.db import migrate, revision
from bot_runtime.db.engine import create_engine
from bot_runtime.db.schema import NOTIFY_CHANNEL, Base
from botops_dev.postgres import PostgresServer, libpq_url, scratch_database

pytestmark = pytest.mark.db

TABLES = {
    "trading_bots",
    "bot_runs",
    "bot_orders",
    "bot_trades",
    "bot_fills",
    "exposure_reservations",
    "backtest_results",
    "bot_performance",
    "bot_events",
    "bot_state",
    "fleet_halts",
    "exposure_caps",
    "botops_keys",
}


@pytest.fixture
def empty_db(postgres_server: PostgresServer) -> Iterator[str]:
    with scratch_database(postgres_server, "tbo_migr") as url:
        yield url


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_to_head_and_back_to_empty(empty_db: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot_operator", "db", "upgrade", "--database-url", empty_db],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"database at revision {migrate.head_revision()}" in result.stdout
    assert tables(empty_db) == TABLES
    # the operator's own check (no Alembic) agrees with Alembic on both ends
    assert revision.shipped_head() == migrate.head_revision() == revision.database_revision(empty_db)
    migrate.downgrade(empty_db, "base")
    assert tables(empty_db) == set()
    assert migrate.current_revision(empty_db) is None and revision.database_revision(empty_db) is None
    migrate.upgrade(empty_db)  # and up again: downgrade left nothing behind that blocks it
    assert tables(empty_db) == TABLES


def test_migrated_schema_matches_the_models(empty_db: str) -> None:
    migrate.upgrade(empty_db)
    engine = create_engine(empty_db)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_trigger_notifies_configuration_changes_only(empty_db: str) -> None:
    migrate.upgrade(empty_db)
    with (
        psycopg.connect(libpq_url(empty_db), autocommit=True) as listener,
        psycopg.connect(libpq_url(empty_db), autocommit=True) as writer,
    ):
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        bot_id = writer.execute(
            "INSERT INTO trading_bots (name, user_id, strategy_type, exchange, symbol) "
            "VALUES ('n', 3, 'CustomStrategy', 'binance', 'BTC/USDT') RETURNING id"
        ).fetchone()[0]
        writer.execute("UPDATE trading_bots SET last_heartbeat = now(), status = 'running' WHERE id = %s", (bot_id,))
        writer.execute("UPDATE trading_bots SET symbol = 'ETH/USDT' WHERE id = %s", (bot_id,))
        writer.execute("DELETE FROM trading_bots WHERE id = %s", (bot_id,))
        received = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=3)]
    assert received == [
        {"op": "INSERT", "id": bot_id, "user_id": 3},
        {"op": "UPDATE", "id": bot_id, "user_id": 3},
        {"op": "DELETE", "id": bot_id, "user_id": 3},
    ]
