"""`bot-operator run`: leader election, then kopf (events), the database sync and the periodic pass.

Threads: the main thread runs kopf's asyncio loop (signals arrive there); the leader renewal, the
database sync (with its LISTEN connection) and the periodic reconcile pass run beside it. Only the
leader does any of it; a standby waits on the Lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter
from functools import partial
from typing import Any

import kopf

from bot_operator import handlers, memory  # noqa: F401  (handlers registers the kopf handlers)
from bot_operator.admission import AdmissionServer
from bot_operator.alerts import OwnerAlerts
from bot_operator.backtest_runs import BacktestReconciler
from bot_operator.kube import Cluster
from bot_operator.leader import LeaderElector
from bot_operator.metrics import OperatorMetrics
from bot_operator.pod_index import key_of
from bot_operator.reconcile import PassBot, PassListing, Reconciler, bot_digest, bot_source
from bot_operator.settings import OperatorSettings
from bot_operator.sync import Syncer
from bot_operator.work_queue import body_of
from bot_runtime.api import constants as c
from bot_runtime.db import revision
from bot_runtime.db.backtest_results import BacktestStore
from bot_runtime.db.engine import DB_ERRORS, create_engine
from bot_runtime.db.repository import BotRepository
from bot_runtime.db.schema import TradingBot as BotRow
from bot_runtime.health import HealthServer
from bot_runtime.resource import api_client

log = logging.getLogger("bot_operator")
RECONCILE_WORKERS = 16  # reconciles at once: threads taking the Reconciler's queue
KOPF_THREADS = 4  # kopf's thread pool: the Backtest handlers (the bot handlers only queue, in the event loop)


def kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # kopf's bookkeeping lives in annotations under our own prefix, never in status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="botops.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="botops.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "botops.io/kopf-finalizer"  # we register no deletion handler: never added
    # Watches can stall silently without timeouts (nolar/kopf#1120); bookmarks keep them cheap.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.watching.inactivity_timeout = 600
    settings.posting.level = logging.WARNING  # our own events say what happened; kopf's would repeat it
    settings.scanning.disabled = True  # no cluster-wide CRD/namespace listing: least privilege
    settings.peering.standalone = True  # exactly-one is our Lease's job
    settings.execution.max_workers = KOPF_THREADS
    return settings


class Operator:
    def __init__(self, settings: OperatorSettings, kubeconfig: str | None = None) -> None:
        memory.limit_arenas()  # before any thread starts
        self.settings = settings
        if kubeconfig:
            os.environ["KUBECONFIG"] = kubeconfig  # kopf logs in through the kubernetes client's config
        # the reconcile workers, kopf's threads, the sync's writers and the periodic pass each hold one at once
        self.api = api_client(kubeconfig, connections=RECONCILE_WORKERS + KOPF_THREADS + settings.sync_workers + 2)
        self.metrics = OperatorMetrics()
        # a connection for each thread that may hold one at once (the reconcile workers, kopf's, the sync's, the
        # pass and the LISTEN loop), kept open: a burst of new bots otherwise queues for a pool of 5
        engine = create_engine(
            settings.database_url,
            connect_args={"connect_timeout": 5},
            pool_size=RECONCILE_WORKERS + KOPF_THREADS + settings.sync_workers + 2,
            max_overflow=4,
        )
        self.repo = BotRepository(engine)
        cluster = Cluster(self.api, "reconciler", self.metrics.api_writes)
        self.alerts = OwnerAlerts(settings, cluster, self.repo, self.metrics.registry)
        self.reconciler = Reconciler(settings, cluster, self.repo, self.metrics, self.alerts)
        self.backtests = BacktestReconciler(
            settings, cluster, BacktestStore(engine), self.reconciler.ensure_namespace_objects
        )
        watches_bots_namespace = settings.all_namespaces or settings.namespace in (None, "", settings.bots_namespace)
        self.syncer = Syncer(
            settings,
            Cluster(self.api, "syncer", self.metrics.api_writes),
            self.repo,
            self.metrics,
            self.reconciler.bots if watches_bots_namespace else None,
        )
        self.stop = threading.Event()
        self.leading = False
        self.exit_code = 0

    # ----------------------------------------------------------------------------------- probes

    def alive(self) -> tuple[bool, str]:
        return True, "leader" if self.leading else "standby"

    def ready(self) -> tuple[bool, str]:
        return (True, "leading") if self.leading else (True, "standby, waiting for the Lease")

    # ---------------------------------------------------------------------------------- running

    def run(self) -> int:
        self._check_schema()
        health = HealthServer(self.settings.health_port, self.metrics.registry, self.alive, self.ready).start()
        log.info("metrics, /healthz and /readyz on port %s", health.port)
        admission = AdmissionServer(self.settings, self.api).start() if self.settings.webhook_port else None
        elector = LeaderElector(
            self.api,
            self.settings.lease_namespace(),
            self.settings.leader_lease(),
            self.settings.identity,
            self.settings.leader_lease_seconds,
            self.settings.leader_renew_seconds,
        )
        try:
            if self.settings.leader_election and not self._wait_for_leadership(elector):
                return 0
            self.leading = True
            self.metrics.leader.set(1)
            namespace = None if self.settings.all_namespaces else self.settings.namespace
            self.reconciler.pods.seed(self.reconciler.cluster.iter_bot_pods(namespace))  # before the watch starts
            background = [
                threading.Thread(target=self.syncer.run, args=(self.stop,), name="sync", daemon=True),
                threading.Thread(target=self._periodic_pass, name="resync", daemon=True),
            ]
            for i in range(RECONCILE_WORKERS):  # not joined at shutdown: each waits on the queue
                threading.Thread(target=self._reconcile_queued, name=f"reconcile-{i}", daemon=True).start()
            if self.settings.leader_election:
                background.append(
                    threading.Thread(
                        target=elector.keep_leading, args=(self.stop, self._lost), name="leader", daemon=True
                    )
                )
            for thread in background:
                thread.start()
            self._run_kopf()
            log.info("Shutting down trading service gracefully...")
            self.stop.set()
            for thread in background:
                thread.join(timeout=10)
        finally:
            self.alerts.close()
            elector.release()
            self.metrics.leader.set(0)
            if admission is not None:
                admission.stop()
            health.stop()
        log.info("Trading service stopped")
        return self.exit_code

    def _check_schema(self) -> None:
        current, head = revision.database_revision(self.settings.database_url), revision.shipped_head()
        if current != head:
            raise SystemExit(
                f"bot-operator: the database is at revision {current or '(empty)'}, this operator "
                f"needs {head}: run 'bot-operator db upgrade' first"
            )

    def _wait_for_leadership(self, elector: LeaderElector) -> bool:
        waiter = threading.Thread(target=elector.wait_for_leadership, args=(self.stop,), daemon=True)
        waiter.start()
        import signal

        previous = {s: signal.signal(s, lambda *_: self.stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
        while waiter.is_alive():
            waiter.join(0.2)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        return elector.is_leader and not self.stop.is_set()

    def _lost(self) -> None:
        self.exit_code = 1  # crash-only: restart as a candidate rather than act without the Lease
        self.stop.set()

    def _run_kopf(self) -> None:
        scope: dict[str, Any] = (
            {"clusterwide": True}
            if self.settings.all_namespaces or not self.settings.namespace
            else {"namespaces": [self.settings.namespace]}
        )

        async def operate() -> None:
            try:
                await kopf.operator(
                    settings=kopf_settings(),
                    standalone=True,
                    stop_flag=self.stop,
                    memo=kopf.Memo(reconciler=self.reconciler, backtests=self.backtests),
                    **scope,
                )
            finally:
                self.stop.set()  # also releases kopf's own wait on the flag, so the loop can close

        # kopf logs every handler run at INFO; our own log lines say what matters
        logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, logging.getLogger().level))
        asyncio.run(operate())

    def _reconcile_queued(self) -> None:
        queue = self.reconciler.queue
        while True:
            key, work = queue.take()
            try:
                self.reconciler.handle(key, work)
            except DB_ERRORS as exc:  # an outage: said on the bot; the next pass tries again
                log.warning("reconcile of %s/%s: database unreachable (%s)", *key, type(exc).__name__)
            except Exception:
                log.exception("reconcile of %s/%s failed", *key)
            finally:
                queue.done(key)

    def _pass_bots(self, namespace: str | None, heal: bool) -> list[PassBot]:
        """The bots a pass looks at: as the watch last showed them, or (healing) as listed now, with their pods."""
        cluster, bots = self.reconciler.cluster, self.reconciler.bots
        if heal:  # the listing goes into the watch's cache (the newer copy wins), a page at a time
            listed = set()
            for body in cluster.iter_bots(namespace):
                if self.settings.owns_bot(*(key := key_of(body))):
                    bots.put(body, bot_digest(body), bot_source(body))
                    listed.add(key)
            bots.retain(listed)
            self.reconciler.pods.heal(cluster.iter_bot_pods(namespace))  # into the watch's index: never older
        return [(key, seen.digest, seen.source, partial(body_of, seen)) for key, seen in bots.items()]

    def _periodic_pass(self) -> None:
        """Reconcile every bot whose inputs changed or whose time came (notices stale heartbeats and restarts
        due), from what the watches showed; every children_check_seconds (and first) from listings, which heals
        an event the watches missed and marks rows of vanished bots stopped."""
        namespace = None if self.settings.all_namespaces else self.settings.namespace
        heal_at = time.monotonic()
        while not self.stop.wait(self.settings.resync_interval):
            try:
                started = time.monotonic()
                heal = started >= heal_at
                bots = self._pass_bots(namespace, heal)
                rows = self.repo.get_bots()  # after the bots: a bot listed has its row listed (rows come first)
                listing = PassListing({row.external_ref: row for row in rows if row.external_ref})
                phases: Counter[str] = Counter()
                present = set()
                for key, digest, source, load in bots:
                    try:
                        phase = self.reconciler.reconcile_listed(key, digest, source, load, listing)
                    except Exception:
                        phase = "Unknown"
                        log.exception("reconcile of %s/%s failed", *key)
                    if phase is not None:
                        phases[phase] += 1
                        present.add("/".join(key))
                self.metrics.set_phases(dict(phases))
                if heal:
                    self._mark_vanished(present, namespace, rows)
                    heal_at = started + self.settings.children_check_seconds
                if self.settings.runtime_database_identity == "per-bot":
                    self.reconciler.identities.drop_retired()
                self.backtests.pass_all(namespace)
                del listing, bots, rows
                memory.trim()  # the pass's listings are garbage now: give their pages back
            except DB_ERRORS as exc:  # an outage, already reported per bot: no traceback every pass
                log.warning("periodic pass: database unreachable (%s); retrying", type(exc).__name__)
            except Exception:
                log.exception("periodic pass failed; retrying")

    def _mark_vanished(self, present: set[str], namespace: str | None, rows: list[BotRow]) -> None:
        vanished = [
            row.id
            for row in rows
            if row.source == c.SOURCE_KUBERNETES
            and row.external_ref
            and self.settings.owns_bot(*row.external_ref.split("/", 1))
            and row.external_ref not in present
            and row.status != "stopped"
            and (namespace is None or row.external_ref.startswith(f"{namespace}/"))
        ]
        if vanished:
            self.repo.mark_stopped(vanished, "TradingBot deleted")
