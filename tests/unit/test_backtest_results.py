"""Backtest results a trader can read and trust (issue 19, in part): all-in stakes trade, refused orders are
counted with their reason, every figure follows from the trades and the equity curve, and the trade list and
the whole result can be exported."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot_runtime.api.models import TradingBotSpec
from bot_runtime.backtest import MARGIN, run_backtest
from bot_runtime.cli import main
from bot_runtime.results import BacktestReport, ClosedTrade
from bot_runtime.strategies import strategy_handler

SCRIPTED = Path(__file__).resolve().parents[1] / "support" / "strategies" / "scripted.py"


def scripted() -> None:
    """The test plug-ins (DirectBuyer...), registered once per process."""
    if "DirectBuyer" not in strategy_handler.get_registered_strategies():
        strategy_handler.discover_strategies([SCRIPTED])


def spec(strategy: dict[str, Any], **extra: Any) -> TradingBotSpec:
    market = {"exchange": "binance", "symbol": "BTC/USDT", "feed": "synthetic", "seed": 11}
    return TradingBotSpec.model_validate({"strategy": strategy, "market": market, **extra})


def test_an_all_in_stake_trades_instead_of_being_refused_in_silence() -> None:
    """stake 1.0 (the schema allows it) made 0 trades and said nothing: every order was refused for its fee."""
    report = run_backtest(spec({"type": "CustomStrategy", "params": {"stake": 1.0}}), bars=2000)
    metrics = report.metrics()
    assert metrics["trades"] > 10 and metrics["refusedOrders"] == 0, report.summary()
    assert metrics["feesPaid"] > 0


def test_orders_the_broker_refuses_are_counted_with_their_reason() -> None:
    scripted()
    report = run_backtest(spec({"type": "DirectBuyer", "params": {"buy_amount": 1000}}), bars=300)  # 100x the cash
    metrics = report.metrics()
    assert metrics["trades"] == 0 and metrics["refusedOrders"] > 100
    assert metrics["refusedReasons"] == {MARGIN: metrics["refusedOrders"]}
    assert {(r.side, r.size) for r in report.refusals} == {("buy", 1000.0)}
    assert f"refused orders  {metrics['refusedOrders']} ({metrics['refusedOrders']} x {MARGIN})" in report.summary()


def test_the_trades_add_up_to_the_account() -> None:
    """Each trade's net (after both fees) sums to the change of the account, when the run ends flat."""
    report = run_backtest(spec({"type": "CustomStrategy", "params": {"stake": 0.5}}), bars=3000)
    last_close = report.trades[-1].closed
    value_then = next(v for at, v in report.equity if at == last_close)
    assert sum(t.net for t in report.trades) == pytest.approx(value_then - report.start_value, abs=1e-6)
    assert report.metrics()["feesPaid"] == pytest.approx(sum(t.fees for t in report.trades))
    assert "market orders fill at the next bar's open" in report.summary().splitlines()[0]


T0 = datetime(2026, 1, 31, 23, 58)
MINUTE = timedelta(minutes=1)


def made_report() -> BacktestReport:
    values = [100.0, 110.0, 99.0, 88.0, 121.0, 121.0]  # a 20 % fall over 2 bars, then a new high
    equity = [(T0 + i * MINUTE, v) for i, v in enumerate(values)]
    win = ClosedTrade(T0, T0 + MINUTE, 1.0, 100.0, 110.0, pnl=10.0, fees=0.5)
    loss = ClosedTrade(T0 + 2 * MINUTE, T0 + 5 * MINUTE, 1.0, 99.0, 95.0, pnl=-4.0, fees=0.5)
    return BacktestReport("test model", MINUTE, 100.0, equity, in_market=3, trades=[win, loss])


def test_each_figure_follows_from_the_curve_and_the_trades() -> None:
    m = made_report().metrics()
    assert m["totalReturnPct"] == pytest.approx(21.0)
    assert m["maxDrawdownPct"] == pytest.approx(20.0) and m["maxDrawdownDuration"] == "0:02:00"
    assert m["winRatePct"] == 50.0 and m["profitFactor"] == pytest.approx(9.5 / 4.5)
    assert m["expectancy"] == pytest.approx((9.5 - 4.5) / 2) and m["feesPaid"] == pytest.approx(1.0)
    assert m["exposurePct"] == pytest.approx(50.0) and m["averageHolding"] == "0:02:00"
    assert m["sharpe"] > 0 and m["sortino"] > 0
    assert [(month, round(pct, 6)) for month, pct in made_report().monthly()] == [
        ("2026-01", 10.0),  # 100 -> 110 by the last bar of January
        ("2026-02", 10.0),  # 110 -> 121
    ]


def test_the_trade_list_and_the_whole_result_are_exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trades_csv, trades_json, results = tmp_path / "trades.csv", tmp_path / "trades.json", tmp_path / "result.json"
    base = ["backtest", "--strategy", "CustomStrategy", "--bars", "3000", "--seed", "11"]
    assert main([*base, "--export", str(trades_csv), "--results", str(results)]) == 0
    assert main([*base, "--export", str(trades_json)]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(trades_csv.read_text().splitlines()))
    listed = json.loads(trades_json.read_text())
    result = json.loads(results.read_text())
    assert len(rows) == len(listed) == result["metrics"]["trades"] > 0
    assert rows[0]["opened"] == listed[0]["opened"] == result["trades"][0]["opened"]
    assert float(rows[0]["net"]) == pytest.approx(float(rows[0]["pnl"]) - float(rows[0]["fees"]))
    assert len(result["equity"]) == result["metrics"]["bars"] == 3000 and result["monthly"]
    assert result["model"].startswith("market orders fill at") and f"trades written to {trades_csv}" in out


def csv_series(tmp_path: Path, rows: list[tuple[float, float]]) -> str:
    """1m bars of (open, close) whose open is not the last close: where the fill rule shows."""
    path = tmp_path / "bars.csv"
    start = int(datetime(2026, 1, 1).timestamp() * 1000)
    lines = [f"{start + (i + 1) * 60_000},{o},{max(o, c)},{min(o, c)},{c},10" for i, (o, c) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(("fill", "price"), [("nextOpen", 110.0), ("close", 100.0)])
def test_a_market_order_fills_at_the_next_open_unless_cheat_on_close_is_asked(
    tmp_path: Path, fill: str, price: float
) -> None:
    """DirectBuyer buys 1 on the first bar (close 100); the next bar opens at 110 and every close after is 120."""
    scripted()
    market = {"exchange": "binance", "symbol": "BTC/USDT", "feed": "csv"}
    market["csvPath"] = csv_series(tmp_path, [(100, 100), (110, 120), (120, 120), (120, 120)])
    bot = TradingBotSpec.model_validate(
        {
            "strategy": {"type": "DirectBuyer", "params": {"buy_amount": 1}},
            "market": market,
            "broker": {"cash": 1000, "commission": 0.0, "fill": fill},
        }
    )
    report = run_backtest(bot)
    assert report.end_value == pytest.approx(1000 - price + 120)  # cash spent at the fill price, held at 120
    assert ("next bar's open" if fill == "nextOpen" else "cheat-on-close") in report.model


def test_the_venues_lot_rules_apply_in_a_backtest_as_in_the_live_broker(tmp_path: Path) -> None:
    from bot_runtime.lots import LotRules

    scripted()
    market = {"exchange": "binance", "symbol": "BTC/USDT", "feed": "csv"}
    market["csvPath"] = csv_series(tmp_path, [(100, 100)] * 5)
    rules = LotRules(step=Decimal("0.5"), min_qty=Decimal("0.5"), min_notional=Decimal("120"))

    def backtest(amount: float) -> BacktestReport:
        bot = {"strategy": {"type": "DirectBuyer", "params": {"buy_amount": amount}}, "market": market}
        return run_backtest(TradingBotSpec.model_validate(bot), rules=rules)

    rounded = backtest(1.7)  # 1.5 bought: rounded down to the lot step, never up
    assert rounded.end_value == pytest.approx(10_000 - 1.5 * 100 * 0.001) and rounded.refusals == []
    assert "lot step 0.5, minimum quantity 0.5, minimum order value 120" in rounded.model
    too_small = backtest(1.1)  # 1.0 after rounding: 100 is below the minimum order value
    assert too_small.end_value == 10_000 and too_small.refusals
    assert too_small.refusals[0].reason == "order value 100.00000000 is below the minimum order value 120"
