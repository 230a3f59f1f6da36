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


def cmd_run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from bot_operator.runner import Operator
    from bot_operator.settings import OperatorSettings

    overrides = {k: v for k, v in {
        "namespace": args.namespace, "all_namespaces": args.all_namespaces or None, "user_id": args.user_id,
        "poll_interval": args.poll_interval, "database_url": args.database_url,
        "bots_namespace": args.bots_namespace, "resync_interval": args.resync_interval,
        "health_port": args.health_port, "identity": args.identity,
    }.items() if v is not None}
    try:
        settings = OperatorSettings(**overrides)
    except ValidationError as exc:
        for err in exc.errors():
            print(f"bot-operator: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", file=sys.stderr)
        return 2
    if settings.namespace and settings.all_namespaces:
        print("bot-operator: use --namespace or --all-namespaces, not both", file=sys.stderr)
        return 2
    return Operator(settings, kubeconfig=args.kubeconfig).run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot-operator",
        description="Runs TradingBot resources as bot pods and syncs them with the trading_bots table.",
    )
    parser.add_argument("--log-level", default=os.environ.get("BOTOPS_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (env BOTOPS_LOG_LEVEL)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator (leader election, reconcile, database sync)")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", help="watch one namespace (env BOTOPS_NAMESPACE)")
    scope.add_argument("--all-namespaces", action="store_true", help="watch all namespaces (env BOTOPS_ALL_NAMESPACES)")
    run.add_argument("--user-id", type=int, help="sync only this user's trading_bots rows (env BOTOPS_USER_ID)")
    run.add_argument("--poll-interval", type=float, help="seconds between database syncs (env BOTOPS_POLL_INTERVAL)")
    run.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL)")
    run.add_argument("--bots-namespace", help="namespace of database bots (env BOTOPS_BOTS_NAMESPACE, default)")
    run.add_argument("--resync-interval", type=float, help="seconds between full passes (env BOTOPS_RESYNC_INTERVAL)")
    run.add_argument("--health-port", type=int, help="metrics/healthz/readyz port (env BOTOPS_HEALTH_PORT, 8080)")
    run.add_argument("--identity", help="leader election identity (env BOTOPS_IDENTITY, default: hostname)")
    run.add_argument("--kubeconfig", help="kubeconfig outside a cluster (default: KUBECONFIG or in-cluster)")
    run.set_defaults(func=cmd_run)

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
    if args.command == "run":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    result: int = args.func(args)
    return result
