"""The database schema (SQLAlchemy 2.0 typed models). Alembic migrations in `migrations/` create it;
a test checks that the migrated database and these models agree."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BOT_STATUSES = ("pending", "starting", "running", "degraded", "error", "stopped")
SOURCES = ("database", "kubernetes")
MODES = ("paper", "live")
NOTIFY_CHANNEL = "botops_trading_bots"
FLEET_CHANNEL = "botops_fleet"
HALT_SCOPES = ("all", "user", "namespace", "bot")
HALT_MODES = ("reducing", "halted")  # reducing: exits and stops still fire; halted: nothing goes
TRADING_STATES = ("active", "reducing", "halted")
CAP_SCOPES = ("user", "account")

MONEY = sa.Numeric(36, 12)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONB,
        datetime: sa.DateTime(timezone=True),
        Decimal: MONEY,
    }


class TradingBot(Base):
    __tablename__ = "trading_bots"
    __table_args__ = (
        sa.CheckConstraint(_in("status", BOT_STATUSES), name="ck_trading_bots_status"),
        sa.CheckConstraint(_in("source", SOURCES), name="ck_trading_bots_source"),
        sa.CheckConstraint(_in("mode", MODES), name="ck_trading_bots_mode"),
        sa.Index("ix_trading_bots_enabled_user", "enabled", "user_id"),
        sa.Index(
            "uq_trading_bots_user_name",
            "user_id",
            "name",
            unique=True,
            postgresql_where=sa.text("source = 'database'"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    name: Mapped[str] = mapped_column(sa.String(253))
    description: Mapped[str | None] = mapped_column(sa.Text)
    strategy_type: Mapped[str] = mapped_column(sa.String(64))
    strategy_params: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))
    exchange: Mapped[str] = mapped_column(sa.String(32))
    symbol: Mapped[str] = mapped_column(sa.String(64))
    timeframe: Mapped[str] = mapped_column(sa.String(8), server_default="1m")
    mode: Mapped[str] = mapped_column(sa.String(8), server_default="paper")
    market_config: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))
    broker_config: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))
    risk_config: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))
    runtime_config: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))
    notifications_config: Mapped[dict[str, Any] | None] = mapped_column()
    suspended: Mapped[bool] = mapped_column(server_default=sa.false())
    enabled: Mapped[bool] = mapped_column(server_default=sa.true())
    source: Mapped[str] = mapped_column(sa.String(16), server_default="database")
    external_ref: Mapped[str | None] = mapped_column(sa.String(512), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), server_default="pending")
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    last_heartbeat: Mapped[datetime | None] = mapped_column()
    feed_state: Mapped[str | None] = mapped_column(sa.String(16))
    equity: Mapped[float | None] = mapped_column(sa.Double)
    cash: Mapped[float | None] = mapped_column(sa.Double)
    pnl: Mapped[float | None] = mapped_column(sa.Double)
    position: Mapped[float | None] = mapped_column(sa.Double)
    trade_count: Mapped[int] = mapped_column(server_default=sa.text("0"))
    lease_holder: Mapped[str | None] = mapped_column(sa.String(253))
    lease_token: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    account_fingerprint: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    exposure: Mapped[float | None] = mapped_column(sa.Double)  # notional held, written at each fill
    trading_state: Mapped[str | None] = mapped_column(sa.String(16))
    flatten_attempt_at: Mapped[datetime | None] = mapped_column()
    flatten_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class BotRun(Base):
    __tablename__ = "bot_runs"
    __table_args__ = (sa.Index("ix_bot_runs_bot_started", "bot_id", "started_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    bot_id: Mapped[int] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"))
    holder: Mapped[str] = mapped_column(sa.String(253))
    pod: Mapped[str | None] = mapped_column(sa.String(253))
    image: Mapped[str | None] = mapped_column(sa.String(512))
    generation: Mapped[int | None] = mapped_column(sa.BigInteger)
    lease_token: Mapped[int] = mapped_column(sa.BigInteger)
    started_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    stopped_at: Mapped[datetime | None] = mapped_column()
    exit_reason: Mapped[str | None] = mapped_column(sa.Text)


class BotOrder(Base):
    """An order intent, persisted before it is sent, so an ambiguous failure can be resolved."""

    __tablename__ = "bot_orders"
    __table_args__ = (
        sa.UniqueConstraint("bot_id", "client_order_id", name="uq_bot_orders_client_order_id"),
        sa.Index("ix_bot_orders_bot_status", "bot_id", "status"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    bot_id: Mapped[int] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bot_runs.id", ondelete="SET NULL"))
    client_order_id: Mapped[str] = mapped_column(sa.String(64))
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(128))
    symbol: Mapped[str] = mapped_column(sa.String(64))
    side: Mapped[str] = mapped_column(sa.String(4))
    order_type: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[Decimal] = mapped_column()
    price: Mapped[Decimal | None] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16))
    filled: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    average: Mapped[Decimal | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class BotTrade(Base):
    """One executed order. Recording is idempotent: a second record of the same client order id
    (or exchange order id) of the same bot is ignored."""

    __tablename__ = "bot_trades"
    __table_args__ = (
        sa.UniqueConstraint("bot_id", "client_order_id", name="uq_bot_trades_client_order_id"),
        sa.UniqueConstraint("bot_id", "exchange_order_id", name="uq_bot_trades_exchange_order_id"),
        sa.Index("ix_bot_trades_bot_executed", "bot_id", "executed_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    bot_id: Mapped[int] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bot_runs.id", ondelete="SET NULL"))
    client_order_id: Mapped[str] = mapped_column(sa.String(64))
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(128))
    symbol: Mapped[str] = mapped_column(sa.String(64))
    side: Mapped[str] = mapped_column(sa.String(4))
    amount: Mapped[Decimal] = mapped_column()
    price: Mapped[Decimal] = mapped_column()
    fee: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    fee_currency: Mapped[str | None] = mapped_column(sa.String(16))
    pnl: Mapped[Decimal | None] = mapped_column()
    mode: Mapped[str] = mapped_column(sa.String(8))
    executed_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class BotFill(Base):
    """One fill of one of the bot's orders, as the venue reports it (paper: as the simulation made it).
    The bot's position, entry price and realised PnL are these fills (bot_runtime.ledger); recording is
    idempotent by the venue's trade id."""

    __tablename__ = "bot_fills"
    __table_args__ = (
        sa.UniqueConstraint("bot_id", "trade_id", name="uq_bot_fills_trade_id"),
        sa.Index("ix_bot_fills_bot_symbol", "bot_id", "symbol", "executed_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    bot_id: Mapped[int] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bot_runs.id", ondelete="SET NULL"))
    symbol: Mapped[str] = mapped_column(sa.String(64))
    trade_id: Mapped[str] = mapped_column(sa.String(128))
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(128))
    client_order_id: Mapped[str] = mapped_column(sa.String(64))
    side: Mapped[str] = mapped_column(sa.String(4))
    amount: Mapped[Decimal] = mapped_column()  # gross base amount
    price: Mapped[Decimal] = mapped_column()
    fee: Mapped[Decimal] = mapped_column(server_default=sa.text("0"))
    fee_currency: Mapped[str | None] = mapped_column(sa.String(16))
    net_amount: Mapped[Decimal] = mapped_column()  # the change of the bot's holding of the base asset
    mode: Mapped[str] = mapped_column(sa.String(8))
    executed_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class BotPerformance(Base):
    __tablename__ = "bot_performance"
    __table_args__ = (sa.Index("ix_bot_performance_bot_ts", "bot_id", "ts"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    bot_id: Mapped[int] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bot_runs.id", ondelete="SET NULL"))
    ts: Mapped[datetime] = mapped_column()
    equity: Mapped[float] = mapped_column(sa.Double)
    cash: Mapped[float] = mapped_column(sa.Double)
    pnl: Mapped[float] = mapped_column(sa.Double)
    drawdown: Mapped[float] = mapped_column(sa.Double)
    position: Mapped[float] = mapped_column(sa.Double)


class BotEvent(Base):
    __tablename__ = "bot_events"
    __table_args__ = (sa.Index("ix_bot_events_bot_ts", "bot_id", "ts"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    bot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    source: Mapped[str] = mapped_column(sa.String(16))
    type: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(8), server_default="info")
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None] = mapped_column()


# Columns whose change is a change of the bot's configuration: only these wake the syncer
# (heartbeats update trading_bots every few seconds and must not flood LISTEN/NOTIFY).
CONFIG_COLUMNS = (
    "user_id",
    "name",
    "description",
    "strategy_type",
    "strategy_params",
    "exchange",
    "symbol",
    "timeframe",
    "mode",
    "market_config",
    "broker_config",
    "risk_config",
    "runtime_config",
    "notifications_config",
    "suspended",
    "enabled",
    "source",
    "external_ref",
)


class BotState(Base):
    """A bot's trading state, written as it changes, so the next runtime of the bot continues it."""

    __tablename__ = "bot_state"

    bot_id: Mapped[int] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"), primary_key=True)
    cash: Mapped[float] = mapped_column(sa.Double)
    position: Mapped[float] = mapped_column(sa.Double)
    entry_price: Mapped[float] = mapped_column(sa.Double)
    entry_time: Mapped[datetime | None] = mapped_column()
    high_since_entry: Mapped[float] = mapped_column(sa.Double)
    realized_pnl: Mapped[float] = mapped_column(sa.Double)
    day: Mapped[date | None] = mapped_column(sa.Date)
    day_start_equity: Mapped[float | None] = mapped_column(sa.Double)
    baseline_equity: Mapped[float] = mapped_column(sa.Double)  # PnL is measured from it, across runs
    daily_halt_reason: Mapped[str | None] = mapped_column(sa.Text)  # the daily-loss halt of `day`
    lease_token: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class FleetHalt(Base):
    """A halt of all bots, a user's, a namespace's or one bot's, until resumed (who, when and why)."""

    __tablename__ = "fleet_halts"
    __table_args__ = (
        sa.CheckConstraint(_in("scope", HALT_SCOPES), name="ck_fleet_halts_scope"),
        sa.CheckConstraint(_in("mode", HALT_MODES), name="ck_fleet_halts_mode"),
        sa.Index("ix_fleet_halts_active", "resumed_at", "scope", "value"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[str] = mapped_column(sa.String(512), server_default="")
    flatten: Mapped[bool] = mapped_column(server_default=sa.false())
    mode: Mapped[str] = mapped_column(sa.String(16), server_default="reducing")
    reason: Mapped[str] = mapped_column(sa.Text)
    created_by: Mapped[str] = mapped_column(sa.String(253))
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    resumed_by: Mapped[str | None] = mapped_column(sa.String(253))
    resumed_at: Mapped[datetime | None] = mapped_column()


class ExposureCap(Base):
    """Total notional (quote currency) allowed across all bots of a user or of an exchange account."""

    __tablename__ = "exposure_caps"
    __table_args__ = (
        sa.CheckConstraint(_in("scope", CAP_SCOPES), name="ck_exposure_caps_scope"),
        sa.UniqueConstraint("scope", "value", name="uq_exposure_caps_scope_value"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[str] = mapped_column(sa.String(128))
    max_notional: Mapped[float] = mapped_column(sa.Double)
    created_by: Mapped[str] = mapped_column(sa.String(253))
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class InstallationKey(Base):
    """Keys generated once per installation (the account fingerprint key): never a credential."""

    __tablename__ = "botops_keys"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(128))


class ExposureReservation(Base):
    """Cap room an order has taken between the check and its fill (or rejection, or cancel): the check and
    the reservation are one transaction, so bots deciding at the same time cannot all pass one cap."""

    __tablename__ = "exposure_reservations"
    __table_args__ = (sa.UniqueConstraint("bot_id", "client_order_id", name="uq_exposure_reservations_order"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    bot_id: Mapped[int] = mapped_column(sa.ForeignKey("trading_bots.id", ondelete="CASCADE"))
    client_order_id: Mapped[str] = mapped_column(sa.String(64))
    notional: Mapped[float] = mapped_column(sa.Double)
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class BacktestResult(Base):
    """The whole result of a Backtest resource's run (metrics, monthly returns, trades, refusals, equity curve);
    the operator copies the summary into the resource's status. One row per run of a spec generation."""

    __tablename__ = "backtest_results"
    __table_args__ = (sa.UniqueConstraint("uid", "generation", name="uq_backtest_results_run"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    namespace: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(253))
    uid: Mapped[str] = mapped_column(sa.String(64))
    generation: Mapped[int] = mapped_column(sa.BigInteger)
    bot_name: Mapped[str | None] = mapped_column(sa.String(253))
    fill_model: Mapped[str] = mapped_column(sa.Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
