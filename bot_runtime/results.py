"""A backtest's results as a trader reads them: pure functions over the equity curve and the closed trades.

Returns are per bar; annualised figures assume a market open around the clock (crypto: 365 days a year), the
risk-free rate is 0. Sharpe divides the mean bar return by its standard deviation, Sortino by the downside
deviation (the root mean square of the negative bar returns); both are scaled by the square root of the bars
in a year.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

YEAR = timedelta(days=365)


@dataclass(frozen=True)
class ClosedTrade:
    opened: datetime
    closed: datetime
    size: float
    entry_price: float
    exit_price: float
    pnl: float  # before fees
    fees: float

    @property
    def net(self) -> float:
        return self.pnl - self.fees

    @property
    def holding(self) -> timedelta:
        return self.closed - self.opened


@dataclass(frozen=True)
class Refusal:
    at: datetime
    side: str
    size: float
    reason: str


@dataclass
class BacktestReport:
    model: str  # the fill model, said in every result
    timeframe: timedelta
    start_value: float
    equity: list[tuple[datetime, float]]  # the account's value at each bar's close
    in_market: int  # bars that ended with a position
    trades: list[ClosedTrade] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bars(self) -> int:
        return len(self.equity)

    @property
    def end_value(self) -> float:
        return self.equity[-1][1] if self.equity else self.start_value

    def metrics(self) -> dict[str, Any]:
        span = self.timeframe * max(self.bars, 1)
        total = self.end_value / self.start_value - 1.0
        returns = bar_returns([v for _, v in self.equity], self.start_value)
        per_year = YEAR / self.timeframe
        wins = [t for t in self.trades if t.net > 0]
        gains, losses = sum(t.net for t in wins), -sum(t.net for t in self.trades if t.net <= 0)
        drawdown, drawdown_bars = max_drawdown([v for _, v in self.equity], self.start_value)
        holdings = [t.holding for t in self.trades]
        return {
            "bars": self.bars,
            "startValue": round(self.start_value, 8),
            "endValue": round(self.end_value, 8),
            "totalReturnPct": 100.0 * total,
            "annualisedReturnPct": 100.0 * annualised(total, span),
            "maxDrawdownPct": 100.0 * drawdown,
            "maxDrawdownDuration": duration(self.timeframe * drawdown_bars),
            "sharpe": sharpe(returns, per_year),
            "sortino": sortino(returns, per_year),
            "trades": len(self.trades),
            "winRatePct": 100.0 * len(wins) / len(self.trades) if self.trades else 0.0,
            "profitFactor": gains / losses if losses else (math.inf if gains else 0.0),
            "expectancy": sum(t.net for t in self.trades) / len(self.trades) if self.trades else 0.0,
            "exposurePct": 100.0 * self.in_market / self.bars if self.bars else 0.0,
            "averageHolding": duration(sum(holdings, timedelta()) / len(holdings)) if holdings else "-",
            "feesPaid": sum(t.fees for t in self.trades),
            "refusedOrders": len(self.refusals),
            "refusedReasons": dict(Counter(r.reason for r in self.refusals)),
            "barsPerSecond": self.bars / self.seconds if self.seconds else 0.0,
        }

    def monthly(self) -> list[tuple[str, float]]:
        """Each calendar month's return, from the value at the end of the month before."""
        months: list[tuple[str, float]] = []
        before, last_value, month = self.start_value, self.start_value, None
        for at, value in self.equity:
            key = at.strftime("%Y-%m")
            if month is not None and key != month:
                months.append((month, 100.0 * (last_value / before - 1.0)))
                before = last_value
            month, last_value = key, value
        if month is not None:
            months.append((month, 100.0 * (last_value / before - 1.0)))
        return months

    def summary(self) -> str:
        m = self.metrics()
        refused = ", ".join(f"{n} x {reason}" for reason, n in m["refusedReasons"].items())
        lines = [
            f"fill model      {self.model}",
            f"bars            {m['bars']}",
            f"return          {m['totalReturnPct']:+.2f} %  ({m['startValue']:.2f} -> {m['endValue']:.2f}); "
            f"annualised {m['annualisedReturnPct']:+.2f} %",
            f"max drawdown    {m['maxDrawdownPct']:.2f} % (longest under water {m['maxDrawdownDuration']})",
            f"sharpe/sortino  {m['sharpe']:.2f} / {m['sortino']:.2f} (annualised, risk-free 0)",
            f"trades          {m['trades']}  (win rate {m['winRatePct']:.1f} %, profit factor "
            f"{m['profitFactor']:.2f}, expectancy {m['expectancy']:+.2f} per trade)",
            f"exposure        {m['exposurePct']:.1f} % of bars; average holding {m['averageHolding']}",
            f"fees paid       {m['feesPaid']:.2f}",
            f"refused orders  {m['refusedOrders']}" + (f" ({refused})" if refused else ""),
            "monthly         " + "  ".join(f"{month} {pct:+.2f} %" for month, pct in self.monthly()),
            f"speed           {m['barsPerSecond']:,.0f} bars/s",
        ]
        return "\n".join(lines)

    def to_json(self) -> str:
        metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.metrics().items()}
        return json.dumps(
            {
                "model": self.model,
                "metrics": metrics,
                "monthly": [{"month": month, "returnPct": pct} for month, pct in self.monthly()],
                "trades": [trade_record(t) for t in self.trades],
                "refusals": [{**asdict(r), "at": r.at.isoformat()} for r in self.refusals],
                "equity": [[at.isoformat(), value] for at, value in self.equity],
            },
            indent=2,
        )

    def trades_json(self) -> str:
        return json.dumps([trade_record(t) for t in self.trades], indent=2)

    def trades_csv(self) -> str:
        out = io.StringIO()
        fields = ["opened", "closed", "size", "entryPrice", "exitPrice", "pnl", "fees", "net", "holding"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(trade_record(t) for t in self.trades)
        return out.getvalue()


def trade_record(trade: ClosedTrade) -> dict[str, Any]:
    return {
        "opened": trade.opened.isoformat(),
        "closed": trade.closed.isoformat(),
        "size": trade.size,
        "entryPrice": trade.entry_price,
        "exitPrice": trade.exit_price,
        "pnl": trade.pnl,
        "fees": trade.fees,
        "net": trade.net,
        "holding": duration(trade.holding),
    }


def duration(span: timedelta) -> str:
    return str(timedelta(seconds=round(span.total_seconds())))


def bar_returns(values: list[float], start: float) -> list[float]:
    previous, returns = start, []
    for value in values:
        returns.append(value / previous - 1.0 if previous else 0.0)
        previous = value
    return returns


def annualised(total: float, span: timedelta) -> float:
    if span <= timedelta() or total <= -1.0:
        return -1.0 if total <= -1.0 else 0.0
    try:
        return float((1.0 + total) ** (YEAR / span) - 1.0)
    except OverflowError:  # a short span with a gain: no meaningful yearly figure
        return math.inf


def sharpe(returns: list[float], per_year: float) -> float:
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    deviation = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    return mean / deviation * math.sqrt(per_year) if deviation else 0.0


def sortino(returns: list[float], per_year: float) -> float:
    if not returns:
        return 0.0
    mean = sum(returns) / len(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return mean / downside * math.sqrt(per_year) if downside else 0.0


def max_drawdown(values: list[float], start: float) -> tuple[float, int]:
    """The deepest fall from a peak (a fraction), and the most bars spent below a peak."""
    peak, deepest, under, longest = start, 0.0, 0, 0
    for value in values:
        if value >= peak:
            peak, under = value, 0
        else:
            under += 1
            deepest = max(deepest, 1.0 - value / peak)
            longest = max(longest, under)
    return deepest, longest
