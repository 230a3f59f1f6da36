"""risk controls: trading states, cap reservations, exposure written at fills, flatten progress, the
daily-loss halt saved

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fleet_halts", sa.Column("mode", sa.String(length=16), server_default="reducing", nullable=False))
    op.create_check_constraint("ck_fleet_halts_mode", "fleet_halts", "mode IN ('reducing', 'halted')")
    op.add_column("trading_bots", sa.Column("exposure", sa.Double(), nullable=True))
    op.add_column("trading_bots", sa.Column("trading_state", sa.String(length=16), nullable=True))
    op.add_column("trading_bots", sa.Column("flatten_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("trading_bots", sa.Column("flatten_error", sa.Text(), nullable=True))
    op.add_column("bot_state", sa.Column("daily_halt_reason", sa.Text(), nullable=True))
    op.create_table(
        "exposure_reservations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("notional", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["trading_bots.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bot_id", "client_order_id", name="uq_exposure_reservations_order"),
    )


def downgrade() -> None:
    op.drop_table("exposure_reservations")
    op.drop_column("bot_state", "daily_halt_reason")
    op.drop_column("trading_bots", "flatten_error")
    op.drop_column("trading_bots", "flatten_attempt_at")
    op.drop_column("trading_bots", "trading_state")
    op.drop_column("trading_bots", "exposure")
    op.drop_constraint("ck_fleet_halts_mode", "fleet_halts", type_="check")
    op.drop_column("fleet_halts", "mode")
