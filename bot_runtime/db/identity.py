"""Database identities of the pods the operator runs: one LOGIN role per bot, one for Backtest pods.

Migration 0006 makes the group role of this database (`botops_rt_<md5(database)[:10]>`) and the row-level
security that keeps a bot role (`<group>_bot_<id>`) to its own bot's rows. Here the operator creates those
roles (it needs CREATEROLE), gives each a fresh password when its Secret is made or rotated, and drops a
bot's role with the bot. Passwords reach PostgreSQL as SCRAM verifiers, so a statement log holds no password.
Role names are made of [a-z0-9_] by construction and the verifiers of base64: both are safe to inline in DDL,
which takes no bind parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import make_url

GROUP_SQL = "SELECT 'botops_rt_' || substr(md5(current_database()), 1, 10)"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677); it accepts it in CREATE ROLE."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class RuntimeIdentities:
    def __init__(self, engine: sa.Engine, runtime_url: str) -> None:
        self.engine, self.runtime_url = engine, runtime_url
        self._group: str | None = None

    @property
    def group(self) -> str:
        if self._group is None:
            with self.engine.connect() as conn:
                self._group = str(conn.exec_driver_sql(GROUP_SQL).scalar_one())
        return self._group

    def bot_role(self, bot_id: int) -> str:
        return f"{self.group}_bot_{int(bot_id)}"

    def backtest_role(self) -> str:
        return f"{self.group}_backtests"

    def issue_bot(self, bot_id: int) -> str:
        """The URL a bot's runtime connects with: its own role, a new password (a rotation when it existed)."""
        role = self.bot_role(bot_id)
        return self._url(role, self._login(role, f'IN ROLE "{self.group}"'))

    def issue_backtests(self) -> str:
        """The URL Backtest pods connect with: they write backtest_results and nothing else."""
        role = self.backtest_role()
        password = self._login(role, "")
        with self.engine.begin() as conn:
            database = conn.exec_driver_sql("SELECT current_database()").scalar_one()
            for grant in (
                f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
                f'GRANT USAGE ON SCHEMA public TO "{role}"',
                f'GRANT SELECT, INSERT, UPDATE ON backtest_results TO "{role}"',
                f'GRANT USAGE ON SEQUENCE backtest_results_id_seq TO "{role}"',
            ):
                conn.exec_driver_sql(grant)
        return self._url(role, password)

    def retire_bot(self, bot_id: int) -> None:
        """A deleted bot's role logs in no more; its runtime, still stopping, keeps its session to record the
        stop. drop_retired drops the role once that session has ended."""
        with self.engine.begin() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.bot_role(bot_id),)).first():
                conn.exec_driver_sql(f'ALTER ROLE "{self.bot_role(bot_id)}" NOLOGIN')

    def drop_retired(self) -> list[str]:
        """Drop the retired bot roles no session uses any more; their names."""
        with self.engine.begin() as conn:
            retired = (
                conn.exec_driver_sql(
                    "SELECT rolname FROM pg_roles r WHERE starts_with(rolname, %s) AND NOT rolcanlogin "
                    "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.usename = r.rolname)",
                    (f"{self.group}_bot_",),
                )
                .scalars()
                .all()
            )
            for role in retired:
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        return list(retired)

    def _login(self, role: str, membership: str) -> str:
        password = secrets.token_urlsafe(32)
        verifier = scram_verifier(password)
        with self.engine.begin() as conn:
            exists = conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).first()
            if exists:
                conn.exec_driver_sql(f"ALTER ROLE \"{role}\" LOGIN PASSWORD '{verifier}'")
            else:
                conn.exec_driver_sql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{verifier}' {membership}")
        return password

    def _url(self, role: str, password: str) -> str:
        return make_url(self.runtime_url).set(username=role, password=password).render_as_string(hide_password=False)
