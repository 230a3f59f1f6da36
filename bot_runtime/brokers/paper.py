"""Paper trading: Backtrader's BackBroker with the spec's cash, commission and slippage, behind the same
order gate as the live broker, accepting the same order types.

Market orders fill at the close of the bar that triggered them (cheat-on-close): on a live feed the
next bar's open is a whole timeframe away, and the signal bar's close is the price a real market
order would get. Backtests use the same rule, so a backtest and a paper bot agree. A flatten fills at
the last price at once, bars or no bars.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot_runtime.api.models import BrokerSpec, RiskSpec
from bot_runtime.brokers.gating import Flattener, Gate, request_of
from bot_runtime.btcompat import bt
from bot_runtime.db.repository import LeaseLost
from bot_runtime.risk import RiskGate

log = logging.getLogger(__name__)


class PaperBroker(bt.brokers.BackBroker):  # type: ignore[misc]
    def __init__(
        self,
        gate: Gate,
        client_id: Callable[[int], str] = lambda ref: f"bt-{ref}",
        on_lease_lost: Callable[[LeaseLost], None] | None = None,
    ) -> None:
        super().__init__()
        self.gate, self.client_id, self.on_lease_lost = gate, client_id, on_lease_lost
        self.flattener = Flattener()

    def submit(self, order: Any, check: bool = True) -> Any:
        """Every order passes the gate here, whatever placed it (bracket children included: a child of a
        refused parent is rejected by Backtrader itself)."""
        cid = self.client_id(order.ref)
        order.addinfo(client_order_id=cid)
        position = float(self.getposition(order.data).size)
        open_orders = len([o for o in self.pending if o.alive()])
        try:
            refusal = self.gate.check(request_of(order, cid), position, open_orders)
        except LeaseLost as exc:
            refusal = f"lease lost: {exc}"
            if self.on_lease_lost is not None:
                self.on_lease_lost(exc)
        if refusal is None:
            return super().submit(order, check)
        order.addinfo(reject_reason=refusal, refused=True)
        order.reject(self)
        self.notify(order)
        self._ococheck(order)
        self.gate.release(cid)
        return order

    def notify(self, order: Any) -> None:
        if order.status in (order.Completed, order.Canceled, order.Expired, order.Margin, order.Rejected):
            self.gate.release(order.info.get("client_order_id") or "")
        super().notify(order)

    def protect(self, stop_price: float | None) -> None:
        """Paper positions are protected by the strategy's exits on each bar; nothing rests anywhere."""

    def next(self) -> None:
        super().next()
        data = next(iter(self.positions), None)
        if data is None:
            return
        position = float(self.getposition(data).size)
        reason = self.flattener.due(position)
        if reason is not None and not any(o.alive() and o.issell() for o in self.pending):
            self._flatten(data, position, reason)

    def _flatten(self, data: Any, position: float, reason: str) -> None:
        """Close the position now: with cheat-on-close a market order fills at its bar's close on Backtrader's
        next broker pass (half a second), so a broken feed, with no next bar, does not hold it back."""
        order = self.sell(owner=None, data=data, size=position, exectype=bt.Order.Market, reason=f"flatten: {reason}")
        refused = order.status in (order.Rejected, order.Margin)
        self.flattener.tried(order.info.get("reject_reason") or "rejected" if refused else None)


def paper_broker(spec: BrokerSpec, gate: Gate | None = None, risk: RiskSpec | None = None, **kwargs: Any) -> Any:
    broker = PaperBroker(gate if gate is not None else RiskGate(risk or RiskSpec()), **kwargs)
    broker.setcash(spec.cash)
    broker.setcommission(commission=spec.commission)
    if spec.slippage:
        broker.set_slippage_perc(spec.slippage, slip_open=True, slip_match=True, slip_out=False)
    broker.set_coc(True)
    return broker
