"""`bot-operator fleet list` on a database of its own: an empty answer says so."""

from __future__ import annotations

import contextlib
import json
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


def test_bots_shows_the_fleet_with_its_halts_caps_and_account_claims(
    empty_fleet: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot_runtime.api.models import TradingBotSpec
    from bot_runtime.db.engine import create_engine
    from bot_runtime.db.fleet import FleetControls
    from bot_runtime.db.repository import BotRepository
    from tests.support.bots import FAST_SPEC

    assert main(["bots", "--database-url", empty_fleet]) == 0
    assert capsys.readouterr().out.strip() == "no bots in the trading_bots table"
    engine = create_engine(empty_fleet)
    try:
        repo = BotRepository(engine)
        fleet = FleetControls(repo)
        spec = TradingBotSpec.model_validate(FAST_SPEC)
        alpha = repo.create_bot(spec, name="alpha", user_id=7, external_ref="bots/alpha")
        repo.create_bot(spec, name="beta", user_id=8, external_ref="other/beta")
        assert fleet.claim_account(alpha, "f" * 64, "BTC/USDT", allow_shared=False) is None
        halt = fleet.halt("user", "7", "incident", by="desk")
        fleet.set_cap("account", "f" * 64, 900, by="desk")
    finally:
        engine.dispose()

    assert main(["bots", "--database-url", empty_fleet]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["BOT", "ID", "SOURCE"] and len(lines) == 3
    assert lines[1].startswith("bots/alpha") and f" {halt} " in lines[1] and "account:900" in lines[1]
    assert "ffffffffffff" in lines[1] and "f" * 13 not in lines[1]  # the fingerprint's head only
    assert main(["bots", "--namespace", "bots", "--output", "json", "--database-url", empty_fleet]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert (only["bot"], only["user"], only["halts"], only["caps"]) == ("bots/alpha", 7, [halt], ["account:900"])

    assert main(["fleet", "list", "--output", "json", "--database-url", empty_fleet]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(h["id"], h["scope"], h["value"], h["by"]) for h in listed["halts"]] == [(halt, "user", "7", "desk")]
    assert [(c["scope"], c["maxNotional"]) for c in listed["caps"]] == [("account", 900.0)]


@pytest.mark.parametrize(
    ("bot", "error"),
    [
        ("bots/missing", "no trading_bots row has external_ref 'bots/missing' (NAMESPACE/NAME)"),
        ("bots/live-one", "bots/live-one has no paper account to reset: it trades live"),
    ],
)
def test_reset_paper_refuses_what_has_no_paper_account(
    empty_fleet: str, capsys: pytest.CaptureFixture[str], bot: str, error: str
) -> None:
    from bot_runtime.api.models import TradingBotSpec
    from bot_runtime.db.engine import create_engine
    from bot_runtime.db.repository import BotRepository
    from tests.support.bots import spec_with

    engine = create_engine(empty_fleet)
    try:
        live = spec_with(mode="live", broker={"credentialsSecretRef": {"name": "keys"}}, risk={"maxDailyLoss": 50})
        BotRepository(engine).create_bot(
            TradingBotSpec.model_validate(live), name="live-one", external_ref="bots/live-one"
        )
    finally:
        engine.dispose()
    assert main(["bot", "reset-paper", bot, "--database-url", empty_fleet]) == 2
    assert error in capsys.readouterr().err
