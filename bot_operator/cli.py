"""bot-operator: the controller's command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger("bot_operator")


def _database_url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("bot-operator: no database: pass --database-url or set DATABASE_URL")
    return str(url)


def cmd_db(args: argparse.Namespace) -> int:
    from bot_runtime.db import migrate

    url = _database_url(args)
    if args.db_command == "upgrade":
        migrate.upgrade(url, args.revision)
    elif args.db_command == "downgrade":
        migrate.downgrade(url, args.revision)
    print(f"database at revision {migrate.current_revision(url) or '(empty)'} (head: {migrate.head_revision()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot-operator",
        description="Runs TradingBot resources as bot pods and syncs them with the trading_bots table.",
    )
    parser.add_argument("--log-level", default=os.environ.get("BOTOPS_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (env BOTOPS_LOG_LEVEL)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL)")
    db = commands.add_parser("db", help="database schema migrations (Alembic)")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_commands.add_parser("upgrade", parents=[database], help="apply migrations up to REVISION (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    down = db_commands.add_parser("downgrade", parents=[database], help="revert migrations to REVISION (base: empty)")
    down.add_argument("revision")
    db_commands.add_parser("current", parents=[database], help="print the database's revision")
    db.set_defaults(func=cmd_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    result: int = args.func(args)
    return result
