"""bot fills: the ledger a live bot's position is made of

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

One row per fill of the bot's own orders (venue trade records, with their fee and fee currency), so a
position is rebuilt from what the bot did, never from the account's balance.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bot_fills",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("trade_id", sa.String(length=128), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=128), nullable=True),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("amount", sa.Numeric(precision=36, scale=12), nullable=False),
        sa.Column("price", sa.Numeric(precision=36, scale=12), nullable=False),
        sa.Column("fee", sa.Numeric(precision=36, scale=12), server_default=sa.text("0"), nullable=False),
        sa.Column("fee_currency", sa.String(length=16), nullable=True),
        sa.Column("net_amount", sa.Numeric(precision=36, scale=12), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["trading_bots.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["bot_runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bot_id", "trade_id", name="uq_bot_fills_trade_id"),
    )
    op.create_index("ix_bot_fills_bot_symbol", "bot_fills", ["bot_id", "symbol", "executed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bot_fills_bot_symbol", table_name="bot_fills")
    op.drop_table("bot_fills")
