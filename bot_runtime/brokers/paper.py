"""Paper trading: Backtrader's BackBroker with the spec's cash, commission and slippage, behind the same
order gate as the live broker, accepting the same order types.

Market orders fill at the next bar's open (`broker.fill: nextOpen`, the default): the first price a
live order could get after its signal bar closed. `fill: close` fills them at the signal bar's close
(cheat-on-close), for comparison only. Amounts follow the venue's lot rules as the live broker applies
them (bot_runtime.lots), when the venue's market is known. Backtests use the same broker, so a backtest
and a paper bot agree. A flatten fills at the last price at once, bars or no bars.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot_runtime.api.models import BrokerSpec, RiskSpec
from bot_runtime.brokers.gating import Flattener, Gate, request_of
from bot_runtime.btcompat import bt
from bot_runtime.db.repository import LeaseLost
from bot_runtime.lots import LotRules, affordable
from bot_runtime.risk import RiskGate

log = logging.getLogger(__name__)


class PaperBroker(bt.brokers.BackBroker):  # type: ignore[misc]
    def __init__(
        self,
        gate: Gate,
        client_id: Callable[[int], str] = lambda ref: f"bt-{ref}",
        on_lease_lost: Callable[[LeaseLost], None] | None = None,
        rules: LotRules | None = None,
        fill: str = "nextOpen",
    ) -> None:
        super().__init__()
        self.gate, self.client_id, self.on_lease_lost = gate, client_id, on_lease_lost
        self.rules, self.fill = rules or LotRules(), fill
        self.flattener = Flattener()

    def submit(self, order: Any, check: bool = True) -> Any:
        """Every order passes the gate here, whatever placed it (bracket children included: a child of a
        refused parent is rejected by Backtrader itself)."""
        cid = self.client_id(order.ref)
        order.addinfo(client_order_id=cid)
        flatten = str(order.info.get("reason") or "").startswith("flatten")
        if order.exectype in (None, bt.Order.Market) and self.fill == "nextOpen" and not flatten:
            order.addinfo(coc=False)  # the broker's cheat-on-close stays for flattens only: they fill at once
        refusal = self._fit(order)
        if refusal is not None:  # never sent, as the live broker skips it: an order_skipped event says why
            return self._refuse(order, cid, refusal, skipped=True)
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
        return self._refuse(order, cid, refusal)

    def _refuse(self, order: Any, cid: str, refusal: str, skipped: bool = False) -> Any:
        order.addinfo(reject_reason=refusal, **({"skipped": True} if skipped else {"refused": True}))
        order.reject(self)
        self.notify(order)
        self._ococheck(order)
        self.gate.release(cid)
        return order

    def _try_exec_market(self, order: Any, popen: float, phigh: float, plow: float) -> None:
        """An entry sized as a fraction of cash (`stake` in its info) is sized again at its fill price, as a
        venue's quote-amount order spends what it is given: a next open above the signal's close must not
        turn an all-in stake into a refusal."""
        stake = order.info.get("stake")
        cheat = self.p.coc and order.info.get("coc", True)
        if stake and order.isbuy() and not cheat and popen:
            slippage = self.p.slip_perc if self.p.slip_open else 0.0
            commission = float(self.getcommissioninfo(order.data).getcommission(1.0, popen)) / popen
            size = float(self.rules.floor(affordable(self.getcash() * stake, popen, commission, slippage)))
            if 0 < size < order.executed.remsize:
                _resize(order, size)
        super()._try_exec_market(order, popen, phigh, plow)

    def _fit(self, order: Any) -> str | None:
        """The venue's lot rules, as the live broker applies them: the amount rounded down to the lot step,
        refused below the minimum quantity or order value."""
        if self.rules == LotRules() or not len(order.data):
            return None
        price = float(order.price or order.data.close[0])
        fitted = self.rules.fit(abs(float(order.size)), price)
        if not fitted.ok:
            return fitted.reason
        _resize(order, float(fitted.amount) if order.isbuy() else -float(fitted.amount))
        return None

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


def _resize(order: Any, size: float) -> None:
    """An order's size before it executes (what Backtrader reads to create, size and fill it)."""
    order.size = order.created.size = order.executed.remsize = size


def paper_broker(spec: BrokerSpec, gate: Gate | None = None, risk: RiskSpec | None = None, **kwargs: Any) -> Any:
    broker = PaperBroker(gate if gate is not None else RiskGate(risk or RiskSpec()), fill=spec.fill, **kwargs)
    broker.setcash(spec.cash)
    broker.setcommission(commission=spec.commission)
    if spec.slippage:
        broker.set_slippage_perc(spec.slippage, slip_open=True, slip_match=True, slip_out=False)
    broker.set_coc(True)
    return broker
