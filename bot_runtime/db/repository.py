"""BotRepository: every read and write of the trading_bots database (the original `trading_service`).

The session factory is injected, never attached to models. Times come from the database clock
(`now()`), so leases and heartbeats do not depend on the clocks of pods.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, sessionmaker

from bot_runtime.api.models import TradingBotSpec
from bot_runtime.api.rows import spec_to_row
from bot_runtime.db.schema import (
    BOT_STATUSES,
    BotEvent,
    BotFill,
    BotOrder,
    BotPerformance,
    BotRun,
    BotTrade,
    TradingBot,
)

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """This runtime no longer holds the bot's lease: it must stop trading at once."""


@dataclass(frozen=True)
class Lease:
    bot_id: int
    holder: str
    token: int


def held_by(lease: Lease, unexpired: bool = False) -> tuple[Any, ...]:
    """The row condition: this bot, this holder, this fencing token (and, if asked, not yet expired)."""
    clause = (
        TradingBot.id == lease.bot_id,
        TradingBot.lease_holder == lease.holder,
        TradingBot.lease_token == lease.token,
    )
    return (*clause, TradingBot.lease_expires_at > sa.func.now()) if unexpired else clause


@dataclass(frozen=True)
class TradeRecord:
    client_order_id: str
    symbol: str
    side: str
    amount: Decimal | float
    price: Decimal | float
    executed_at: datetime
    mode: str
    exchange_order_id: str | None = None
    fee: Decimal | float = 0
    fee_currency: str | None = None
    pnl: Decimal | float | None = None
    run_id: int | None = None


@dataclass(frozen=True)
class FillRecord:
    trade_id: str
    client_order_id: str
    symbol: str
    side: str
    amount: Decimal | float
    price: Decimal | float
    net_amount: Decimal | float
    executed_at: datetime
    mode: str
    exchange_order_id: str | None = None
    fee: Decimal | float = 0
    fee_currency: str | None = None
    run_id: int | None = None


class BotRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --------------------------------------------------------------------------- configurations

    def get_enabled_bots(self, user_id: int | None = None) -> list[TradingBot]:
        query = sa.select(TradingBot).where(TradingBot.enabled.is_(True)).order_by(TradingBot.id)
        if user_id is not None:
            query = query.where(TradingBot.user_id == user_id)
        with self.session() as s:
            return list(s.scalars(query))

    def get_bots(self, *, source: str | None = None, user_id: int | None = None) -> list[TradingBot]:
        query = sa.select(TradingBot).order_by(TradingBot.id)
        if source is not None:
            query = query.where(TradingBot.source == source)
        if user_id is not None:
            query = query.where(TradingBot.user_id == user_id)
        with self.session() as s:
            return list(s.scalars(query))

    def get_bots_by_ids(self, bot_ids: list[int]) -> list[TradingBot]:
        with self.session() as s:
            return list(s.scalars(sa.select(TradingBot).where(TradingBot.id.in_(bot_ids)).order_by(TradingBot.id)))

    def get_bot(self, bot_id: int) -> TradingBot | None:
        with self.session() as s:
            return s.get(TradingBot, bot_id)

    def get_bot_by_ref(self, namespace: str, name: str) -> TradingBot | None:
        with self.session() as s:
            return s.scalar(sa.select(TradingBot).where(TradingBot.external_ref == f"{namespace}/{name}"))

    def create_bot(
        self,
        spec: TradingBotSpec,
        *,
        name: str,
        user_id: int | None = None,
        source: str = "database",
        external_ref: str | None = None,
        enabled: bool = True,
    ) -> int:
        with self.session() as s:
            bot = TradingBot(
                name=name,
                user_id=user_id,
                source=source,
                external_ref=external_ref,
                enabled=enabled,
                **spec_to_row(spec),
            )
            s.add(bot)
            s.flush()
            return int(bot.id)

    def upsert_kubernetes_bot(self, namespace: str, name: str, spec: TradingBotSpec, user_id: int | None) -> int | None:
        """Register a resource applied by a person or GitOps, so status, heartbeats and trades have a home.
        None: the namespace/name is a database row's, which a resource never overwrites."""
        ref = f"{namespace}/{name}"
        values = {
            **spec_to_row(spec),
            "name": name,
            "user_id": user_id,
            "source": "kubernetes",
            "external_ref": ref,
            "enabled": True,
        }
        insert = pg_insert(TradingBot).values(**values)
        upsert = insert.on_conflict_do_update(
            index_elements=[TradingBot.external_ref],
            set_={k: insert.excluded[k] for k in values if k != "external_ref"} | {"updated_at": sa.func.now()},
            where=TradingBot.source == "kubernetes",
        ).returning(TradingBot.id)
        with self.session() as s:
            bot_id = s.execute(upsert).scalar_one_or_none()
            return None if bot_id is None else int(bot_id)

    def set_external_ref(self, bot_id: int, ref: str | None) -> None:
        self._update(bot_id, external_ref=ref)

    def claim_external_ref(self, bot_id: int, ref: str) -> TradingBot | None:
        """Give a database row the name `ref` (namespace/name), whose resource the caller found absent. A
        Kubernetes bot's row keeps its ref after its resource is deleted: that ref is freed. Returns the row
        of another source that holds it (a conflict; nothing changed), else None."""
        with self.session() as s:
            holder = s.scalar(sa.select(TradingBot).where(TradingBot.external_ref == ref, TradingBot.id != bot_id))
            if holder is not None and holder.source != "kubernetes":
                return holder
            if holder is not None:
                holder.external_ref = None
                s.flush()
            s.execute(
                sa.update(TradingBot).where(TradingBot.id == bot_id).values(external_ref=ref, updated_at=sa.func.now())
            )
            return None

    # ---------------------------------------------------------------------------------- status

    def mark_error(self, bot_id: int, message: str) -> None:
        self.set_status(bot_id, "error", message)

    def set_status(self, bot_id: int, status: str, error_message: str | None = None) -> None:
        if status not in BOT_STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(BOT_STATUSES)}")
        self._update(bot_id, status=status, error_message=error_message)

    def mark_stopped(self, bot_ids: Sequence[int], reason: str) -> int:
        if not bot_ids:
            return 0
        with self.session() as s:
            result = s.execute(
                sa.update(TradingBot)
                .where(TradingBot.id.in_(bot_ids), TradingBot.status != "stopped")
                .values(status="stopped", error_message=reason, feed_state=None, updated_at=sa.func.now())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def _update(self, bot_id: int, **values: Any) -> None:
        with self.session() as s:
            s.execute(sa.update(TradingBot).where(TradingBot.id == bot_id).values(**values, updated_at=sa.func.now()))

    def heartbeat(self, lease: Lease, *, status: str = "running", **metrics: Any) -> datetime:
        """Write the bot's status and metrics; raises LeaseLost if another runtime holds the bot."""
        allowed = {
            "feed_state",
            "equity",
            "cash",
            "pnl",
            "position",
            "error_message",
            "exposure",
            "trading_state",
            "flatten_attempt_at",
            "flatten_error",
        }
        unknown = set(metrics) - allowed
        if unknown:
            raise TypeError(f"unknown heartbeat fields: {', '.join(sorted(unknown))}")
        with self.session() as s:
            now = s.execute(
                sa.update(TradingBot)
                .where(*held_by(lease))
                .values(status=status, last_heartbeat=sa.func.now(), updated_at=sa.func.now(), **metrics)
                .returning(TradingBot.last_heartbeat)
            ).scalar_one_or_none()
        if now is None:
            raise LeaseLost(f"bot {lease.bot_id}: lease token {lease.token} is no longer held by {lease.holder}")
        return now

    # ---------------------------------------------------------------------------------- leases

    def acquire_lease(self, bot_id: int, holder: str, ttl_seconds: float) -> Lease | None:
        """Take the bot's lease if it is free or expired; the new fencing token is one higher."""
        ttl = sa.func.make_interval(0, 0, 0, 0, 0, 0, ttl_seconds)
        with self.session() as s:
            token = s.execute(
                sa.update(TradingBot)
                .where(
                    TradingBot.id == bot_id,
                    sa.or_(
                        TradingBot.lease_holder.is_(None),
                        TradingBot.lease_expires_at.is_(None),
                        TradingBot.lease_expires_at < sa.func.now(),
                        TradingBot.lease_holder == holder,
                    ),
                )
                .values(
                    lease_holder=holder, lease_token=TradingBot.lease_token + 1, lease_expires_at=sa.func.now() + ttl
                )
                .returning(TradingBot.lease_token)
            ).scalar_one_or_none()
        return None if token is None else Lease(bot_id, holder, int(token))

    def renew_lease(self, lease: Lease, ttl_seconds: float) -> bool:
        ttl = sa.func.make_interval(0, 0, 0, 0, 0, 0, ttl_seconds)
        with self.session() as s:
            row = s.execute(
                sa.update(TradingBot)
                .where(*held_by(lease, unexpired=True))
                .values(lease_expires_at=sa.func.now() + ttl)
                .returning(TradingBot.id)
            ).first()
        return row is not None

    def release_lease(self, lease: Lease) -> None:
        with self.session() as s:
            s.execute(sa.update(TradingBot).where(*held_by(lease)).values(lease_holder=None, lease_expires_at=None))

    def release_lease_of_pod(self, bot_id: int, pod: str) -> bool:
        """Free a lease whose runtime is known dead: its pod's container reported a terminated state.
        Holders are "<pod>/<random>"; no other runtime of that pod name can exist at that moment."""
        with self.session() as s:
            row = s.execute(
                sa.update(TradingBot)
                .where(TradingBot.id == bot_id, TradingBot.lease_holder.like(f"{pod}/%"))
                .values(lease_holder=None, lease_expires_at=None)
                .returning(TradingBot.id)
            ).first()
        return row is not None

    def lease_is_held(self, lease: Lease) -> bool:
        """The fencing check made before every order."""
        with self.session() as s:
            return s.execute(sa.select(TradingBot.id).where(*held_by(lease, unexpired=True))).first() is not None

    def lease_holder(self, bot_id: int) -> tuple[str | None, datetime | None]:
        with self.session() as s:
            row = s.execute(
                sa.select(TradingBot.lease_holder, TradingBot.lease_expires_at).where(TradingBot.id == bot_id)
            ).first()
        return (row[0], row[1]) if row else (None, None)

    # ------------------------------------------------------------------------------------ runs

    def start_run(self, lease: Lease, *, pod: str | None, image: str | None, generation: int | None) -> int:
        with self.session() as s:
            run = BotRun(
                bot_id=lease.bot_id,
                holder=lease.holder,
                pod=pod,
                image=image,
                generation=generation,
                lease_token=lease.token,
            )
            s.add(run)
            s.flush()
            return int(run.id)

    def finish_run(self, run_id: int, reason: str) -> None:
        with self.session() as s:
            s.execute(
                sa.update(BotRun)
                .where(BotRun.id == run_id, BotRun.stopped_at.is_(None))
                .values(stopped_at=sa.func.now(), exit_reason=reason)
            )

    def runs(self, bot_id: int) -> list[BotRun]:
        with self.session() as s:
            return list(s.scalars(sa.select(BotRun).where(BotRun.bot_id == bot_id).order_by(BotRun.id)))

    # ---------------------------------------------------------------------- orders and trades

    def record_order_intent(
        self,
        bot_id: int,
        run_id: int | None,
        *,
        client_order_id: str,
        symbol: str,
        side: str,
        order_type: str,
        amount: float,
        price: float | None,
    ) -> None:
        stmt = (
            pg_insert(BotOrder)
            .values(
                bot_id=bot_id,
                run_id=run_id,
                client_order_id=client_order_id,
                symbol=symbol,
                side=side,
                order_type=order_type,
                amount=amount,
                price=price,
                status="intent",
            )
            .on_conflict_do_nothing(constraint="uq_bot_orders_client_order_id")
        )
        with self.session() as s:
            s.execute(stmt)

    def update_order(self, bot_id: int, client_order_id: str, **values: Any) -> None:
        with self.session() as s:
            s.execute(
                sa.update(BotOrder)
                .where(BotOrder.bot_id == bot_id, BotOrder.client_order_id == client_order_id)
                .values(**values, updated_at=sa.func.now())
            )

    def orders(self, bot_id: int, statuses: Sequence[str] | None = None) -> list[BotOrder]:
        query = sa.select(BotOrder).where(BotOrder.bot_id == bot_id).order_by(BotOrder.id)
        if statuses is not None:
            query = query.where(BotOrder.status.in_(statuses))
        with self.session() as s:
            return list(s.scalars(query))

    def record_trade(self, bot_id: int, trade: TradeRecord) -> bool:
        """Insert a trade once; a repeat (same client or exchange order id) is ignored. True if new.
        trading_bots.trade_count counts the bot's recorded trades, across runs."""
        values = {k: getattr(trade, k) for k in trade.__dataclass_fields__}
        stmt = pg_insert(BotTrade).values(bot_id=bot_id, **values).on_conflict_do_nothing().returning(BotTrade.id)
        with self.session() as s:
            inserted = s.execute(stmt).first() is not None
            if inserted:
                s.execute(
                    sa.update(TradingBot).where(TradingBot.id == bot_id).values(trade_count=TradingBot.trade_count + 1)
                )
        return inserted

    def record_fill(self, bot_id: int, fill: FillRecord) -> bool:
        """Insert a fill once (by the venue's trade id). True if new."""
        values = {k: getattr(fill, k) for k in fill.__dataclass_fields__}
        stmt = pg_insert(BotFill).values(bot_id=bot_id, **values).on_conflict_do_nothing().returning(BotFill.id)
        with self.session() as s:
            return s.execute(stmt).first() is not None

    def fills(self, bot_id: int, symbol: str | None = None) -> list[BotFill]:
        query = sa.select(BotFill).where(BotFill.bot_id == bot_id).order_by(BotFill.executed_at, BotFill.id)
        if symbol is not None:
            query = query.where(BotFill.symbol == symbol)
        with self.session() as s:
            return list(s.scalars(query))

    def trades(self, bot_id: int) -> list[BotTrade]:
        with self.session() as s:
            return list(s.scalars(sa.select(BotTrade).where(BotTrade.bot_id == bot_id).order_by(BotTrade.id)))

    def record_performance(
        self,
        bot_id: int,
        run_id: int | None,
        *,
        ts: datetime,
        equity: float,
        cash: float,
        pnl: float,
        drawdown: float,
        position: float,
    ) -> None:
        with self.session() as s:
            s.add(
                BotPerformance(
                    bot_id=bot_id,
                    run_id=run_id,
                    ts=ts,
                    equity=equity,
                    cash=cash,
                    pnl=pnl,
                    drawdown=drawdown,
                    position=position,
                )
            )

    def record_event(
        self,
        bot_id: int | None,
        source: str,
        type: str,
        message: str,
        *,
        severity: str = "info",
        details: dict[str, Any] | None = None,
    ) -> None:
        with self.session() as s:
            s.add(
                BotEvent(bot_id=bot_id, source=source, type=type, message=message, severity=severity, details=details)
            )

    def events(self, bot_id: int, type: str | None = None) -> list[BotEvent]:
        query = sa.select(BotEvent).where(BotEvent.bot_id == bot_id).order_by(BotEvent.id)
        if type is not None:
            query = query.where(BotEvent.type == type)
        with self.session() as s:
            return list(s.scalars(query))
