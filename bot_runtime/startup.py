"""The first steps of a run, in order: read the bot, reach the database, take the lease, open the run.

Each returns what the next needs and registers its clean-up; together they build the RunContext.
"""

from __future__ import annotations

import logging
import time

from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.api.validation import validate_spec
from bot_runtime.context import RunContext
from bot_runtime.control import (
    EXIT_FATAL,
    EXIT_LEASE_HELD,
    EXIT_LEASE_LOST,
    EXIT_OK,
    Outcome,
    RunControl,
    RuntimeFailure,
)
from bot_runtime.db.engine import create_engine
from bot_runtime.db.fleet import BotRef, FleetControls
from bot_runtime.db.repository import BotRepository
from bot_runtime.health import RuntimeMetrics
from bot_runtime.journal import Journal
from bot_runtime.lease import LeaseGuard
from bot_runtime.resource import BotResource, api_client
from bot_runtime.settings import RuntimeSettings
from bot_runtime.shutdown import Shutdown
from bot_runtime.strategies import strategy_handler

log = logging.getLogger("bot_runtime")

MAX_UNSAVED = 500  # records kept in status.runtime.unsaved at most (an outage's worth; etcd objects are small)


def open_run(
    settings: RuntimeSettings, holder: str, control: RunControl, metrics: RuntimeMetrics, shutdown: Shutdown
) -> RunContext:
    resource, spec, generation, labelled_id, unsaved = load_bot(settings)
    repo = BotRepository(create_engine(settings.database_url, connect_args={"connect_timeout": 5}))
    bot_id = labelled_id if labelled_id is not None else find_row(repo, settings)
    lease = acquire_lease(repo, bot_id, holder, settings, control)
    metrics.labels(metrics.lease).set(1)
    shutdown.on_stop("releasing the lease", lambda outcome: release_lease(repo, lease, outcome))

    run_id = repo.start_run(lease.lease, pod=settings.pod_name, image=settings.image, generation=generation)
    shutdown.on_stop("closing the run", lambda outcome: close_run(repo, bot_id, run_id, outcome))
    row = repo.get_bot(bot_id)
    spool = settings.spool_dir / f"bot-{bot_id}.jsonl"
    journal = Journal(repo, bot_id, run_id, spec.market.symbol, spool)
    bot = BotRef(bot_id, row.user_id if row is not None else None, settings.namespace, settings.bot_name)
    ctx = RunContext(
        settings,
        holder,
        resource,
        spec,
        generation,
        bot,
        repo,
        FleetControls(repo),
        lease,
        run_id,
        journal,
        metrics,
        row.trade_count if row is not None else 0,
    )
    shutdown.on_stop("flushing the journal", lambda outcome: flush_journal(ctx, outcome))
    take_unsaved(ctx, unsaved)
    repo.set_status(bot_id, "starting")
    journal.event(
        "started",
        f"started {spec.strategy.type} on {spec.market.exchange} {spec.market.symbol} "
        f"{spec.market.timeframe} ({spec.mode})",
    )
    return ctx


def load_bot(settings: RuntimeSettings) -> tuple[BotResource, TradingBotSpec, int | None, int | None, list[str]]:
    """The bot's own TradingBot: its spec (validated as the operator does), generation, row id, and the
    records an earlier runtime stopped with before the database took them."""
    resource = BotResource(api_client(settings.kubeconfig), settings.namespace, settings.bot_name)
    body = resource.read()
    strategy_handler.load_plugins()  # plug-in classes: their schemas judge the parameters below
    paths = [p for p in settings.strategy_paths.split(":") if p]
    if paths:
        log.info(
            "strategies from %s: %s", settings.strategy_paths, ", ".join(strategy_handler.discover_strategies(paths))
        )
    spec, result = validate_spec(body.get("spec") or {})
    for warning in result.warnings:
        log.warning("spec: %s", warning)
    if spec is None:
        raise RuntimeFailure(EXIT_FATAL, "invalid spec: " + "; ".join(result.errors))
    labels = body["metadata"].get("labels") or {}
    status = body.get("status") or {}
    raw_id = labels.get(c.LABEL_BOT_ID) or status.get("botId")
    unsaved = list((status.get("runtime") or {}).get("unsaved") or [])
    return resource, spec, body["metadata"].get("generation"), int(raw_id) if raw_id else None, unsaved


def find_row(repo: BotRepository, settings: RuntimeSettings) -> int:
    row = repo.get_bot_by_ref(settings.namespace, settings.bot_name)
    if row is None:
        raise RuntimeFailure(
            EXIT_FATAL,
            f"TradingBot {settings.namespace}/{settings.bot_name} has no trading_bots "
            "row yet (the operator registers it)",
        )
    return row.id


def acquire_lease(
    repo: BotRepository, bot_id: int, holder: str, settings: RuntimeSettings, control: RunControl
) -> LeaseGuard:
    deadline = time.monotonic() + settings.lease_wait_seconds
    lease = repo.acquire_lease(bot_id, holder, settings.lease_ttl_seconds)
    while lease is None and time.monotonic() < deadline and not control.stopping:
        time.sleep(1.0)  # a crashed runtime's lease frees at its expiry (or when the operator frees it)
        lease = repo.acquire_lease(bot_id, holder, settings.lease_ttl_seconds)
    if lease is None:
        other, until = repo.lease_holder(bot_id)
        raise RuntimeFailure(
            EXIT_LEASE_HELD,
            f"bot {bot_id} is already run by {other} (lease until {until}); "
            "refusing to trade: at most one runtime per bot",
        )
    log.info("acquired the lease of bot %s (fencing token %s)", bot_id, lease.token)
    return LeaseGuard(repo, lease, settings.lease_ttl_seconds)


def release_lease(repo: BotRepository, lease: LeaseGuard, outcome: Outcome) -> None:
    if outcome.code != EXIT_LEASE_LOST:  # a lost lease belongs to the other runtime now
        repo.release_lease(lease.lease)


def close_run(repo: BotRepository, bot_id: int, run_id: int, outcome: Outcome) -> None:
    repo.finish_run(run_id, outcome.reason)
    repo.set_status(bot_id, outcome.db_status, None if outcome.code == EXIT_OK else outcome.reason)


def flush_journal(ctx: RunContext, outcome: Outcome) -> None:
    """Everything recorded reaches the database; what cannot (an outage) is kept in the bot's status, where
    the next runtime finds it (the spool goes with the pod)."""
    ctx.journal.event("stopped", outcome.reason, "info" if outcome.code == EXIT_OK else "error")
    if ctx.journal.flush(ctx.settings.stop_timeout_seconds):
        return
    lines = ctx.journal.spool_lines()[-MAX_UNSAVED:]
    log.error("%d records could not reach the database; kept in status.runtime.unsaved", len(lines))
    try:
        ctx.resource.patch_runtime_status({"unsaved": lines})
    except Exception as exc:
        log.error("records left in the spool %s (status patch failed: %s)", ctx.journal.spool_path, exc)


def take_unsaved(ctx: RunContext, unsaved: list[str]) -> None:
    """The records an earlier runtime of the bot stopped with: written first, then cleared from status."""
    if unsaved:
        ctx.journal.adopt(unsaved)
        ctx.resource.patch_runtime_status({"unsaved": None})
