"""Engine construction: one place that turns a user's database URL into a SQLAlchemy engine."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc

# What a database outage raises: the caller degrades (spools, refuses new exposure) instead of failing.
# sqlalchemy's TimeoutError: no pooled connection came back in time (each caller waits pool_timeout, then goes on)
DB_ERRORS = (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError, OSError)
# A peer that stops answering (a partition, not a refusal) is noticed in about a minute instead of never.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def sqlalchemy_url(url: str) -> str:
    """Accept the URLs users have (postgres://, postgresql://) and use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(
        "database URL must start with postgresql:// (or postgres://, postgresql+psycopg://); "
        f"got a URL with scheme {url.split(':', 1)[0]!r}"
    )


def libpq_url(url: str) -> str:
    """The URL as libpq/psycopg reads it (no SQLAlchemy driver suffix)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    kwargs.setdefault("pool_pre_ping", True)
    kwargs["connect_args"] = {**KEEPALIVES, **kwargs.get("connect_args", {})}
    return sa.create_engine(sqlalchemy_url(url), **kwargs)
