"""The order path of a run: our client order ids, the order gate before every order, and what a fill
or a rejection leaves behind (bot_trades, saved state, notifications, metrics)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot_runtime.btcompat import bt
from bot_runtime.context import RunContext
from bot_runtime.continuity import Continuity
from bot_runtime.control import RunControl, lease_lost
from bot_runtime.db.engine import DB_ERRORS
from bot_runtime.db.repository import FillRecord, LeaseLost, TradeRecord
from bot_runtime.figures import BotFigures
from bot_runtime.gate import OrderGate
from bot_runtime.news import BotNews
from bot_runtime.venues import VenueProfile

log = logging.getLogger("bot_runtime")

# said elsewhere (status, the halt's own news): no risk notification for every refused order
QUIET_REFUSALS = ("lease lost", "the runtime is stopping", "trading halted", "reducing only", "the database is")


def paper_fill(trade: TradeRecord, net: float) -> FillRecord:
    return FillRecord(
        trade_id=f"paper-{trade.client_order_id}",
        client_order_id=trade.client_order_id,
        symbol=trade.symbol,
        side=trade.side,
        amount=trade.amount,
        price=trade.price,
        net_amount=Decimal(str(net)),
        executed_at=trade.executed_at,
        mode="paper",
        fee=trade.fee,
        fee_currency=trade.fee_currency,
        run_id=trade.run_id,
    )


class OrderPath:
    def __init__(
        self,
        ctx: RunContext,
        control: RunControl,
        gate: OrderGate,
        news: BotNews,
        figures: BotFigures,
        continuity: Continuity,
        venue: VenueProfile,
    ) -> None:
        self.ctx, self.control, self.gate = ctx, control, gate
        self.news, self.figures, self.continuity, self.venue = news, figures, continuity, venue

    def client_order_id(self, ref: int) -> str:
        """Deterministic, in the venue's alphabet: bot, fencing token, order ref."""
        return self.venue.client_order_id(self.ctx.bot_id, self.ctx.lease.lease.token, ref)

    def lease_lost(self, exc: LeaseLost) -> None:
        """The gate found another runtime holding the bot: stop trading at once."""
        self.control.fail(lease_lost(exc))

    def refused(self, order: Any, reason: str) -> None:
        """The order gate refused an order (whatever placed it): said in status, history and, for a risk
        limit, to the owner."""
        side = "buy" if order.isbuy() else "sell"
        self.news.note(f"order refused: {side} {abs(order.size):.8g}: {reason}")
        if reason.startswith("exposure cap"):
            self.news.record("exposure_cap", f"order refused: {reason}", "warning")
        if not reason.startswith(QUIET_REFUSALS):
            self.news.tell("risk_limit", "Order refused by a risk limit", [reason], "warning")

    def on_order(self, order: Any) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        metrics = self.ctx.metrics
        executed = abs(order.executed.size)
        if order.status == order.Completed or (executed and order.status in (order.Canceled, order.Rejected)):
            self.continuity.save()  # first: durable before anything else happens
            self._record_trade(order)
            self._write_exposure(order)
        if order.status in (order.Completed, order.Canceled, order.Rejected, order.Margin, order.Expired):
            metrics.labels(metrics.orders, status=order.getstatusname().lower()).inc()
        if order.status in (order.Rejected, order.Margin) and not order.info.get("refused"):
            reason = order.info.get("reject_reason") or order.getstatusname().lower()
            if order.info.get("skipped"):  # never sent: the venue would have refused it, or must not see it now
                self.news.note(reason)
                self.news.record(
                    "order_skipped",
                    f"order {order.ref} ({'buy' if order.isbuy() else 'sell'} {abs(order.size):.8g}): {reason}",
                    "warning",
                )
                return
            self.news.note(f"order rejected: {reason}")
            self.news.record("order_rejected", f"order {order.ref} rejected: {reason}", "warning")
            self.news.tell("order_rejected", "Order rejected", [reason], "warning")

    def _write_exposure(self, order: Any) -> None:
        """The bot's exposure after the fill, at once (caps of other bots read it), its reservation released."""
        exposure = float(order.executed.psize) * float(order.executed.price or 0.0)
        try:
            self.ctx.fleet.write_exposure(self.ctx.lease.lease, exposure, order.info.get("client_order_id"))
        except DB_ERRORS:
            log.warning("exposure not written (database unreachable); the next heartbeat writes it")

    def _record_trade(self, order: Any) -> None:
        """The order's trade record; in paper mode also its (one, simulated) fill."""
        cid = order.info.get("client_order_id") or self.client_order_id(order.ref)
        exec_dt = bt.num2date(order.executed.dt).replace(tzinfo=UTC) if order.executed.dt else datetime.now(UTC)
        quote = self.ctx.spec.market.symbol.split("/")[1].split(":")[0]
        # live: the gross amount and the fees of the venue's fills (the executed size is net of a base fee)
        fee_currency, fee = next(iter((order.info.get("fees") or {quote: order.executed.comm}).items()))
        trade = TradeRecord(
            client_order_id=cid,
            exchange_order_id=order.info.get("exchange_order_id"),
            symbol=self.ctx.spec.market.symbol,
            side="buy" if order.isbuy() else "sell",
            amount=Decimal(str(order.info.get("gross_filled") or abs(order.executed.size))),
            price=Decimal(str(order.executed.price)),
            fee=Decimal(str(fee)),
            fee_currency=fee_currency,
            pnl=Decimal(str(order.executed.pnl)) if order.executed.pnl else None,
            executed_at=exec_dt,
            mode=self.ctx.spec.mode,
            run_id=self.ctx.run_id,
        )
        self.ctx.journal.trade(trade)
        if self.ctx.spec.mode == "paper":
            self.ctx.journal.fill(paper_fill(trade, float(order.executed.size)))
        self.figures.trade_count += 1
        self._tell_fill(order, trade)
        self.ctx.metrics.labels(self.ctx.metrics.trades).inc()
        log.info("trade %s: %s %.8g @ %.8g", cid, trade.side, trade.amount, trade.price)

    def _tell_fill(self, order: Any, trade: TradeRecord) -> None:
        after = float(order.executed.psize)
        before = after - float(order.executed.size)
        fill = f"{trade.side} {float(trade.amount):.8g} @ {float(trade.price):.8g}, fee {float(trade.fee):.4g}"
        if not before and after:
            self.news.tell("position_opened", f"Position opened: {fill}", [f"position {after:.8g}"])
        elif before and not after:
            pnl = float(order.executed.pnl or 0.0) - float(order.executed.comm or 0.0)
            self.news.tell("position_closed", f"Position closed: {fill}, pnl {pnl:+.2f}", [f"pnl {pnl:+.2f}"])
        else:
            self.news.tell("order_filled", f"Order filled: {fill}", [f"position {after:.8g}"])
