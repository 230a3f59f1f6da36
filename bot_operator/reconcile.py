"""The level-based reconcile of one TradingBot: observe, decide (pure), apply, report.

Called by kopf's create/update/resume handlers, by pod events and by the periodic pass; it is
idempotent, so a missed event or an operator restart heals at the next call. A lock per bot keeps
concurrent callers from racing each other.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from sqlalchemy import exc as sa_exc

from bot_operator.alerts import OwnerAlerts
from bot_operator.builders.conditions import get_condition
from bot_operator.builders.lifecycle import Decision, Observation, PodView, decide, parse_time, revisit_at
from bot_operator.builders.names import bot_labels, pod_name
from bot_operator.builders.network import build_network_policy
from bot_operator.builders.pod import build_pod, build_runtime_db_secret, image_refusal, spec_hash
from bot_operator.builders.rbac import build_role, build_role_binding, build_service_account
from bot_operator.kube import Cluster, api_message
from bot_operator.metrics import OperatorMetrics
from bot_operator.pod_index import PodIndex, key_of, version_number
from bot_operator.settings import OperatorSettings
from bot_operator.work_queue import BotCache, Key, Work, WorkQueue, body_of
from bot_runtime.api import constants as c
from bot_runtime.api.models import RestartPolicy, TradingBot, TradingBotSpec, TradingBotStatus
from bot_runtime.api.rows import row_configuration, row_to_spec, spec_to_row
from bot_runtime.api.validation import strategy_fallback, validate_spec
from bot_runtime.db.engine import DB_ERRORS
from bot_runtime.db.fleet import FleetControls, fingerprint
from bot_runtime.db.identity import RuntimeIdentities
from bot_runtime.db.repository import BotRepository
from bot_runtime.db.schema import TradingBot as BotRow
from bot_runtime.params import strategy_catalog

log = logging.getLogger(__name__)

# trading_bots.status the operator sets for phases a runtime cannot report itself
DB_STATUS_BY_PHASE = {"Error": "error", "Suspended": "stopped"}
# _register's answers that refuse the bot: it runs nothing and touches no row
REFUSALS = ("NotOwned", "NameTaken")
NAMESPACE_USER_TTL = 10.0  # seconds a namespace's user label is trusted before it is read again
WAKE_MARGIN = 0.5  # seconds after a restart's time (status times are whole seconds, rounded down)
# status.runtime fields that change with every heartbeat and decide nothing (staleness is the row's heartbeat)
VOLATILE_RUNTIME = frozenset({"lastHeartbeat", "equity", "cash", "pnl", "unsaved"})


def row_differs(row: BotRow, spec: TradingBotSpec) -> bool:
    return any(getattr(row, column) != value for column, value in spec_to_row(spec).items())


def _bot_inputs(body: Any, with_status: bool) -> list[Any]:
    meta = body.get("metadata") or {}
    status = dict(body.get("status") or {})
    runtime = status.pop("runtime", None) or {}
    return [
        meta.get("uid"),
        meta.get("generation"),
        meta.get("deletionTimestamp"),
        meta.get("labels"),
        meta.get("annotations"),
        {k: v for k, v in runtime.items() if k not in VOLATILE_RUNTIME},
        status if with_status else None,
    ]


def input_digest(body: Any) -> int:
    """What a reconcile decides from in a TradingBot: its spec (by generation), metadata and status.runtime.
    The operator's own status fields are left out, so its own status patch does not wake a reconcile again."""
    return hash(json.dumps(_bot_inputs(body, with_status=False), sort_keys=True, default=str))


def bot_digest(body: Any) -> int:
    """What a periodic pass compares of a bot: input_digest's inputs and its whole status (a status a runtime
    rewrote is put back)."""
    return hash(json.dumps(_bot_inputs(body, with_status=True), sort_keys=True, default=str))


def pass_key(bot: int, pod: PodView, row: BotRow | None, with_heartbeat: bool, context: Any) -> int:
    """Everything a pass's reconcile of a bot decides from but the clock: the bot (its bot_digest), its pod, its
    row and `context`. The row's heartbeat counts only when the bot's heartbeats were not fresh: a newer heartbeat
    of a fresh bot decides nothing new."""
    facts = None
    if row is not None:
        heartbeat = row.last_heartbeat if with_heartbeat else None
        facts = [row_configuration(row), row.source, row.status, row.error_message, row.feed_state, heartbeat]
    return hash(json.dumps([bot, repr(pod), facts, context], sort_keys=True, default=str))


def bot_source(body: Any) -> str:
    return str(((body.get("metadata") or {}).get("labels") or {}).get(c.LABEL_SOURCE, c.SOURCE_KUBERNETES))


def heartbeat_fresh(status: dict[str, Any]) -> bool:
    return (get_condition(status.get("conditions"), "Healthy") or {}).get("reason") == "HeartbeatFresh"


def row_spec_instead(row: BotRow | None, spec: TradingBotSpec | None) -> TradingBotSpec | None:
    """A database bot runs its row: when its resource says otherwise (a hand edit the sync reverts, or a row change
    the sync has yet to copy), the row's spec; None when the resource already says what the row says."""
    if row is None or (spec is not None and not row_differs(row, spec)):
        return None
    from_row, _ = row_to_spec(row)
    return from_row


def restart_record(bot: TradingBot) -> dict[str, Any]:
    """The restart count and next restart the operator wrote in the bot's metadata. Not the status: a bot's Role
    may patch its status, so a runtime could reset its own count there."""
    try:
        kept = json.loads(bot.metadata.annotations.get(c.ANNOTATION_RESTARTS) or "{}")
    except ValueError:
        kept = {}
    return {"restarts": int(kept.get("restarts") or 0), "nextRestartAt": kept.get("nextRestartAt")}


class WakeUps:
    """Reconciles due at a time (a restart's back-off), on one thread: at its time, not at the next pass."""

    def __init__(self, call: Any) -> None:
        self._call, self._cond = call, threading.Condition()
        self._due: dict[tuple[str, str], float] = {}  # monotonic time each bot is due
        threading.Thread(target=self._run, name="wake-ups", daemon=True).start()

    def at(self, key: tuple[str, str], when: datetime | None) -> None:
        """Reconcile `key` at `when` (replacing an earlier wish); None: no wish."""
        with self._cond:
            if when is None:
                self._due.pop(key, None)
            else:
                self._due[key] = time.monotonic() + max(0.0, (when - datetime.now(UTC)).total_seconds()) + WAKE_MARGIN
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                key, due = min(self._due.items(), key=lambda kv: kv[1], default=(None, 0.0))
                if key is None or due > time.monotonic():
                    self._cond.wait(None if key is None else due - time.monotonic())
                    continue
                del self._due[key]
            try:
                self._call(*key)
            except Exception:
                log.exception("reconcile of %s/%s at its restart time failed", *key)


@dataclass(frozen=True)
class Quiet:
    """A bot a pass found settled: skipped by later passes while its pass_key holds, until `until`."""

    key: int
    with_heartbeat: bool
    until: float  # monotonic: its revisit time, or a full reconcile every children_check_seconds at the latest
    phase: str


# what a periodic pass knows of a bot before deciding to reconcile it: its key, bot_digest, source and body loader
PassBot = tuple[Key, int, str, Callable[[], dict[str, Any]]]


@dataclass
class PassListing:
    """What one periodic pass read in one call instead of one read per bot (bots and pods come from the watches'
    cache and index)."""

    rows: dict[str, BotRow] = field(default_factory=dict)  # by external_ref


class Reconciler:
    def __init__(
        self,
        settings: OperatorSettings,
        cluster: Cluster,
        repo: BotRepository,
        metrics: OperatorMetrics,
        alerts: OwnerAlerts | None = None,
    ) -> None:
        self.settings, self.cluster, self.repo, self.metrics = settings, cluster, repo, metrics
        self.alerts = alerts
        self.fleet = FleetControls(repo)
        self.identities = RuntimeIdentities(repo.engine, settings.runtime_database_url or settings.database_url)
        self._identities_checked: dict[
            tuple[str, str], tuple[str, float]
        ] = {}  # bot -> (uid, when its Secret was seen)
        self._fingerprint_key: str | None = None
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._namespaces_checked: dict[str, float] = {}  # monotonic time each namespace's shared objects were checked
        self._children_checked: dict[tuple[str, str], tuple[tuple[str | None, str], float]] = {}
        # the resourceVersion our last write of each bot left: an older copy of it is read again
        self._written: dict[tuple[str, str], int] = {}
        self._database_down = False  # seen unreachable by the last reconcile
        self._database_back_at: datetime | None = None
        self._namespace_users: dict[str, tuple[float, int | None]] = {}
        self._inputs_seen: dict[tuple[str, str], int] = {}  # input_digest of each bot at its last reconcile
        self._revisits: dict[tuple[str, str], datetime | None] = {}  # when each bot's last decision may expire
        self._quiet: dict[tuple[str, str], Quiet] = {}  # bots the periodic pass may skip
        self.wake_ups = WakeUps(self.reconcile_named)
        self.pods = PodIndex()  # fed by the pod watch (watched_pod) and our own creates
        self.bots = BotCache()  # fed by the bot watch (watched_bot)
        self.queue = WorkQueue()  # bots to reconcile, taken by the runner's workers

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[(namespace, name)]

    def reconcile_named(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Reconcile the bot as the apiserver holds it now (events carry no trustworthy copy)."""
        return self.reconcile(TradingBot.named(namespace, name), fresh=True)

    def reconcile(
        self, bot: TradingBot, fresh: bool = False, listing: PassListing | None = None
    ) -> dict[str, Any] | None:
        """Bring one bot's objects and status in line; returns the status written (or None). `bot` as a watch or a
        pass showed it, and its row as a pass listed it: a copy older than our last write of the bot is read again
        (with its row), so a stale copy never puts back an older restart count."""
        if not self.settings.owns_bot(bot.namespace, bot.name):
            return None  # another shard's
        started = time.monotonic()
        with self._lock(bot.namespace, bot.name):
            stale = self._older_than_our_write(bot)
            current = self.cluster.get_bot(bot.namespace, bot.name) if fresh or stale else bot
            if current is None or current.metadata.deletion_timestamp:
                return None
            try:
                status = self._reconcile(current, None if fresh or stale else listing)
                self.metrics.reconciles.labels(result="ok").inc()
                return status
            except Exception:
                self.metrics.reconciles.labels(result="error").inc()
                self.metrics.reconcile_errors.inc()
                raise
            finally:
                self.metrics.reconcile_seconds.observe(time.monotonic() - started)

    def reconcile_listed(
        self, key: Key, digest: int, source: str, load: Callable[[], dict[str, Any]], listing: PassListing
    ) -> str | None:
        """A periodic pass's reconcile of one bot (its bot_digest, its source label, and how to get its body),
        skipped while nothing it decides from has changed and its revisit time has not come: an idle fleet costs a
        comparison per bot, not a reconcile. Its phase, or None when it is not this shard's."""
        if not self.settings.owns_bot(*key):
            return None
        quiet = self._quiet.get(key)
        if (
            quiet is not None
            and time.monotonic() < quiet.until
            and quiet.key == self._pass_key(key, digest, source, listing, quiet.with_heartbeat)
        ):
            return quiet.phase
        status = self.reconcile(TradingBot.from_resource(load()), listing=listing) or {}
        revisit = self._revisits.get(key)
        if not status or self._database_down:
            self._quiet.pop(key, None)
            return status.get("phase") or "Unknown"
        seconds = self.settings.children_check_seconds
        if revisit is not None:
            seconds = min(seconds, (revisit - datetime.now(UTC)).total_seconds() + WAKE_MARGIN)
        with_heartbeat, phase = not heartbeat_fresh(status), status.get("phase") or "Unknown"
        bot_key = self._pass_key(key, digest, source, listing, with_heartbeat)
        self._quiet[key] = Quiet(bot_key, with_heartbeat, time.monotonic() + seconds, phase)
        return phase

    def _pass_key(self, key: Key, digest: int, source: str, listing: PassListing, with_heartbeat: bool) -> int:
        namespace, name = key
        pod = self.pods.get(namespace, pod_name(name)) or PodView()
        user = self._namespace_user(namespace) if source == c.SOURCE_KUBERNETES else None
        context = [user, self._database_back_at]
        return pass_key(digest, pod, listing.rows.get(f"{namespace}/{name}"), with_heartbeat, context)

    # ------------------------------------------------------------------------ what the watches hand over

    def watched_bot(self, type: str | None, body: dict[str, Any]) -> None:
        """A TradingBot watch event, in kopf's event loop: recorded and queued, never handled here."""
        key = key_of(body)
        if not self.settings.owns_bot(*key):
            return  # another shard's: not even kept
        if type == "DELETED":  # no finalizer: deletion never waits for us; the worker marks its row stopped
            self.bots.remove(key)
            self.queue.put(key, forget=dict((body.get("metadata") or {}).get("labels") or {}))
        else:  # the initial listing (None), ADDED, MODIFIED
            self.bots.put(body, bot_digest(body), bot_source(body))
            if self._inputs_seen.get(key) != input_digest(body):  # a heartbeat's status patch: nothing to do
                self.queue.put(key)

    def watched_pod(self, type: str | None, body: dict[str, Any]) -> None:
        """A bot pod's watch event, in kopf's event loop: the index takes it and its bot is queued."""
        if type == "DELETED":
            self.pods.remove(body)
        else:
            self.pods.update(body)
        meta = body.get("metadata") or {}
        owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == c.KIND), None)
        if owner is not None and self.settings.owns_bot(meta.get("namespace", ""), owner["name"]):
            self.queue.put((meta.get("namespace", ""), owner["name"]), pod_changed=True)

    def handle(self, key: Key, work: Work) -> None:
        """A queued bot, on a worker thread: its deletion, then a reconcile from the newest copy the watch showed."""
        if work.forget is not None:
            self.forget(*key, work.forget)
        seen = self.bots.get(key)
        if seen is not None:
            self.bot_seen(*key, body_of(seen), force=work.pod_changed)
        elif work.pod_changed and work.forget is None:
            self.reconcile_named(*key)  # a pod of a bot the watch has not shown yet

    def bot_seen(self, namespace: str, name: str, body: Any, force: bool = False) -> None:
        """A TradingBot as the watch showed it: reconciled unless only the operator's own status changed (or
        `force`: its pod changed)."""
        key, digest = (namespace, name), input_digest(body)
        if (self._inputs_seen.get(key) == digest and not force) or not self.settings.owns_bot(namespace, name):
            return
        self.reconcile(TradingBot.from_resource(body))
        self._inputs_seen[key] = digest

    def _older_than_our_write(self, bot: TradingBot) -> bool:
        written = self._written.get((bot.namespace, bot.name))
        return written is not None and version_number(bot.metadata.resource_version) < written

    def forget(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """A TradingBot was deleted: its pod goes with it (garbage collector); the row it owned is marked
        stopped and keeps its runs and trades. Ownership is the row's external_ref, never a label."""
        if not self.settings.owns_bot(namespace, name):
            return
        if self.alerts is not None:
            self.alerts.forget(namespace, name)
        self._written.pop((namespace, name), None)  # its pod stays in the index until the watch sees it go
        self._inputs_seen.pop((namespace, name), None)
        self._revisits.pop((namespace, name), None)
        self._quiet.pop((namespace, name), None)
        self.wake_ups.at((namespace, name), None)
        self._children_checked.pop((namespace, name), None)
        self._identities_checked.pop((namespace, name), None)
        row = self.repo.get_bot_by_ref(namespace, name)
        if row is None or row.source != labels.get(c.LABEL_SOURCE, c.SOURCE_KUBERNETES):
            log.info("TradingBot %s/%s deleted: it owns no trading_bots row", namespace, name)
            return
        self.fleet.release_account(row.id)
        if self.settings.runtime_database_identity == "per-bot":
            self.identities.retire_bot(row.id)  # no login from now; its Secret goes with the bot (owner reference)
        if self.repo.mark_stopped([row.id], "TradingBot deleted"):
            log.info("TradingBot %s/%s deleted: trading_bots row %s marked stopped", namespace, name, row.id)

    # ----------------------------------------------------------------------------------- steps

    def _reconcile(self, bot: TradingBot, listing: PassListing | None) -> dict[str, Any]:
        stored = bot.stored_status()  # what a status patch compares with: a field the bot rewrote is put back
        record = restart_record(bot)
        previous = {**stored, **record}
        namespace, name = bot.namespace, bot.name
        labels = dict(bot.metadata.labels)
        source = labels.get(c.LABEL_SOURCE, c.SOURCE_KUBERNETES)
        spec, result = validate_spec(bot.spec)
        message = "; ".join(result.errors)
        if result.errors and previous.get("message") != message:
            log.warning("TradingBot %s/%s is invalid: %s", namespace, name, message)

        pod = self.pods.get(namespace, pod_name(name)) or PodView.of(
            self.cluster.get_pod(namespace, pod_name(name)), c.ANNOTATION_SPEC_HASH
        )
        try:
            listed_row = listing.rows.get(bot.ref) if listing else None
            bot_id, user_id, synced, row = self._register(namespace, name, source, spec, listed_row)
            if synced[1] in REFUSALS:  # not this bot's to run: said like an invalid spec, with its own reason
                spec, message = None, synced[2]
            conflict = self._account_conflict(namespace, spec, bot_id) or self._database_identity(
                bot, spec, bot_id, pod.exists
            )
            database_reachable = True
            if self._database_down:
                self._database_down, self._database_back_at = False, datetime.now(UTC)
        except DB_ERRORS as exc:  # an outage is not a broken bot: no restart for it, no Ready we cannot know
            log.warning("TradingBot %s/%s: database unreachable (%s)", namespace, name, type(exc).__name__)
            bot_id, row, conflict, database_reachable = previous.get("botId"), None, None, False
            user_id = None
            self._database_down = True
            synced = (False, "DatabaseUnreachable", "the database is unreachable")
        if source == c.SOURCE_DATABASE and (from_row := row_spec_instead(row, spec)) is not None:
            spec, message = from_row, ""
        conflict = image_refusal(spec, self.settings) or conflict  # checked with or without the database
        if conflict:  # a spec that cannot run here: reported like any invalid spec
            spec, message = None, conflict
            if previous.get("message") != message:
                log.warning("TradingBot %s/%s: %s", namespace, name, message)
        wanted_labels = bot_labels(name, bot_id, source, user_id)
        if bot_id is not None and labels.get(c.LABEL_BOT_ID) != str(bot_id):
            self.cluster.patch_bot_metadata(namespace, name, {c.LABEL_BOT_ID: str(bot_id)})
        if spec is not None:
            self._ensure_children(bot, wanted_labels)
            self.ensure_namespace_objects(namespace)

        interval = (spec and spec.runtime.heartbeat_interval_seconds) or self.settings.runtime_heartbeat_seconds
        observation = Observation(
            now=datetime.now(UTC),
            generation=bot.metadata.generation,
            valid=spec is not None,
            validation_message=message,
            invalid_reason=synced[1] if synced[1] in REFUSALS else "InvalidSpec",
            suspended=bool(spec and spec.suspended),
            desired_hash=spec_hash(spec, self.settings) if spec else "",
            pod=pod,
            policy=spec.restart_policy if spec else RestartPolicy(),
            heartbeat_interval=interval,
            stale_after=self.settings.stale_after(interval),
            replace_after=self.settings.replace_stale_after_seconds,
            healthy_reset=self.settings.healthy_reset_seconds,
            previous=previous,
            last_heartbeat=row.last_heartbeat if row else None,
            feed_state=row.feed_state if row else None,
            runtime=dict(previous.get("runtime") or {}),
            synced=synced,
            rollout=spec.rollout.strategy if spec else "immediate",
            rollout_max_wait=spec.rollout.max_wait_seconds if spec else 0,
            database_reachable=database_reachable,
            database_back_at=self._database_back_at,
            differences=(("StrategyFallback", fallback),) if spec and (fallback := strategy_fallback(spec)) else (),
        )
        decision, pod_exists, observation = self._apply_or_refused(
            bot, spec, wanted_labels, observation, pod.exists, bot_id
        )
        status = {
            **decision.status,
            **TradingBotStatus(
                pod=pod_name(name) if pod_exists else None,
                bot_id=bot_id,
                strategy=strategy_catalog.runs(spec.strategy.type) if spec else None,
            ).model_dump(by_alias=True, include={"pod", "bot_id", "strategy"}),
        }
        self._report(bot, bot_id if database_reachable else None, row, stored, status, decision)
        self._keep_restarts(bot, record, status)
        restart_at = parse_time(status.get("nextRestartAt")) if status.get("phase") == "Pending" else None
        self.wake_ups.at((namespace, name), restart_at)
        self._revisits[(namespace, name)] = revisit_at(observation, status)
        self._tell(bot, spec, bot_id, previous, status, decision)
        return status

    def _keep_restarts(self, bot: TradingBot, record: dict[str, Any], status: dict[str, Any]) -> None:
        kept = {k: status.get(k) for k in record}
        if kept != record:
            annotation = {c.ANNOTATION_RESTARTS: json.dumps(kept)}
            version = self.cluster.patch_bot_metadata(bot.namespace, bot.name, annotations=annotation)
            self._written[(bot.namespace, bot.name)] = version_number(version)  # older copies: read again

    def _tell(
        self,
        bot: TradingBot,
        spec: TradingBotSpec | None,
        bot_id: int | None,
        previous: dict[str, Any],
        status: dict[str, Any],
        decision: Decision,
    ) -> None:
        if self.alerts is None:
            return
        self.alerts.check(bot, spec, bot_id)
        if previous.get("phase") != status["phase"]:
            self.alerts.phase_changed(bot, spec, bot_id, previous.get("phase"), status["phase"], status["message"])
        if any(reason == "Replacing" for _, reason, _ in decision.events):
            self.alerts.send(bot, spec, bot_id, "pod_replaced", "Bot pod replaced", [decision.action_reason])

    def _register(
        self,
        namespace: str,
        name: str,
        source: str,
        spec: TradingBotSpec | None,
        listed_row: BotRow | None = None,
    ) -> tuple[int | None, int | None, tuple[bool, str, str], BotRow | None]:
        """The bot's row id, its user, the Synced condition and its row (None when the row is not this bot's).
        A row is found by its external_ref (namespace/name), never by a label a resource
        author can write; a resource applied by a person or GitOps is registered, under its namespace's user.
        `listed_row`: the row as a pass read it with every other (a bot without one reads again: it may be new)."""
        ref = f"{namespace}/{name}"
        row = listed_row or self.repo.get_bot_by_ref(namespace, name)
        if source == c.SOURCE_DATABASE:
            if row is None or row.source != c.SOURCE_DATABASE:
                why = (
                    f"no trading_bots row of source database has external_ref {ref!r}: database bots are "
                    "created by the operator's sync, not applied"
                )
                return None, None, (False, "NotOwned", why), None
            if not row.enabled:
                return None, None, (False, "NotOwned", f"trading_bots row {row.id} is disabled"), None
            return row.id, row.user_id, (True, "InSync", f"owned by trading_bots row {row.id}"), row
        if row is not None and row.source != c.SOURCE_KUBERNETES:
            return None, None, self._name_taken(ref, row.id, row.source), None
        user_id = self._namespace_user(namespace)
        if spec is None:
            return (row.id if row else None), user_id, (False, "NotRegistered", "the spec is invalid"), row
        if row is not None and not row_differs(row, spec) and row.user_id == user_id:
            return row.id, user_id, (True, "Registered", f"trading_bots row {row.id} (source kubernetes)"), row
        bot_id = self.repo.upsert_kubernetes_bot(namespace, name, spec, user_id)
        if bot_id is None:  # a database row took the name meanwhile
            taken = self.repo.get_bot_by_ref(namespace, name)
            return None, None, self._name_taken(ref, taken.id if taken else None, c.SOURCE_DATABASE), None
        registered = (True, "Registered", f"trading_bots row {bot_id} (source kubernetes)")
        return bot_id, user_id, registered, self.repo.get_bot(bot_id)  # as written

    @staticmethod
    def _name_taken(ref: str, row_id: int | None, source: str) -> tuple[bool, str, str]:
        return (
            False,
            "NameTaken",
            (
                f"{ref} is the external_ref of trading_bots row {row_id} (source {source}): that row's bot has this "
                "name; give this TradingBot another name"
            ),
        )

    def _namespace_user(self, namespace: str) -> int | None:
        """The user an administrator gave the namespace (label botops.io/user-id on the Namespace)."""
        now = time.monotonic()
        cached = self._namespace_users.get(namespace)
        if cached is not None and now - cached[0] < NAMESPACE_USER_TTL:
            return cached[1]
        labels = self.cluster.namespace_labels(namespace)
        raw = labels.get(c.LABEL_USER_ID, "")
        user_id = int(raw) if raw.isdigit() else None
        self._namespace_users[namespace] = (now, user_id)
        return user_id

    def _account_conflict(self, namespace: str, spec: TradingBotSpec | None, bot_id: int | None) -> str | None:
        """One exchange account trades one symbol through one live bot, unless both allow sharing: compared
        by a keyed fingerprint of the API key (the key itself is read, hashed and forgotten)."""
        if spec is None or spec.mode != "live" or bot_id is None or spec.broker.credentials_secret_ref is None:
            return None
        ref = spec.broker.credentials_secret_ref
        field = "spec.broker.credentialsSecretRef"
        try:
            data = self.cluster.core.read_namespaced_secret(ref.name, namespace).data or {}
        except ApiException as exc:
            if exc.status == 404:
                return f"{field}.name: Secret {ref.name!r} not found in namespace {namespace!r}"
            raise
        if ref.api_key_key not in data:
            return f"{field}.apiKeyKey: Secret {ref.name!r} has no key {ref.api_key_key!r}"
        if self._fingerprint_key is None:
            self._fingerprint_key = self.fleet.fingerprint_key()
        account = fingerprint(
            self._fingerprint_key, spec.market.exchange, base64.b64decode(data[ref.api_key_key]).decode()
        )
        return self.fleet.claim_account(bot_id, account, spec.market.symbol, spec.allow_shared_account)

    def _database_identity(
        self, bot: TradingBot, spec: TradingBotSpec | None, bot_id: int | None, pod_exists: bool
    ) -> str | None:
        """The bot's own database role and the Secret with its URL (per-bot identities): made when the Secret is
        missing, checked again every children_check_seconds. A refusal (no CREATEROLE) is said on the bot.
        A bot new to this process with no pod gets a new password without asking whether its Secret exists (no
        runtime uses the old one; an existing Secret is replaced): a new bot costs no read."""
        if spec is None or bot_id is None or self.settings.runtime_database_identity != "per-bot":
            return None
        key, now = (bot.namespace, bot.name), time.monotonic()
        checked = self._identities_checked.get(key)
        if (
            checked is not None
            and checked[0] == bot.metadata.uid
            and now - checked[1] < self.settings.children_check_seconds
        ):
            return None
        name = self.settings.database_secret(bot.name)
        unused = checked is None and not pod_exists
        if unused or not self.cluster.secret_exists(bot.namespace, name):
            try:
                url = self.identities.issue_bot(bot_id)
            except sa_exc.ProgrammingError as exc:  # insufficient privilege: a setting to change, not an outage
                return (
                    f"the operator cannot create the bot's database role ({type(exc.orig).__name__}): give its "
                    "database user CREATEROLE, or set database.runtimeIdentity: shared"
                )
            self.cluster.ensure(build_runtime_db_secret(name, bot.namespace, url, owner=bot), likely_new=True)
            log.info("TradingBot %s: its own database role and Secret %s", bot.ref, name)
        self._identities_checked[key] = (bot.metadata.uid, now)
        return None

    def _ensure_children(self, bot: TradingBot, labels: dict[str, str]) -> None:
        """The bot's ServiceAccount, Role and RoleBinding: read and written when the bot or its labels are new to
        this process, and checked again every children_check_seconds (a GET of each per reconcile would be three
        reads per bot every pass)."""
        key, now = (bot.namespace, bot.name), time.monotonic()
        mark = (bot.metadata.uid, json.dumps(labels, sort_keys=True))
        checked = self._children_checked.get(key)
        if checked is not None and checked[0] == mark and now - checked[1] < self.settings.children_check_seconds:
            return
        new = "observedGeneration" not in bot.stored_status()  # never reconciled: its children are not there yet
        for obj in (build_service_account(bot, labels), build_role(bot, labels), build_role_binding(bot, labels)):
            self.cluster.ensure(obj, likely_new=new)
        self._children_checked[key] = (mark, now)

    def ensure_namespace_objects(self, namespace: str) -> None:
        """What the bots and backtests of a namespace share: the runtime's database Secret and the runtime pods'
        NetworkPolicy."""
        checked, now = self._namespaces_checked.get(namespace), time.monotonic()
        if checked is not None and now - checked < self.settings.children_check_seconds:
            return
        if self.settings.runtime_database_identity == "shared":
            url = self.settings.runtime_database_url or self.settings.database_url
            self.cluster.ensure(build_runtime_db_secret(self.settings.runtime_database_secret, namespace, url))
        elif not self.cluster.secret_exists(namespace, self.settings.backtest_database_secret()):
            url = self.identities.issue_backtests()  # Backtest pods' role: backtest_results only
            self.cluster.ensure(build_runtime_db_secret(self.settings.backtest_database_secret(), namespace, url))
        if self.settings.bot_network_policy:
            self.cluster.ensure(build_network_policy(namespace, self.settings))
        self._namespaces_checked[namespace] = now

    def _apply_or_refused(
        self,
        bot: TradingBot,
        spec: TradingBotSpec | None,
        labels: dict[str, str],
        observation: Observation,
        pod_exists: bool,
        bot_id: int | None,
    ) -> tuple[Decision, bool, Observation]:
        """Decide and apply; an object the apiserver refuses (a 400 or 422: our inputs, not a passing fault) makes
        the bot Stalled with the apiserver's own message instead of failing every reconcile unexplained. With the
        observation the decision was made from (the new pod's, when one was created)."""
        decision = decide(observation)
        try:
            pod_exists, created = self._apply(bot, spec, labels, decision, pod_exists, bot_id)
        except ApiException as exc:
            if exc.status not in (400, 422):
                raise
            refused = f"the apiserver refused the bot pod: {api_message(exc)}"
            log.warning("TradingBot %s/%s: %s", bot.namespace, bot.name, refused)
            observation = replace(observation, valid=False, validation_message=refused, invalid_reason="PodRefused")
            return decide(observation), pod_exists, observation
        if created is not None:  # decided again with the new pod: one status patch per creation, not two
            pod, previous = PodView.of(created, c.ANNOTATION_SPEC_HASH), {**observation.previous, **decision.status}
            observation = replace(observation, pod=pod, previous=previous)
            then = decide(observation)
            events = decision.events + [e for e in then.events if e not in decision.events]
            decision = replace(then, events=events, action_reason=decision.action_reason)
        return decision, pod_exists, observation

    def _apply(
        self,
        bot: TradingBot,
        spec: TradingBotSpec | None,
        labels: dict[str, str],
        decision: Decision,
        pod_exists: bool,
        bot_id: int | None,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Whether the bot has a pod now, and the pod as created (None when none was)."""
        pod = pod_name(bot.name)
        if decision.action == "create" and spec is not None:
            created = self.cluster.create_pod(build_pod(bot, spec, self.settings, labels))
            if created is not None:
                self.pods.update(created)
                log.info("created bot pod %s/%s", bot.namespace, pod)
            return True, created
        if decision.action == "delete":
            log.info("deleting bot pod %s/%s: %s", bot.namespace, pod, decision.action_reason)
            self.cluster.delete_pod(bot.namespace, pod)
            self.pods.deleting(bot.namespace, pod)
            if decision.runtime_dead and bot_id is not None:
                # the kubelet saw the runtime exit: its lease is free now, not at expiry
                self.repo.release_lease_of_pod(bot_id, pod)
        return pod_exists, None

    def _report(
        self,
        bot: TradingBot,
        bot_id: int | None,
        row: BotRow | None,
        previous: dict[str, Any],
        status: dict[str, Any],
        decision: Decision,
    ) -> None:
        changed = {k: v for k, v in status.items() if previous.get(k) != v}
        if changed:
            log.debug("TradingBot %s status: %s", bot.ref, changed)
            version = self.cluster.patch_bot_status(bot.namespace, bot.name, changed)
            self._written[(bot.namespace, bot.name)] = version_number(version)
        for type, reason, message in decision.events:
            self.cluster.event(bot, type, reason, message)
            if bot_id is not None:
                self.repo.record_event(
                    bot_id, "operator", reason.lower(), message, severity="warning" if type == "Warning" else "info"
                )
        db_status = DB_STATUS_BY_PHASE.get(status["phase"])
        if row is not None and db_status and (row.status != db_status or row.error_message != status["message"]):
            self.repo.set_status(row.id, db_status, status["message"] if db_status == "error" else None)
