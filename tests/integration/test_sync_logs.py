"""The database sync's banners belong to start-up and to changes (issue 18): a runtime's heartbeat, which
rewrites the row's figures and updated_at, is not a change, and an invalid row is logged when it becomes
invalid, not at every poll."""

from __future__ import annotations

import logging

import pytest

from bot_operator.metrics import OperatorMetrics
from bot_operator.settings import OperatorSettings
from bot_operator.sync import Syncer
from bot_runtime.db.repository import BotRepository
from tests.operator.helpers import insert_row, sql

pytestmark = [pytest.mark.db]


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "bot_operator.sync" and r.levelno >= logging.INFO]
    caplog.clear()
    return lines


def test_an_idle_poll_is_quiet_and_a_change_is_announced(
    repository: BotRepository, migrated_database_url: str, user_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = OperatorSettings(database_url=migrated_database_url, user_id=user_id, runtime_image="img:1")
    syncer = Syncer(settings, None, repository, OperatorMetrics())  # type: ignore[arg-type]  # load() reads rows only
    caplog.set_level(logging.DEBUG, "bot_operator.sync")
    row = insert_row(repository, user_id, "quiet")
    syncer.load()
    assert any("CONFIGURATION LOADING COMPLETE: 1/1" in line for line in info_lines(caplog))

    for _ in range(3):  # what a runtime writes every few seconds
        sql(
            repository,
            "UPDATE trading_bots SET last_heartbeat = now(), updated_at = now(), equity = random() WHERE id = :id",
            id=row,
        )
        syncer.load()
        assert info_lines(caplog) == []

    sql(repository, "UPDATE trading_bots SET symbol = 'ETH/USDT', updated_at = now() WHERE id = :id", id=row)
    syncer.load()
    assert any("Processing bot" in line and "ETH/USDT" in line for line in info_lines(caplog))

    sql(repository, "UPDATE trading_bots SET timeframe = '7x', updated_at = now() WHERE id = :id", id=row)
    syncer.load()
    assert any("skipped" in line and "timeframe" in line for line in info_lines(caplog))
    sql(repository, "UPDATE trading_bots SET last_heartbeat = now(), updated_at = now() WHERE id = :id", id=row)
    syncer.load()
    assert info_lines(caplog) == []  # still invalid, already said
