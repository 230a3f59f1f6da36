"""bot-operator: the controller's command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot_runtime.db.fleet import FleetControls
    from bot_runtime.db.repository import BotRepository

from bot_runtime.logs import add_log_format, configure_logging

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

    overrides = {
        k: v
        for k, v in {
            "namespace": args.namespace,
            "all_namespaces": args.all_namespaces or None,
            "user_id": args.user_id,
            "poll_interval": args.poll_interval,
            "database_url": args.database_url,
            "bots_namespace": args.bots_namespace,
            "resync_interval": args.resync_interval,
            "health_port": args.health_port,
            "identity": args.identity,
            "allowed_images": args.allowed_images,
            "shard_index": args.shard_index,
            "shard_count": args.shard_count,
            "webhook_port": args.webhook_port,
            "webhook_url": args.webhook_url,
        }.items()
        if v is not None
    }
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


def _scope(args: argparse.Namespace) -> tuple[str, str]:
    if args.all:
        return "all", ""
    if args.user_id is not None:
        return "user", str(args.user_id)
    if args.namespace:
        return "namespace", args.namespace
    return "bot", args.bot


@contextlib.contextmanager
def _fleet(args: argparse.Namespace) -> Iterator[tuple[BotRepository, FleetControls]]:
    from bot_runtime.db.engine import create_engine
    from bot_runtime.db.fleet import FleetControls
    from bot_runtime.db.repository import BotRepository

    engine = create_engine(_database_url(args))
    try:
        repo = BotRepository(engine)
        yield repo, FleetControls(repo)
    finally:
        engine.dispose()


def cmd_fleet(args: argparse.Namespace) -> int:
    from bot_operator import fleet_view

    with _fleet(args) as (repo, fleet):
        if args.fleet_command == "halt":
            return _halt(fleet, args)
        if args.fleet_command == "resume":
            scope, value = _scope(args)
            count = fleet.resume(scope, value, args.by)
            print(
                f"resumed {count} halt(s) of {scope} {value}".rstrip()
                if count
                else f"no active halt of {scope} {value}".rstrip()
            )
            return 0 if count else 1
        if args.fleet_command in ("cap", "uncap"):
            return _cap(repo, fleet, args)
        records: Any
        if args.fleet_command == "status":
            records = fleet_view.positions(repo, args.namespace, args.user_id)
            text = fleet_view.table(records, fleet_view.STATUS_COLUMNS, "no bots")
        else:
            records, text = fleet_view.fleet_controls(fleet), fleet_view.controls_text(fleet)
    print(fleet_view.dump(records) if args.output == "json" else text)
    return 0


def _halt(fleet: FleetControls, args: argparse.Namespace) -> int:
    scope, value = _scope(args)
    mode = "halted" if args.full_stop else "reducing"
    halt_id = fleet.halt(scope, value, args.reason, args.by, flatten=args.flatten, mode=mode)
    effect = (
        "no order is sent from now on (a full stop: stop-losses too)"
        if args.full_stop
        else "no order adds exposure from now on (exits and stop-losses still go)"
    )
    closing = "; positions are being closed now: `bot-operator fleet status` shows the progress"
    print(
        f"halt {halt_id} committed ({scope} {value or ''}".rstrip() + f"): {effect}" + (closing if args.flatten else "")
    )
    return 0


def _cap(repo: BotRepository, fleet: FleetControls, args: argparse.Namespace) -> int:
    if args.user_id is not None:
        scope, value = "user", str(args.user_id)
    else:
        namespace, _, name = args.account_of.partition("/")
        row = repo.get_bot_by_ref(namespace, name)
        if row is None or not row.account_fingerprint:
            print(
                f"bot-operator: {args.account_of} has no known exchange account (a live bot, once it has been "
                "reconciled)",
                file=sys.stderr,
            )
            return 2
        scope, value = "account", row.account_fingerprint
    if args.fleet_command == "cap":
        fleet.set_cap(scope, value, args.max_notional, args.by)
        print(f"cap of {scope} {value[:12]}: total notional at most {args.max_notional:g}")
    else:
        print(f"removed {fleet.remove_cap(scope, value)} cap(s)")
    return 0


def cmd_bots(args: argparse.Namespace) -> int:
    from bot_operator import fleet_view

    with _fleet(args) as (repo, fleet):
        records = fleet_view.bots(repo, fleet, args.namespace, args.user_id)
    print(
        fleet_view.dump(records)
        if args.output == "json"
        else fleet_view.table(records, fleet_view.BOT_COLUMNS, "no bots in the trading_bots table")
    )
    return 0


def cmd_bot(args: argparse.Namespace) -> int:
    from bot_runtime.api.rows import row_to_spec

    namespace, _, name = args.bot.partition("/")
    with _fleet(args) as (repo, fleet):
        row = repo.get_bot_by_ref(namespace, name)
        if row is None:
            print(f"bot-operator: no trading_bots row has external_ref {args.bot!r} (NAMESPACE/NAME)", file=sys.stderr)
            return 2
        spec, result = row_to_spec(row)
        if spec is None or spec.mode != "paper":
            why = "its row is invalid: " + "; ".join(result.errors) if spec is None else "it trades live"
            print(f"bot-operator: {args.bot} has no paper account to reset: {why}", file=sys.stderr)
            return 2
        holder = fleet.reset_paper_state(row.id, args.by)
    if holder is not None:
        print(
            f"bot-operator: {args.bot} is running (its lease is held by {holder}); nothing was changed. Suspend it "
            f"first: kubectl -n {namespace} patch tradingbot {name} --type merge -p "
            + """'{"spec":{"suspended":true}}', run this again, then set suspended back to false""",
            file=sys.stderr,
        )
        return 1
    print(f"{args.bot}: saved paper account forgotten; the next start begins from spec.broker.cash, no position")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot-operator",
        description="Runs TradingBot resources as bot pods and syncs them with the trading_bots table.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("BOTOPS_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (env BOTOPS_LOG_LEVEL)",
    )
    add_log_format(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator (leader election, reconcile, database sync)")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", help="watch one namespace (env BOTOPS_NAMESPACE)")
    scope.add_argument("--all-namespaces", action="store_true", help="watch all namespaces (env BOTOPS_ALL_NAMESPACES)")
    run.add_argument("--user-id", type=int, help="sync only this user's trading_bots rows (env BOTOPS_USER_ID)")
    run.add_argument("--poll-interval", type=float, help="seconds between database syncs (env BOTOPS_POLL_INTERVAL)")
    run.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL)")
    run.add_argument(
        "--allowed-images",
        help="comma-separated prefixes a spec.runtime.image must start with (env BOTOPS_ALLOWED_IMAGES; "
        "default: the runtime image's repository)",
    )
    run.add_argument("--bots-namespace", help="namespace of database bots (env BOTOPS_BOTS_NAMESPACE, default)")
    run.add_argument("--resync-interval", type=float, help="seconds between full passes (env BOTOPS_RESYNC_INTERVAL)")
    run.add_argument("--health-port", type=int, help="metrics/healthz/readyz port (env BOTOPS_HEALTH_PORT, 8080)")
    run.add_argument("--identity", help="leader election identity (env BOTOPS_IDENTITY, default: hostname)")
    run.add_argument("--shard-index", type=int, help="this operator's shard, 0-based (env BOTOPS_SHARD_INDEX, 0)")
    run.add_argument(
        "--shard-count", type=int, help="operators splitting the fleet, each its own leader (env BOTOPS_SHARD_COUNT, 1)"
    )
    run.add_argument(
        "--webhook-port", type=int, help="serve the validating webhook on this HTTPS port (env BOTOPS_WEBHOOK_PORT)"
    )
    run.add_argument(
        "--webhook-url",
        help="self-managed webhook (development): the URL the apiserver calls; the operator makes its certificate "
        "and the ValidatingWebhookConfiguration (env BOTOPS_WEBHOOK_URL)",
    )
    run.add_argument("--kubeconfig", help="kubeconfig outside a cluster (default: KUBECONFIG or in-cluster)")
    run.set_defaults(func=cmd_run)

    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL)")

    import getpass
    import socket

    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--by", default=f"{getpass.getuser()}@{socket.gethostname()}", help="who does it (recorded)")

    def targets(parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--all", action="store_true", help="every bot")
        group.add_argument("--user-id", type=int, help="the bots of one user")
        group.add_argument("--namespace", help="the bots of one namespace")
        group.add_argument("--bot", help="one bot, NAMESPACE/NAME")

    fleet = commands.add_parser("fleet", help="halt or resume trading, and exposure caps, across the fleet")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    halt = fleet_commands.add_parser(
        "halt", parents=[database, who], help="no order is sent once the halt is committed; runtimes wake at once"
    )
    targets(halt)
    halt.add_argument("--flatten", action="store_true", help="also close every open position, now")
    halt.add_argument(
        "--full-stop",
        action="store_true",
        help="halted instead of reducing: nothing is sent, not even exits and stop-losses (stops resting at the "
        "venue stay)",
    )
    halt.add_argument("--reason", required=True, help="why (shown in status and recorded)")
    resume = fleet_commands.add_parser("resume", parents=[database, who], help="lift the matching halts")
    targets(resume)
    cap = fleet_commands.add_parser(
        "cap", parents=[database, who], help="total notional allowed across a user's or an exchange account's bots"
    )
    cap_target = cap.add_mutually_exclusive_group(required=True)
    cap_target.add_argument("--user-id", type=int)
    cap_target.add_argument("--account-of", help="the exchange account of the live bot NAMESPACE/NAME")
    cap.add_argument("--max-notional", type=float, required=True, help="in quote currency")
    uncap = fleet_commands.add_parser("uncap", parents=[database, who], help="remove a cap")
    uncap_target = uncap.add_mutually_exclusive_group(required=True)
    uncap_target.add_argument("--user-id", type=int)
    uncap_target.add_argument("--account-of")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", choices=("table", "json"), default="table", help="json: for scripts")
    fleet_commands.add_parser("list", parents=[database, output], help="active halts and caps")
    status = fleet_commands.add_parser(
        "status", parents=[database, output], help="per bot: trading state, position, exposure, flatten progress"
    )
    status.add_argument("--namespace", help="only the bots of this namespace")
    status.add_argument("--user-id", type=int, help="only the bots of this user")
    fleet.set_defaults(func=cmd_fleet)

    listing = commands.add_parser(
        "bots", parents=[database, output], help="the fleet from the database: state, halts, caps, account claims"
    )
    listing.add_argument("--namespace", help="only the bots of this namespace")
    listing.add_argument("--user-id", type=int, help="only the bots of this user")
    listing.set_defaults(func=cmd_bots)
    bot = commands.add_parser("bot", help="one bot's own operations")
    bot_commands = bot.add_subparsers(dest="bot_command", metavar="ACTION", required=True)
    reset = bot_commands.add_parser(
        "reset-paper",
        parents=[database, who],
        help="start a suspended paper bot's account over from spec.broker.cash (no position, no PnL)",
    )
    reset.add_argument("bot", help="NAMESPACE/NAME")
    bot.set_defaults(func=cmd_bot)
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
    configure_logging(args.log_level, args.log_format)
    if args.command == "run":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    result: int = args.func(args)
    return result
