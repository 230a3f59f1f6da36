"""Which migration the database is at and which this package ships, without Alembic.

A running operator only compares the two; importing Alembic (and Mako, Pygments) for that costs ~11 MiB of its
resident memory for its whole life. `bot-operator db upgrade` still runs Alembic (`migrate.py`); a test checks
that both agree on the head.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from bot_runtime.db.engine import create_engine

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"

_REVISION = re.compile(r'^revision\s*=\s*"([^"]+)"', re.MULTILINE)
_DOWN = re.compile(r'^down_revision\s*=\s*(?:"([^"]+)"|None)', re.MULTILINE)


def shipped_head() -> str:
    """The one revision no other migration builds on."""
    revisions, parents = set(), set()
    for path in VERSIONS.glob("*.py"):
        text = path.read_text()
        revision, down = _REVISION.search(text), _DOWN.search(text)
        if revision:
            revisions.add(revision.group(1))
        if down and down.group(1):
            parents.add(down.group(1))
    (head,) = revisions - parents
    return head


def database_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
