"""Every example manifest backtests as the examples' comments say (`bot-runtime backtest --spec FILE`), files
holding a Secret beside the bot included; files it cannot use are explained."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot_runtime.api.backtest_resource import validate_backtest
from bot_runtime.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
BACKTESTS = [e for e in EXAMPLES if all(d.get("kind") == "Backtest" for d in yaml.safe_load_all(e.read_text()) if d)]
BOT_EXAMPLES = [e for e in EXAMPLES if e not in BACKTESTS]


@pytest.mark.parametrize("example", BOT_EXAMPLES, ids=lambda p: p.name)
def test_every_example_backtests(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--spec", str(example), "--bars", "300", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "speed" in out and "Traceback" not in out


BOT = (
    "apiVersion: botops.io/v1alpha1\nkind: TradingBot\nmetadata: {name: %s}\nspec: {strategy: {type: CustomStrategy}}\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOT % "a" + "---\n" + BOT % "b", "holds 2 TradingBots (a, b); put the one to backtest in a file"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: keys}\n", "no TradingBot in it (kinds: Secret)"),
        ("spec: [unclosed\n", "cannot read it as YAML"),
    ],
    ids=["two-bots", "no-bot", "not-yaml"],
)
def test_a_spec_file_it_cannot_use_is_explained(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text(text)
    assert main(["backtest", "--spec", str(path), "--bars", "100"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("example", BACKTESTS, ids=lambda p: p.name)
def test_every_backtest_example_is_valid_and_names_an_example_bot(example: Path) -> None:
    names = {bot["metadata"]["name"] for path in BOT_EXAMPLES for bot in _bots(path)}
    for doc in [d for d in yaml.safe_load_all(example.read_text()) if d]:
        spec, result = validate_backtest(doc["spec"])
        assert spec is not None and result.warnings == [], (doc["metadata"]["name"], result)
        assert spec.bot_ref is None or spec.bot_ref.name in names, f"{spec.bot_ref} is no example's bot"


def _bots(example: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(example.read_text()) if d and d.get("kind") == "TradingBot"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_says_whether_it_needs_the_network(example: Path) -> None:
    """Issue 18: an example that needs an exchange failed offline after minutes of restarts, unannounced."""
    said = [line for line in example.read_text().splitlines() if line.startswith("# Network: ")]
    assert said, f"{example.name}: no '# Network: ...' line says what it needs"
    offline = said[0].startswith("# Network: none") or "synthetic feed needs none" in said[0]
    feeds = {(bot["spec"].get("market") or {}).get("feed", "exchange") for bot in _bots(example)}
    assert offline == (feeds == {"synthetic"}), f"{example.name}: says {said[0]!r}, its feeds are {feeds}"


def test_the_example_rows_say_which_need_the_network() -> None:
    sql = (EXAMPLES[0].parent / "trading_bots.sql").read_text()
    lines = sql.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("-- Network: "))
    header = " ".join(line.removeprefix("-- ") for line in lines[start : start + 2])
    clauses = header.removeprefix("Network: ").split(";")
    rows = [(m.group(1), sql[m.start() :].split("),", 1)[0]) for m in re.finditer(r"^  \(\d+, '([^']+)'", sql, re.M)]
    assert len(rows) == 3, rows
    for name, row in rows:
        (clause,) = [c for c in clauses if f"'{name}'" in c] or [""]
        offline = '"feed": "synthetic"' in row
        assert ("run offline" if offline else "needs") in clause, f"row {name!r}: the header says {clause!r}"
