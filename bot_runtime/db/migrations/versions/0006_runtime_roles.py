"""runtime roles: each bot runtime connects as its own role, and row-level security keeps it to its own rows

A group role per database (`botops_rt_<md5(database)[:10]>`, see bot_runtime.db.identity) holds what every
bot role may do; the operator creates one LOGIN role per bot in that group (`<group>_bot_<id>`). Policies let a
bot role see and write only its own bot's rows, update only the status columns of its own trading_bots row,
read halts and caps, and add a halt of its own bot (onStart: halt). Any other role (the operator, a shared
runtime role set by hand) keeps seeing every row, as before. Cross-bot questions a runtime must ask (is this
account claimed by another bot, how much of a cap do the others hold) are SECURITY DEFINER functions that
answer them without showing the rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OWN_ROWS = (
    "bot_runs",
    "bot_orders",
    "bot_trades",
    "bot_fills",
    "bot_performance",
    "bot_events",
    "bot_state",
    "exposure_reservations",
)
# what a runtime writes in its own trading_bots row: status, heartbeat, lease, exposure, trading state
STATUS_COLUMNS = (
    "status",
    "error_message",
    "last_heartbeat",
    "feed_state",
    "equity",
    "cash",
    "pnl",
    "position",
    "trade_count",
    "lease_holder",
    "lease_token",
    "lease_expires_at",
    "account_fingerprint",
    "exposure",
    "trading_state",
    "flatten_attempt_at",
    "flatten_error",
    "updated_at",
)
GROUP = "'botops_rt_' || substr(md5(current_database()), 1, 10)"


def upgrade() -> None:
    op.execute(f"""
        DO $$
        DECLARE g text := {GROUP};
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = g) THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', g);
            END IF;
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), g);
            EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', g);
            EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', g);
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON {", ".join(OWN_ROWS)} TO %I', g);
            EXECUTE format('GRANT SELECT ON trading_bots, fleet_halts, exposure_caps, botops_keys, alembic_version TO %I', g);
            EXECUTE format('GRANT UPDATE ({", ".join(STATUS_COLUMNS)}) ON trading_bots TO %I', g);
            EXECUTE format('GRANT INSERT ON fleet_halts TO %I', g);
        END $$;
    """)
    # The bot a session runs as: its id from a bot role's name, NULL for any other role. session_user, so a
    # SECURITY DEFINER function sees its caller.
    op.execute(f"""
        CREATE FUNCTION botops_session_bot() RETURNS bigint LANGUAGE sql STABLE AS $$
            SELECT CASE WHEN session_user::text LIKE {GROUP} || '\\_bot\\_%'
                        THEN substring(session_user::text from '_bot_([0-9]+)$')::bigint END
        $$
    """)
    for table in OWN_ROWS:
        _own_rows(table, "bot_id")
    _own_rows("trading_bots", "id")
    op.execute("ALTER TABLE fleet_halts ENABLE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY halts_read ON fleet_halts FOR SELECT USING (true)")
    op.execute("""
        CREATE POLICY halts_write ON fleet_halts USING (botops_session_bot() IS NULL)
        WITH CHECK (
            botops_session_bot() IS NULL
            OR (scope = 'bot' AND value = (SELECT external_ref FROM trading_bots WHERE id = botops_session_bot()))
        )
    """)
    op.execute("""
        CREATE FUNCTION botops_account_conflict(p_bot bigint, p_account text, p_symbol text, p_shared boolean)
        RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
        BEGIN
            IF botops_session_bot() IS NOT NULL AND botops_session_bot() <> p_bot THEN
                RAISE EXCEPTION 'a bot asks only about itself' USING ERRCODE = '42501';
            END IF;
            RETURN (
                SELECT COALESCE(external_ref, format('trading_bots row %s (%s)', id, name))
                FROM trading_bots
                WHERE account_fingerprint = p_account AND symbol = p_symbol AND mode = 'live' AND enabled
                  AND status <> 'stopped' AND id <> p_bot
                  AND NOT (p_shared AND COALESCE((runtime_config->>'allow_shared_account')::boolean, false))
                ORDER BY id LIMIT 1
            );
        END $$
    """)
    op.execute("""
        CREATE FUNCTION botops_cap_usage(p_bot bigint, p_scope text, p_value text, p_order text,
                                         OUT others double precision, OUT reserved double precision)
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
        BEGIN
            IF botops_session_bot() IS NOT NULL AND botops_session_bot() <> p_bot THEN
                RAISE EXCEPTION 'a bot asks only about itself' USING ERRCODE = '42501';
            END IF;
            SELECT COALESCE(sum(COALESCE(exposure, greatest(COALESCE(equity, 0) - COALESCE(cash, 0), 0))), 0)
              INTO others FROM trading_bots b
             WHERE b.id <> p_bot AND CASE p_scope WHEN 'user' THEN b.user_id::text = p_value
                                                   ELSE b.account_fingerprint = p_value END;
            SELECT COALESCE(sum(r.notional), 0) INTO reserved
              FROM exposure_reservations r JOIN trading_bots b ON b.id = r.bot_id
             WHERE r.client_order_id IS DISTINCT FROM p_order
               AND CASE p_scope WHEN 'user' THEN b.user_id::text = p_value ELSE b.account_fingerprint = p_value END;
        END $$
    """)
    for function in (
        "botops_account_conflict(bigint, text, text, boolean)",
        "botops_cap_usage(bigint, text, text, text)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"DO $$ BEGIN EXECUTE format('GRANT EXECUTE ON FUNCTION {function} TO %I', {GROUP}); END $$")


def _own_rows(table: str, column: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY own_rows ON {table} USING ({column} = botops_session_bot()) "
        f"WITH CHECK ({column} = botops_session_bot())"
    )
    op.execute(
        f"CREATE POLICY not_a_bot ON {table} USING (botops_session_bot() IS NULL) "
        "WITH CHECK (botops_session_bot() IS NULL)"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS botops_cap_usage(bigint, text, text, text)")
    op.execute("DROP FUNCTION IF EXISTS botops_account_conflict(bigint, text, text, boolean)")
    op.execute("DROP POLICY IF EXISTS halts_read ON fleet_halts")
    op.execute("DROP POLICY IF EXISTS halts_write ON fleet_halts")
    op.execute("ALTER TABLE fleet_halts DISABLE ROW LEVEL SECURITY")
    for table in (*OWN_ROWS, "trading_bots"):
        op.execute(f"DROP POLICY IF EXISTS own_rows ON {table}")
        op.execute(f"DROP POLICY IF EXISTS not_a_bot ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION IF EXISTS botops_session_bot()")
    op.execute(f"""
        DO $$
        DECLARE g text := {GROUP};
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = g) THEN
                EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', g);
                EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', g);
                EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', g);
                EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), g);
            END IF;
        END $$;
    """)
