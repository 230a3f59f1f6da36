"""bot-runtime: run one TradingBot (the bot pod's command), backtest a strategy, list strategies."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bot_runtime import ccxt_one_venue
from bot_runtime.logs import add_log_format, configure_logging

log = logging.getLogger("bot_runtime")


def cmd_run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from bot_runtime.instance import StrategyInstance
    from bot_runtime.settings import RuntimeSettings

    overrides = {
        k: v
        for k, v in {
            "bot_name": args.bot,
            "namespace": args.namespace,
            "database_url": args.database_url,
            "kubeconfig": args.kubeconfig,
            "health_port": args.health_port,
        }.items()
        if v is not None
    }
    try:
        settings = RuntimeSettings(**overrides)
    except ValidationError as exc:
        missing = ", ".join(str(e["loc"][0]) for e in exc.errors())
        print(
            f"bot-runtime: missing or invalid settings: {missing} (flags --bot/--database-url or env "
            "BOTOPS_BOT_NAME/DATABASE_URL)",
            file=sys.stderr,
        )
        return 2
    return StrategyInstance(settings).start()


class SpecFileError(ValueError):
    pass


def spec_from_file(path: str) -> dict[str, Any]:
    """The TradingBot spec in a manifest file, which may hold other documents (a Secret, a second bot...);
    a file with a bare spec works too."""
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise SpecFileError(f"{path}: cannot read it as YAML: {exc}") from exc
    bots = [d for d in documents if isinstance(d, dict) and d.get("kind") == "TradingBot"]
    if len(bots) > 1:
        names = ", ".join(str((b.get("metadata") or {}).get("name")) for b in bots)
        raise SpecFileError(f"{path}: holds {len(bots)} TradingBots ({names}); put the one to backtest in a file")
    if bots:
        return dict(bots[0].get("spec") or {})
    if len(documents) == 1 and isinstance(documents[0], dict) and "kind" not in documents[0]:
        return dict(documents[0].get("spec", documents[0]))
    raise SpecFileError(f"{path}: no TradingBot in it (kinds: {', '.join(str(d.get('kind')) for d in documents)})")


def _backtest_spec(args: argparse.Namespace) -> dict[str, Any]:
    if args.spec:
        spec = spec_from_file(args.spec)
    else:
        spec = {
            "strategy": {"type": args.strategy, "params": json.loads(args.params or "{}")},
            "market": {"exchange": "binance", "symbol": args.symbol},
        }
    market = spec.setdefault("market", {})
    market["feed"] = "csv" if args.csv else "synthetic"
    if args.csv:
        market["csvPath"] = args.csv
    if args.seed is not None:
        market["seed"] = args.seed
    if args.timeframe:
        market["timeframe"] = args.timeframe
    spec["mode"] = "paper"
    if args.cash is not None:
        spec.setdefault("broker", {})["cash"] = args.cash
    if args.fill:
        spec.setdefault("broker", {})["fill"] = {"next-open": "nextOpen", "close": "close"}[args.fill]
    return spec


def _history_feed(spec: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """The downloaded candles of the spec's venue, symbol and timeframe within --from/--to, and the market's lot
    rules saved with them."""
    from bot_runtime.feeds.base import ListFeed
    from bot_runtime.history import DEFAULT_CACHE, cached_series

    market = spec.market
    start, end = (_utc(args.start) if args.start else None), (_utc(args.end) if args.end else None)
    bars, rules, path = cached_series(
        args.cache or DEFAULT_CACHE, market.exchange, market.symbol, market.timeframe, start, end
    )
    print(f"history: {len(bars)} candles from {path}")
    return ListFeed(bars=bars), rules


def _utc(text: str) -> datetime:
    from bot_runtime.api.backtest_resource import parse_time

    return parse_time(text, "--from/--to")


def cmd_data(args: argparse.Namespace) -> int:
    from bot_runtime.exchange import build_exchange
    from bot_runtime.feeds import timeframe_ms
    from bot_runtime.history import DEFAULT_CACHE, download

    exchange = build_exchange(args.exchange)
    step = timeframe_ms(args.timeframe)
    failed = 0
    for symbol in [s.strip() for s in args.symbols.split(",") if s.strip()]:
        try:
            result = download(
                exchange, symbol, args.timeframe, _utc(args.start), _utc(args.end), args.cache or DEFAULT_CACHE
            )
        except Exception as exc:  # one symbol's failure is said; the others are still fetched
            print(f"{symbol}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(result.describe(step))
    return 1 if failed else 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from bot_runtime.api.validation import validate_spec
    from bot_runtime.backtest import run_backtest

    try:
        raw = _backtest_spec(args)
    except SpecFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec, result = validate_spec(raw)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if spec is None:
        for error in result.errors:
            print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{spec.strategy.type} on {spec.market.feed} data ({spec.market.symbol} {spec.market.timeframe}, "
        f"cash {spec.broker.cash:g}, commission {spec.broker.commission:g})"
    )
    feed, rules = None, None
    if args.history:
        try:
            feed, rules = _history_feed(spec, args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    report = run_backtest(spec, bars=args.bars, feed=feed, rules=rules, progress=progress)
    print(report.summary())
    return _write_outputs(report, spec, args)


def _write_outputs(report: Any, spec: Any, args: argparse.Namespace) -> int:
    """--chart, --export and --results."""
    if args.chart:
        from bot_runtime.charts import write_chart

        try:
            write_chart(
                report, Path(args.chart), f"{spec.strategy.type} on {spec.market.symbol} {spec.market.timeframe}"
            )
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"chart written to {args.chart} (equity and drawdown)")
    if args.export:
        path = Path(args.export)
        path.write_text(report.trades_json() if path.suffix == ".json" else report.trades_csv())
        print(f"trades written to {path} ({len(report.trades)})")
    if args.results:
        Path(args.results).write_text(report.to_json())
        print(f"results written to {args.results} (metrics, monthly returns, trades, refusals, equity curve)")
    return 0


def cmd_backtest_job(args: argparse.Namespace) -> int:
    from bot_runtime.api.backtest_resource import JOB_ENV
    from bot_runtime.backtest_job import run_job
    from bot_runtime.history import DEFAULT_CACHE
    from bot_runtime.settings import secret_value

    database_url = args.database_url or secret_value("DATABASE_URL")
    if not database_url:
        print("backtest failed: no database (--database-url, DATABASE_URL or DATABASE_URL_FILE)", file=sys.stderr)
        return 2
    try:
        return run_job(os.environ.get(JOB_ENV), database_url, args.cache or DEFAULT_CACHE)
    except Exception as exc:  # the pod's last line is its termination message: one sentence, no traceback
        log.debug("backtest job failed", exc_info=True)
        print(f"backtest failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def cmd_strategies(args: argparse.Namespace) -> int:
    from bot_runtime.strategies import entry_logics, exit_logics, get_registered_strategies

    def describe(params_model: Any) -> str:
        fields = params_model.model_fields
        return (
            ", ".join(
                f"{name}={field.default!r}" if not callable(field.default_factory) else name
                for name, field in fields.items()
            )
            or "(no parameters)"
        )

    print("Strategies (spec.strategy.type):")
    for name, klass in get_registered_strategies().items():
        print(f"  {name:28} {klass.description}\n  {'':28} params: {describe(klass.Params)}")
    for title, registry in (
        ("Entry logic mixins (entry_logic)", entry_logics),
        ("Exit logic mixins (exit_logic)", exit_logics),
    ):
        print(f"{title}:")
        for name, logic in registry:
            print(f"  {name:28} {logic.description}\n  {'':28} params: {describe(logic.Params)}")
    return 0


CACHE_ARGUMENT: dict[str, Any] = {
    "type": Path,
    "help": "the history cache (env BOTOPS_OHLCV_CACHE, default ~/.cache/tradingbot-operator/ohlcv)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot-runtime",
        description="Runs one TradingBot's strategy (StrategyInstance), backtests a strategy, lists strategies.",
    )
    parser.add_argument("--log-level", default=os.environ.get("BOTOPS_LOG_LEVEL", "INFO"))
    add_log_format(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a TradingBot (what the bot pod does)")
    run.add_argument("--bot", help="TradingBot name (env BOTOPS_BOT_NAME)")
    run.add_argument("--namespace", help="its namespace (env BOTOPS_NAMESPACE, default: default)")
    run.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL)")
    run.add_argument("--kubeconfig", help="kubeconfig outside a cluster (env BOTOPS_KUBECONFIG or KUBECONFIG)")
    run.add_argument("--health-port", type=int, help="metrics/healthz/readyz port (env BOTOPS_HEALTH_PORT, 8080)")
    run.set_defaults(func=cmd_run)

    backtest = commands.add_parser("backtest", help="run a strategy over synthetic or CSV data and summarise")
    source = backtest.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="a TradingBot manifest (or its spec) in YAML")
    source.add_argument("--strategy", help="a registered strategy name")
    backtest.add_argument("--params", help="strategy params as JSON (with --strategy)")
    backtest.add_argument("--symbol", default="BTC/USDT")
    backtest.add_argument("--csv", help="replay this CSV (timestamp,open,high,low,close,volume) instead")
    backtest.add_argument("--bars", type=int, default=10_000, help="synthetic bars (default 10000)")
    backtest.add_argument("--seed", type=int)
    backtest.add_argument("--timeframe")
    backtest.add_argument("--cash", type=float)
    backtest.add_argument(
        "--fill",
        choices=("next-open", "close"),
        help="market orders fill at the next bar's open (default, what live orders get) or at the signal bar's "
        "close (cheat-on-close, to compare)",
    )
    backtest.add_argument(
        "--history", action="store_true", help="replay downloaded candles (bot-runtime data download)"
    )
    backtest.add_argument("--from", dest="start", help="with --history: first candle, ISO date or time (UTC)")
    backtest.add_argument("--to", dest="end", help="with --history: last candle, ISO date or time (UTC)")
    backtest.add_argument("--cache", **CACHE_ARGUMENT)
    backtest.add_argument("--export", help="write the trade list to FILE (.csv, or .json)")
    backtest.add_argument("--results", help="write the whole result as JSON to FILE")
    backtest.add_argument("--chart", help="draw equity and drawdown to FILE (.png, .svg or .pdf; needs matplotlib)")
    backtest.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="a progress bar on stderr (default: when stderr is a terminal)",
    )
    backtest.set_defaults(func=cmd_backtest)

    job = commands.add_parser("backtest-job", help="run a Backtest resource's job (what its pod does)")
    job.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL)")
    job.add_argument("--cache", **CACHE_ARGUMENT)
    job.set_defaults(func=cmd_backtest_job)

    data = commands.add_parser("data", help="market history for backtests")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    fetch = data_commands.add_parser(
        "download", help="fetch OHLCV through ccxt into the local cache (resumable; gaps reported)"
    )
    fetch.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
    fetch.add_argument("--symbols", required=True, help="comma-separated, e.g. BTC/USDT,ETH/USDT")
    fetch.add_argument("--timeframe", default="1h")
    fetch.add_argument("--from", dest="start", required=True, help="ISO date or time (UTC)")
    fetch.add_argument("--to", dest="end", required=True, help="ISO date or time (UTC), exclusive")
    fetch.add_argument("--cache", **CACHE_ARGUMENT)
    data.set_defaults(func=cmd_data)

    strategies = commands.add_parser("strategies", help="list strategies and logic mixins with their parameters")
    strategies.set_defaults(func=cmd_strategies)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a process of its own (the console script), not a caller's: load ccxt one venue at a time
        ccxt_one_venue.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format, sys.stdout)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = args.func(args)
    return code
