"""Paper trading: Backtrader's BackBroker with the spec's cash, commission and slippage.

Market orders fill at the close of the bar that triggered them (cheat-on-close): on a live feed the
next bar's open is a whole timeframe away, and the signal bar's close is the price a real market
order would get. Backtests use the same rule, so a backtest and a paper bot agree.
"""

from __future__ import annotations

from typing import Any

from bot_runtime.api.models import BrokerSpec
from bot_runtime.btcompat import bt


def paper_broker(spec: BrokerSpec) -> Any:
    broker = bt.brokers.BackBroker()
    broker.setcash(spec.cash)
    broker.setcommission(commission=spec.commission)
    if spec.slippage:
        broker.set_slippage_perc(spec.slippage, slip_open=True, slip_match=True, slip_out=False)
    broker.set_coc(True)
    return broker
