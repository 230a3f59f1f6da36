"""Every example manifest backtests as the examples' comments say (`bot-runtime backtest --spec FILE`), files
holding a Secret beside the bot included; files it cannot use are explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_runtime.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
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
