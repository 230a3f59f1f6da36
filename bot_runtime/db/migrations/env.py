"""Alembic environment: runs inside `bot-operator db upgrade` (bot_runtime.db.migrate)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from bot_runtime.db.engine import create_engine
from bot_runtime.db.schema import Base

config = context.config
target_metadata = Base.metadata
# Two replicas upgrading at once must not race: one waits for the other's transaction.
MIGRATION_LOCK = 7_414_281_001


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=False)
    with context.begin_transaction():
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
