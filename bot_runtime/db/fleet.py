"""Fleet safety in the database: halts, exposure caps, exchange-account fingerprints, saved trading
state, and the one check every order passes (lease + halts + caps, in one round trip).

Halts and caps live in PostgreSQL, so they hold whatever happens to pods or to the operator, and a
halt reaches runtimes at once through NOTIFY (the trigger on fleet_halts).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bot_runtime.db.repository import BotRepository, Lease, held_by
from bot_runtime.db.schema import (
    BotState,
    ExposureCap,
    ExposureReservation,
    FleetHalt,
    InstallationKey,
    TradingBot,
)

FINGERPRINT_KEY = "account_fingerprint"


@dataclass(frozen=True)
class BotRef:
    """Who a bot is, for halts and caps: its row, user, namespace and name."""

    bot_id: int
    user_id: int | None
    namespace: str
    name: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Halt:
    id: int
    scope: str
    value: str
    flatten: bool
    reason: str
    created_by: str
    created_at: datetime
    mode: str = "reducing"  # reducing: exits and stops still fire; halted: nothing goes

    def applies_to(self, bot: BotRef) -> bool:
        """In Python what `_applies_to` asks the database (a listing of every bot reads the halts once)."""
        return (self.scope, self.value) in (
            ("all", self.value),
            ("user", str(bot.user_id)),
            ("namespace", bot.namespace),
            ("bot", bot.ref),
        )

    def describe(self) -> str:
        where = "all bots" if self.scope == "all" else f"{self.scope} {self.value}"
        stop = ", full stop" if self.mode == "halted" else ""
        return f"halted by {self.created_by} at {self.created_at:%Y-%m-%d %H:%M:%S}Z ({where}{stop}): {self.reason}"


@dataclass(frozen=True)
class SavedState:
    cash: float
    position: float
    entry_price: float
    entry_time: datetime | None
    high_since_entry: float
    realized_pnl: float
    day: date | None
    day_start_equity: float | None
    baseline_equity: float
    daily_halt_reason: str | None = None


def fingerprint(key: str, exchange: str, api_key: str) -> str:
    """A keyed fingerprint of an exchange account: comparable, never reversible to the API key."""
    return hmac.new(key.encode(), f"{exchange}:{api_key}".encode(), hashlib.sha256).hexdigest()[:32]


def _halt(row: FleetHalt) -> Halt:
    return Halt(row.id, row.scope, row.value, row.flatten, row.reason, row.created_by, row.created_at, row.mode)


def _applies_to(bot: BotRef) -> Any:
    """The halts of a bot (Halt.applies_to is the same rule in Python)."""
    return sa.or_(
        FleetHalt.scope == "all",
        sa.and_(FleetHalt.scope == "user", FleetHalt.value == str(bot.user_id)),
        sa.and_(FleetHalt.scope == "namespace", FleetHalt.value == bot.namespace),
        sa.and_(FleetHalt.scope == "bot", FleetHalt.value == bot.ref),
    )


class FleetControls:
    def __init__(self, repo: BotRepository) -> None:
        self.repo = repo

    # ------------------------------------------------------------------------------------ halts

    def halt(self, scope: str, value: str, reason: str, by: str, flatten: bool = False, mode: str = "reducing") -> int:
        with self.repo.session() as s:
            row = FleetHalt(scope=scope, value=value, reason=reason, created_by=by, flatten=flatten, mode=mode)
            s.add(row)
            s.flush()
            return int(row.id)

    def resume(self, scope: str, value: str, by: str) -> int:
        with self.repo.session() as s:
            result = s.execute(
                sa.update(FleetHalt)
                .where(FleetHalt.scope == scope, FleetHalt.value == value, FleetHalt.resumed_at.is_(None))
                .values(resumed_at=sa.func.now(), resumed_by=by)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def active_halts(self, bot: BotRef | None = None) -> list[Halt]:
        query = sa.select(FleetHalt).where(FleetHalt.resumed_at.is_(None)).order_by(FleetHalt.id)
        if bot is not None:
            query = query.where(_applies_to(bot))
        with self.repo.session() as s:
            return [_halt(r) for r in s.scalars(query)]

    # ------------------------------------------------------------------------------------- caps

    def set_cap(self, scope: str, value: str, max_notional: float, by: str) -> None:
        stmt = pg_insert(ExposureCap).values(scope=scope, value=value, max_notional=max_notional, created_by=by)
        stmt = stmt.on_conflict_do_update(
            constraint="uq_exposure_caps_scope_value", set_={"max_notional": max_notional, "created_by": by}
        )
        with self.repo.session() as s:
            s.execute(stmt)

    def remove_cap(self, scope: str, value: str) -> int:
        with self.repo.session() as s:
            result = s.execute(sa.delete(ExposureCap).where(ExposureCap.scope == scope, ExposureCap.value == value))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def caps(self) -> list[ExposureCap]:
        with self.repo.session() as s:
            return list(s.scalars(sa.select(ExposureCap).order_by(ExposureCap.scope, ExposureCap.value)))

    # --------------------------------------------------------------------------------- accounts

    def fingerprint_key(self) -> str:
        with self.repo.session() as s:
            key = s.scalar(sa.select(InstallationKey.value).where(InstallationKey.name == FINGERPRINT_KEY))
        if key is None:
            raise RuntimeError("no account fingerprint key: run 'bot-operator db upgrade'")
        return str(key)

    def claim_account(self, bot_id: int, account: str, symbol: str, allow_shared: bool) -> str | None:
        """Record that this bot trades `symbol` on `account`; return why it may not (naming the
        other bot), or None. Both bots must allow sharing for two to trade one market of one account."""
        with self.repo.session() as s:
            s.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"account:{account}"})
            # a function of the database (migration 0006): a bot's own role sees no other bot's row
            who = s.scalar(
                sa.text("SELECT botops_account_conflict(:bot, :account, :symbol, :shared)"),
                {"bot": bot_id, "account": account, "symbol": symbol, "shared": allow_shared},
            )
            if who:
                return (
                    f"spec.broker.credentialsSecretRef: this exchange account already trades {symbol} through "
                    f"bot {who}; one account trades one symbol through one bot unless both set "
                    "spec.allowSharedAccount: true"
                )
            s.execute(
                sa.update(TradingBot)  # written once, not at every periodic reconcile
                .where(TradingBot.id == bot_id, TradingBot.account_fingerprint.is_distinct_from(account))
                .values(account_fingerprint=account)
            )
        return None

    def release_account(self, bot_id: int) -> None:
        with self.repo.session() as s:
            s.execute(sa.update(TradingBot).where(TradingBot.id == bot_id).values(account_fingerprint=None))

    # ------------------------------------------------------------------------------ order check

    def check_order(
        self,
        lease: Lease,
        bot: BotRef,
        account: str | None,
        notional_after: float,
        increases_exposure: bool,
        reserve: tuple[str, float] | None = None,
    ) -> tuple[bool, list[Halt], str | None]:
        """One round trip before an order: (lease held, active halts, cap refusal or None). An order that
        adds exposure reserves its room (`reserve`: client order id, notional) in the same transaction, under
        a lock per cap, so orders checked at the same time see each other."""
        with self.repo.session() as s:
            held = s.execute(sa.select(TradingBot.id).where(*held_by(lease, unexpired=True))).first()
            halts = [
                _halt(r)
                for r in s.scalars(sa.select(FleetHalt).where(FleetHalt.resumed_at.is_(None), _applies_to(bot)))
            ]
            refusal = None
            if increases_exposure and held is not None:
                refusal = self._cap_refusal(s, bot, account, notional_after, reserve[0] if reserve else None)
                if refusal is None and reserve is not None:
                    s.execute(
                        pg_insert(ExposureReservation)
                        .values(bot_id=bot.bot_id, client_order_id=reserve[0], notional=reserve[1])
                        .on_conflict_do_nothing(constraint="uq_exposure_reservations_order")
                    )
        return held is not None, halts, refusal

    def _cap_refusal(
        self, s: Any, bot: BotRef, account: str | None, notional_after: float, order: str | None
    ) -> str | None:
        scopes = [("user", str(bot.user_id))] if bot.user_id is not None else []
        if account:
            scopes.append(("account", account))
        for scope, value in scopes:
            cap = s.scalar(
                sa.select(ExposureCap.max_notional).where(ExposureCap.scope == scope, ExposureCap.value == value)
            )
            if cap is None:
                continue
            s.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"cap:{scope}:{value}"})
            # what the cap's other members hold and reserve: a function of the database (migration 0006), as a
            # bot's own role sees no other bot's row
            others, reserved = s.execute(
                sa.text("SELECT others, reserved FROM botops_cap_usage(:bot, :scope, :value, :order)"),
                {"bot": bot.bot_id, "scope": scope, "value": value, "order": order},
            ).one()
            if others + reserved + notional_after > cap:
                label = f"user {value}" if scope == "user" else "this exchange account"
                return (
                    f"exposure cap of {label}: {others:.2f} held and {reserved:.2f} reserved by open orders + "
                    f"{notional_after:.2f} after this order > {cap:.2f}"
                )
        return None

    def release_reservation(self, bot_id: int, client_order_id: str) -> None:
        with self.repo.session() as s:
            s.execute(
                sa.delete(ExposureReservation).where(
                    ExposureReservation.bot_id == bot_id, ExposureReservation.client_order_id == client_order_id
                )
            )

    def write_exposure(self, lease: Lease, exposure: float, filled_order: str | None = None) -> None:
        """The bot's exposure after a fill, at once (not at the next heartbeat), its order's reservation
        released in the same transaction."""
        with self.repo.session() as s:
            s.execute(sa.update(TradingBot).where(*held_by(lease)).values(exposure=exposure))
            if filled_order is not None:
                s.execute(
                    sa.delete(ExposureReservation).where(
                        ExposureReservation.bot_id == lease.bot_id,
                        ExposureReservation.client_order_id == filled_order,
                    )
                )

    # ---------------------------------------------------------------------------- trading state

    def save_state(self, bot_id: int, lease_token: int, state: SavedState) -> None:
        values = {**state.__dict__, "lease_token": lease_token}
        stmt = pg_insert(BotState).values(bot_id=bot_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[BotState.bot_id],
            set_={**values, "updated_at": sa.func.now()},
            where=BotState.lease_token <= lease_token,
        )  # fenced: never older
        with self.repo.session() as s:
            s.execute(stmt)

    def reset_paper_state(self, bot_id: int, by: str) -> str | None:
        """Forget a paper bot's saved account, so its next runtime starts from its spec.broker.cash: no position,
        no profit and loss. Done under the bot's lease, so no runtime trades meanwhile (a paper account only: a
        live bot's state is the exchange's). Returns who holds the lease when a runtime does (nothing is changed
        then), else None."""
        holder = f"reset-paper/{by}"[:253]
        lease = self.repo.acquire_lease(bot_id, holder, ttl_seconds=60)
        if lease is None:
            row = self.repo.get_bot(bot_id)
            return str(row.lease_holder) if row else "another runtime"
        try:
            with self.repo.session() as s:
                s.execute(sa.delete(BotState).where(BotState.bot_id == bot_id))
            self.repo.record_event(bot_id, "operator", "paper_reset", f"paper account started over by {by}")
        finally:
            self.repo.release_lease(lease)
        return None

    def load_state(self, bot_id: int) -> SavedState | None:
        with self.repo.session() as s:
            row = s.get(BotState, bot_id)
        if row is None:
            return None
        return SavedState(
            row.cash,
            row.position,
            row.entry_price,
            row.entry_time,
            row.high_since_entry,
            row.realized_pnl,
            row.day,
            row.day_start_equity,
            row.baseline_equity,
            row.daily_halt_reason,
        )
