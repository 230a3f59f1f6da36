"""The equity curve and drawdown of a backtest as an image (matplotlib, the `charts` extra): one figure, the
account's value over time above its fall from the running peak, titled with the fill model's main figures."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

from bot_runtime.results import BacktestReport

MISSING = "the chart needs matplotlib: pip install 'tradingbot-operator[charts]'"


def write_chart(report: BacktestReport, path: Path, title: str) -> None:
    """Write the chart to `path`; the format follows its suffix (.png, .svg, .pdf). ImportError says what to
    install."""
    try:
        import matplotlib

        logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its font cache notes are not ours to say
        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(MISSING) from exc
    times = [at for at, _ in report.equity]
    values = [value for _, value in report.equity]
    peak, drawdown = report.start_value, []
    for value in values:
        peak = max(peak, value)
        drawdown.append(100.0 * (value / peak - 1.0))
    metrics = report.metrics()
    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(11, 6.5), gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    top.plot(times, values, color="tab:blue", linewidth=1.0, label="equity")
    top.axhline(report.start_value, color="grey", linewidth=0.6, linestyle="--", label="start")
    top.set_ylabel("account value")
    top.legend(loc="upper left")
    top.set_title(
        f"{title}\nreturn {metrics['totalReturnPct']:+.2f} %, max drawdown {metrics['maxDrawdownPct']:.2f} %, "
        f"{metrics['trades']} trades, fees {metrics['feesPaid']:.2f}\n"
        + textwrap.fill(f"fill model: {report.model}", 150),
        fontsize=9,
    )
    bottom.fill_between(times, drawdown, 0.0, color="tab:red", alpha=0.4, linewidth=0)
    bottom.set_ylabel("drawdown %")
    for axis in (top, bottom):
        axis.grid(True, linewidth=0.3)
    figure.savefig(path, dpi=110)
    plt.close(figure)
