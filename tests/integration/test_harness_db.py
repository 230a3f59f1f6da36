"""Smoke test that proves the PostgreSQL harness."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

pytestmark = pytest.mark.db


def test_sqlalchemy_session_queries_the_test_database(database_url: str) -> None:
    from bot_runtime.db.engine import create_engine

    engine = create_engine(database_url)
    with Session(engine) as session:
        name = session.execute(sa.text("SELECT current_database()")).scalar_one()
        assert session.execute(sa.text("SELECT 40 + 2")).scalar_one() == 42
    assert name == database_url.rsplit("/", 1)[-1].split("?")[0]
    engine.dispose()
