"""`bot-operator fleet list` on a database of its own: an empty answer says so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from bot_operator.cli import main
from botops_dev.postgres import PostgresServer

pytestmark = [pytest.mark.db]


@pytest.fixture
def empty_fleet(postgres_server: PostgresServer) -> Iterator[str]:
    from bot_runtime.db import migrate

    url = postgres_server.create_database(prefix="tbo_fleet")
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with contextlib.suppress(Exception):
            postgres_server.drop_database(url)


def test_fleet_list_says_when_nothing_is_halted_or_capped(empty_fleet: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "list", "--database-url", empty_fleet]) == 0
    assert capsys.readouterr().out.strip() == "no halts, no caps: every bot trades within its own limits"
    assert main(["fleet", "cap", "--user-id", "42", "--max-notional", "500", "--database-url", empty_fleet]) == 0
    capsys.readouterr()
    assert main(["fleet", "list", "--database-url", empty_fleet]) == 0
    out = capsys.readouterr().out
    assert "cap user 42: 500" in out and "no halts, no caps" not in out
