"""DB -> cluster: make the database-sourced TradingBots equal to the valid, enabled trading_bots rows.

`plan_sync` is pure (desired rows and existing resources in, creates/updates/deletes/conflicts out);
the Syncer loads, plans and applies. A full pass runs every --poll-interval seconds; between passes the
trigger's NOTIFY names the changed row, and only that row is loaded and applied (a burst of changes is one
full pass). An unchanged fleet plans nothing, so it costs no API writes. Writes go out in parallel, at most
sync_workers at once. Each row is loaded and applied on its own: a bad row or a refused write marks that
row (status error, an event) and the rest of the fleet, disables included, still happens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
from kubernetes.client.exceptions import ApiException

from bot_operator.builders.names import bot_labels
from bot_operator.kube import Cluster, api_message
from bot_operator.metrics import OperatorMetrics
from bot_operator.settings import OperatorSettings
from bot_operator.work_queue import BotCache
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBot, TradingBotSpec
from bot_runtime.api.rows import row_configuration, validate_row
from bot_runtime.db.engine import DB_ERRORS, libpq_url
from bot_runtime.db.repository import BotRepository
from bot_runtime.db.schema import NOTIFY_CHANNEL
from bot_runtime.db.schema import TradingBot as BotRow

log = logging.getLogger("bot_operator.sync")

ANNOTATION_ROW_HASH = "botops.io/row-hash"
INVALID_PREFIX = "invalid configuration: "
CONFLICT_PREFIX = "sync conflict: "  # cleared by the sync itself once the conflict is gone
INCREMENTAL_LIMIT = 32  # more rows changed at once than this: one full pass is cheaper than a lookup per row
NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a DNS-1123 label: also a valid label value


def resource_name(row: BotRow) -> str:
    """A stable, DNS-safe name: the row's name slugged, plus its id (kept in external_ref once used)."""
    if row.external_ref:
        return row.external_ref.split("/", 1)[1]
    slug = re.sub(r"[^a-z0-9]+", "-", row.name.lower()).strip("-")[:40].strip("-") or "bot"
    return f"{slug}-{row.id}"


def external_ref_problem(row: BotRow, namespace: str) -> str | None:
    """Why the row's external_ref cannot name its TradingBot (None: it can, or it is unset)."""
    if not row.external_ref:
        return None
    ref_namespace, slash, name = row.external_ref.partition("/")
    if slash and ref_namespace == namespace and NAME.fullmatch(name):
        return None
    return (
        f"external_ref {row.external_ref!r} is not {namespace}/<name> with a name of lowercase letters, digits "
        "and '-' (at most 63); clear it and the operator names the bot"
    )


class SyncConflict(Exception):
    """A row's bot cannot be written (its name is taken, the apiserver refuses it): said on the row."""


def spec_digest(spec: TradingBotSpec) -> str:
    return hashlib.sha256(json.dumps(spec.to_resource(), sort_keys=True).encode()).hexdigest()[:16]


def normalized(raw_spec: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return TradingBotSpec.model_validate(raw_spec).to_resource()
    except Exception:
        return None


@dataclass(frozen=True)
class DesiredBot:
    row_id: int
    namespace: str
    name: str
    spec: TradingBotSpec
    labels: dict[str, str]
    digest: str
    updated_at: datetime

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": c.API_VERSION,
            "kind": c.KIND,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "annotations": {ANNOTATION_ROW_HASH: self.digest},
            },
            "spec": self.spec.to_resource(),
        }


@dataclass
class SyncPlan:
    create: list[DesiredBot] = field(default_factory=list)
    update: list[tuple[DesiredBot, bool]] = field(default_factory=list)  # (desired, reverting a hand edit)
    delete: list[dict[str, Any]] = field(default_factory=list)
    conflict: list[DesiredBot] = field(default_factory=list)  # the name is another resource's

    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def plan_sync(
    desired: list[DesiredBot], existing: list[dict[str, Any]], taken: frozenset[tuple[str, str]] = frozenset()
) -> SyncPlan:
    """`existing`: the resources this sync owns; `taken`: (namespace, name) of every other resource."""
    plan = SyncPlan()
    wanted = {(d.namespace, d.name): d for d in desired}
    seen = set()
    for resource in existing:
        meta = resource["metadata"]
        key = (meta["namespace"], meta["name"])
        target = wanted.get(key)
        if target is None:
            plan.delete.append(resource)
            continue
        seen.add(key)
        labels = meta.get("labels") or {}
        same_spec = normalized(resource.get("spec") or {}) == target.spec.to_resource()
        same_labels = all(labels.get(k) == v for k, v in target.labels.items())
        if not (same_spec and same_labels):
            last_written = (meta.get("annotations") or {}).get(ANNOTATION_ROW_HASH)
            plan.update.append((target, not same_spec and last_written == target.digest))
    plan.create = [d for key, d in wanted.items() if key not in seen and key not in taken]
    plan.conflict = [d for key, d in wanted.items() if key not in seen and key in taken]
    return plan


class Syncer:
    def __init__(
        self,
        settings: OperatorSettings,
        cluster: Cluster,
        repo: BotRepository,
        metrics: OperatorMetrics,
        watched: BotCache | None = None,
    ) -> None:
        """`watched`: the bot watch's cache, when the watch covers the bots' namespace; a full pass lists the bots
        only when it changed (or the rows did, or the last pass had work) or children_check_seconds passed."""
        self.settings, self.cluster, self.repo, self.metrics = settings, cluster, repo, metrics
        self.watched = watched
        self._settled: tuple[Any, ...] | None = None  # what the last full pass with nothing to do saw
        self._listed_at = float("-inf")
        self.wake = threading.Event()
        self._announced: tuple[Any, ...] | None = None
        self.loaded = 0
        self._names: dict[int, str] = {}  # each row's TradingBot name, as the last full pass saw it
        self._changed: set[int] = set()  # row ids NOTIFY named since the last pass took them
        self._changed_lock = threading.Lock()
        self._full_due = True  # a NOTIFY without a row id, or too many ids: the next pass is a full one
        self._pool = ThreadPoolExecutor(settings.sync_workers, thread_name_prefix="sync-write")
        # each valid row's desired bot, by what it was made from: an unchanged row is not validated again
        self._made: dict[int, tuple[tuple[Any, ...], DesiredBot]] = {}

    # ------------------------------------------------------------------------------------ load

    def load(self) -> tuple[list[DesiredBot], list[BotRow]]:
        """Valid enabled database rows become desired bots; invalid ones are marked error and skipped."""
        rows = [
            r for r in self.repo.get_bots(source=c.SOURCE_DATABASE, user_id=self.settings.user_id) if self._shards(r)
        ]
        enabled = [r for r in rows if r.enabled]
        configurations = {r.id: row_configuration(r) for r in rows}
        fingerprint = tuple(configurations.values())
        loud = fingerprint != self._announced
        say = log.info if loud else log.debug
        scope = f"user {self.settings.user_id}" if self.settings.user_id is not None else "all users"
        say("Loading bot configurations from database (%s)...", scope)
        desired: list[DesiredBot] = []
        for row in enabled:
            say(
                "Processing bot %s (%s): %s %s %s %s",
                row.id,
                row.name,
                row.strategy_type,
                row.exchange,
                row.symbol,
                row.mode,
            )
            bot = self._desired(row, say, configurations[row.id])
            if bot is not None:
                desired.append(bot)
                say("Bot %s (%s) loaded", row.id, row.name)
        say("CONFIGURATION LOADING COMPLETE: %d/%d bots loaded", len(desired), len(enabled))
        kept = {bot.row_id for bot in desired}
        self._made = {row_id: made for row_id, made in self._made.items() if row_id in kept}
        self._announced = fingerprint
        return desired, rows

    def _desired(
        self, row: BotRow, say: Callable[..., None], configuration: tuple[Any, ...] | None = None
    ) -> DesiredBot | None:
        """The row's bot, or None: an invalid row is marked (and the others go on)."""
        source = (configuration or row_configuration(row), row.status, row.error_message)
        made = self._made.get(row.id)
        if made is not None and made[0] == source:
            return made[1]
        try:
            bot = self._desired_or_raise(row, say)
            if bot is not None:
                self._made[row.id] = (source, bot)
            return bot
        except DB_ERRORS:
            raise
        except Exception as exc:  # an input no check foresaw
            self._mark(row, f"{INVALID_PREFIX}{type(exc).__name__}: {exc}")
            return None

    def _desired_or_raise(self, row: BotRow, say: Callable[..., None]) -> DesiredBot | None:
        spec, result = validate_row(row)
        for warning in result.warnings:
            say("Bot %s (%s) warning: %s", row.id, row.name, warning)
        namespace = self.settings.bots_namespace
        problem = external_ref_problem(row, namespace)
        if spec is None or problem:
            message = INVALID_PREFIX + "; ".join([*result.errors, *filter(None, [problem])])
            say("Bot %s (%s) skipped: %s", row.id, row.name, message)
            self._mark(row, message)
            return None
        if row.status == "error" and (row.error_message or "").startswith(INVALID_PREFIX):
            self.repo.set_status(row.id, "pending")  # fixed: the old complaint no longer holds
        name = resource_name(row)
        return DesiredBot(
            row_id=row.id,
            namespace=namespace,
            name=name,
            spec=spec,
            labels=bot_labels(name, row.id, c.SOURCE_DATABASE, row.user_id),
            digest=spec_digest(spec),
            updated_at=row.updated_at,
        )

    def _mark(self, row: BotRow, message: str, event: str | None = None) -> None:
        """The row's error, written (and its event recorded) only when it changes."""
        if row.status == "error" and row.error_message == message:
            return
        log.warning("trading_bots row %s (%s): %s", row.id, row.name, message)
        self.repo.mark_error(row.id, message)
        if event is not None:
            self.repo.record_event(row.id, "operator", event, message, severity="warning")

    # ----------------------------------------------------------------------------------- apply

    def sync_once(self, trigger: str = "poll") -> SyncPlan:
        """A full pass: every row of this sync against every resource it owns."""
        self.metrics.syncs.labels(trigger=trigger).inc()
        desired, rows = self.load()
        seen = (self._announced, self.watched.changes if self.watched else None)
        if (
            self.watched
            and seen == self._settled
            and time.monotonic() - self._listed_at < self.settings.children_check_seconds
        ):
            self._mark_disabled_stopped(rows)  # neither the rows nor the bots changed: the plan would be empty
            return SyncPlan()
        self._listed_at = time.monotonic()
        log.debug("full sync: listing the bots of %s", self.settings.bots_namespace)
        everything = self.cluster.list_bots(self.settings.bots_namespace)
        existing = [r for r in everything if self._owns(r)]
        taken = frozenset((r["metadata"]["namespace"], r["metadata"]["name"]) for r in everything if not self._owns(r))
        plan = plan_sync(desired, existing, taken)
        self._names = {bot.row_id: bot.name for bot in desired} | {
            int(labels[c.LABEL_BOT_ID]): r["metadata"]["name"]
            for r in existing
            if (labels := r["metadata"].get("labels") or {}).get(c.LABEL_BOT_ID, "").isdigit()
        }
        self._apply(plan, rows)
        self._settled = seen if plan.empty() and not plan.conflict else None
        self.loaded = len(desired)
        self.metrics.sync_loaded.labels(state="loaded").set(len(desired))
        self.metrics.sync_loaded.labels(state="rows").set(len(rows))
        return plan

    def sync_rows(self, row_ids: Iterable[int]) -> SyncPlan:
        """The rows a NOTIFY named, each against the resource of its name (as the row names it, or as the last
        pass saw it for a row now gone): a read of each, not a listing of the fleet."""
        self.metrics.syncs.labels(trigger="notify").inc()
        ids = sorted(set(row_ids))
        rows = self.repo.get_bots_by_ids(ids)
        mine = [r for r in rows if r.source == c.SOURCE_DATABASE and self._users_row(r) and self._shards(r)]
        desired = [bot for row in mine if row.enabled and (bot := self._desired(row, log.debug)) is not None]
        namespace = self.settings.bots_namespace
        named = {resource_name(r) for r in mine if external_ref_problem(r, namespace) is None}
        names = {name for i in ids if (name := self._names.get(i))} | named
        found = [r for name in names if (r := self.cluster.read_bot(namespace, name))]
        wanted_ids = {str(i) for i in ids}
        existing = [r for r in found if self._owns(r) and r["metadata"]["labels"].get(c.LABEL_BOT_ID) in wanted_ids]
        taken = frozenset((r["metadata"]["namespace"], r["metadata"]["name"]) for r in found if not self._owns(r))
        plan = plan_sync(desired, existing, taken)
        self._names.update({bot.row_id: bot.name for bot in desired})
        self._apply(plan, mine)
        return plan

    def _shards(self, row: BotRow) -> bool:
        """The row's bot is this shard's (by the name it has or will have; a row whose external_ref names no bot is
        still one shard's, which marks it)."""
        namespace = self.settings.bots_namespace
        name = resource_name(row) if external_ref_problem(row, namespace) is None else f"row-{row.id}"
        return self.settings.owns_bot(namespace, name)

    def _users_row(self, row: BotRow) -> bool:
        return self.settings.user_id is None or row.user_id == self.settings.user_id

    def _apply(self, plan: SyncPlan, rows: list[BotRow]) -> None:
        by_id = {r.id: r for r in rows}
        for bot in plan.conflict:
            self._conflict(
                by_id[bot.row_id],
                f"TradingBot {bot.namespace}/{bot.name} already exists and was not "
                "created from this row; rename or delete that resource, or clear this row's external_ref",
            )
        writes: list[tuple[datetime | None, BotRow, Callable[[], None]]] = [
            (bot.updated_at, by_id[bot.row_id], partial(self._create, bot, by_id[bot.row_id])) for bot in plan.create
        ]
        writes += [
            (None if hand_edit else bot.updated_at, by_id[bot.row_id], partial(self._update, bot, hand_edit))
            for bot, hand_edit in plan.update
        ]
        # in parallel, at most sync_workers at once: one client reaches about half the apiserver's write ceiling
        done = self._pool.map(lambda w: w[0] if self._each(w[1], w[2]) else None, writes)
        newest_change = max(filter(None, done), default=None)
        for resource in plan.delete:
            self._delete(resource["metadata"])
        self._mark_disabled_stopped(rows)
        if newest_change is not None:
            self.metrics.sync_lag.set(max(0.0, (datetime.now(UTC) - newest_change).total_seconds()))

    def _delete(self, meta: dict[str, Any]) -> None:
        try:
            self.cluster.delete_bot(meta["namespace"], meta["name"])
        except ApiException as exc:
            log.warning(
                "TradingBot %s/%s: delete refused (%s); retried at the next sync",
                meta["namespace"],
                meta["name"],
                exc.reason,
            )
            return
        log.info("deleted TradingBot %s/%s: its row is disabled, invalid or gone", meta["namespace"], meta["name"])

    def _owns(self, resource: dict[str, Any]) -> bool:
        """A resource this sync made: a database bot of its user (another user's sync owns the others)."""
        meta = resource["metadata"]
        labels = meta.get("labels") or {}
        mine = self.settings.user_id is None or labels.get(c.LABEL_USER_ID) == str(self.settings.user_id)
        shard = self.settings.owns_bot(meta["namespace"], meta["name"])
        return labels.get(c.LABEL_SOURCE) == c.SOURCE_DATABASE and mine and shard

    def _each(self, row: BotRow, write: Callable[[], None]) -> bool:
        """One row's write; a refusal marks that row and the sync goes on."""
        try:
            write()
        except SyncConflict as exc:
            self._conflict(row, str(exc))
            return False
        except ApiException as exc:
            self._conflict(row, f"the apiserver refused its TradingBot ({exc.status} {exc.reason}): {api_message(exc)}")
            return False
        if row.status == "error" and (row.error_message or "").startswith(CONFLICT_PREFIX):
            self.repo.set_status(row.id, "pending")  # written now: the conflict is gone
        return True

    def _conflict(self, row: BotRow, message: str) -> None:
        self._mark(row, CONFLICT_PREFIX + message, event="sync_conflict")

    def _create(self, bot: DesiredBot, row: BotRow) -> None:
        ref = f"{bot.namespace}/{bot.name}"
        if row.external_ref != ref:  # named before it exists: the operator owns a bot only by its row's ref
            holder = self.repo.claim_external_ref(bot.row_id, ref)
            if holder is not None:
                raise SyncConflict(
                    f"{ref} is the external_ref of trading_bots row {holder.id} (source {holder.source})"
                )
        try:
            self.cluster.create_bot(bot.namespace, bot.manifest())
        except ApiException as exc:
            if exc.status == 409:
                raise SyncConflict(f"TradingBot {ref} already exists and was not created from this row") from exc
            raise
        log.info("created TradingBot %s from trading_bots row %s", ref, bot.row_id)

    def _update(self, bot: DesiredBot, hand_edit: bool) -> None:
        manifest = bot.manifest()["metadata"]
        self.cluster.replace_bot_spec(
            bot.namespace, bot.name, bot.spec.to_resource(), manifest["labels"], manifest["annotations"]
        )
        if hand_edit:
            message = (
                f"spec edited by hand; reverted to trading_bots row {bot.row_id} (database bots are "
                "configured in the database)"
            )
            log.warning("TradingBot %s/%s: %s", bot.namespace, bot.name, message)
            self.cluster.event(TradingBot.named(bot.namespace, bot.name), "Warning", "HandEditReverted", message)
        else:
            log.info("updated TradingBot %s/%s from trading_bots row %s", bot.namespace, bot.name, bot.row_id)

    def _mark_disabled_stopped(self, rows: list[BotRow]) -> None:
        stale = [r.id for r in rows if not r.enabled and r.status not in ("stopped", "error")]
        if stale and self.repo.mark_stopped(stale, "disabled in trading_bots"):
            log.info("marked %d disabled bots stopped", len(stale))

    # ------------------------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        listener = threading.Thread(target=self._listen, args=(stop,), name="sync-listener", daemon=True)
        listener.start()
        trigger, first, next_full = "start", True, 0.0
        while not stop.is_set():
            changed, full = self._take_changed()
            try:
                if full or time.monotonic() >= next_full:
                    next_full = time.monotonic() + self.settings.poll_interval
                    self.sync_once(trigger)
                    if first:
                        log.info("Trading service running with %d bots", self.loaded)
                        first = False
                elif changed:
                    self.sync_rows(changed)
            except DB_ERRORS as exc:
                log.warning("database sync: database unreachable (%s); retrying at the next poll", type(exc).__name__)
            except Exception:
                log.exception("database sync failed; retrying at the next poll")
            self.wake.wait(max(0.0, next_full - time.monotonic()))
            self.wake.clear()
            trigger = "notify" if self._full_due else "poll"
        self._pool.shutdown(wait=False, cancel_futures=True)
        log.info("Shutting down the database sync gracefully")

    def notified(self, payload: str) -> None:
        """A trading_bots NOTIFY: its row id is synced alone, unless a burst makes a full pass cheaper."""
        try:
            row_id = int(json.loads(payload)["id"])
        except (ValueError, KeyError, TypeError):
            row_id = None
        with self._changed_lock:
            if row_id is None or len(self._changed) >= INCREMENTAL_LIMIT:
                self._full_due = True
            else:
                self._changed.add(row_id)
        self.wake.set()

    def _take_changed(self) -> tuple[set[int], bool]:
        with self._changed_lock:
            taken = (self._changed, self._full_due)
            self._changed, self._full_due = set(), False
        return taken

    def _listen(self, stop: threading.Event) -> None:
        """LISTEN on the trading_bots trigger's channel; any notification wakes the sync at once."""
        delay = 1.0
        while not stop.is_set():
            try:
                with psycopg.connect(libpq_url(self.settings.database_url), autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    delay = 1.0
                    while not stop.is_set():
                        for notify in conn.notifies(timeout=1.0, stop_after=1):
                            self.notified(notify.payload)
            except psycopg.Error as exc:
                log.warning("LISTEN %s failed (%s); polling only, retrying in %.0f s", NOTIFY_CHANNEL, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 60.0)
