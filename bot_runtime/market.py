"""Where a run's market data comes from (and, live, where its orders go): the one ccxt client of the
run, with its exchange account claimed, and the live feed Cerebro reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot_runtime.context import RunContext
from bot_runtime.control import EXIT_FATAL, RuntimeFailure
from bot_runtime.db.fleet import fingerprint
from bot_runtime.exchange import Credentials, Pacer, build_exchange
from bot_runtime.feeds import DataFeedFactory, QueueFeed
from bot_runtime.lots import LotRules
from bot_runtime.venues import VenueProfile, profile


@dataclass(frozen=True)
class Market:
    exchange: Any  # the ccxt client; None for synthetic and CSV feeds in paper mode
    feed: QueueFeed
    account: str | None  # live: the keyed fingerprint of the exchange account
    venue: VenueProfile
    rules: LotRules  # the market's lot step, minimum quantity and order value (none without a client)
    pacer: Pacer  # the venue's rate-limit cool-down, shared by every call of the run


def open_market(ctx: RunContext) -> Market:
    spec, exchange, account, rules, pacer = ctx.spec, None, None, LotRules(), Pacer()
    if spec.market.feed == "ccxt" or spec.mode == "live":
        credentials = Credentials.from_env() if spec.mode == "live" else None
        if spec.mode == "live" and credentials is None:
            raise RuntimeFailure(
                EXIT_FATAL,
                "live mode needs BOTOPS_EXCHANGE_API_KEY and BOTOPS_EXCHANGE_SECRET "
                "(from spec.broker.credentialsSecretRef)",
            )
        if credentials is not None:
            account = claim_account(ctx, credentials)
        exchange = connect(spec.market.exchange, spec.market.symbol, credentials, spec.market.sandbox)
        rules = LotRules.of_market(exchange.market(spec.market.symbol), exchange.precisionMode)
    factory = DataFeedFactory(exchange=exchange, pacer=pacer, replay_pace=ctx.settings.replay_pace_seconds)
    feed = factory.live(spec.market, default_seed=ctx.bot_id)
    return Market(exchange, feed, account, profile(spec.market.exchange), rules, pacer)


def claim_account(ctx: RunContext, credentials: Credentials) -> str:
    """One account trades one symbol through one bot (unless both allow sharing): checked in the
    database, so it holds even with the operator down."""
    account = fingerprint(ctx.fleet.fingerprint_key(), ctx.spec.market.exchange, credentials.api_key)
    conflict = ctx.fleet.claim_account(ctx.bot_id, account, ctx.spec.market.symbol, ctx.spec.allow_shared_account)
    if conflict:
        raise RuntimeFailure(EXIT_FATAL, f"refusing to trade: {conflict}")
    return account


def connect(exchange_id: str, symbol: str, credentials: Credentials | None, sandbox: bool) -> Any:
    exchange = build_exchange(exchange_id, credentials=credentials, sandbox=sandbox)
    try:
        if credentials is not None:  # signed calls carry a timestamp the venue checks against its own clock
            exchange.load_time_difference()
        exchange.load_markets()
    except Exception as exc:
        raise RuntimeFailure(EXIT_FATAL, f"cannot load {exchange_id} markets: {type(exc).__name__}: {exc}") from exc
    if symbol not in exchange.markets:
        raise RuntimeFailure(EXIT_FATAL, f"{exchange_id} has no market {symbol}")
    return exchange
