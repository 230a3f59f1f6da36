"""The reconcile of one Backtest: validate, resolve the bot, run one pod per spec generation, report.

Called on Backtest events, on its pod's events and by the periodic pass (a Backtest waiting for its
TradingBot); level-based and idempotent like the bots' reconcile. A finished run (Succeeded or Failed of the
current generation) is left alone: its pod stays for its log, and a changed spec runs again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from bot_operator.builders.backtest_pod import (
    BacktestObject,
    backtest_pod_name,
    build_backtest_pod,
    failed_status,
    now_iso,
    observed_status,
    pod_generation,
)
from bot_operator.builders.pod import image_refusal
from bot_operator.kube import Cluster, api_message
from bot_operator.settings import OperatorSettings
from bot_runtime.api import constants as c
from bot_runtime.api.backtest_resource import (
    BacktestSpec,
    BacktestStatus,
    job_document,
    validate_backtest,
)
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.api.validation import validate_spec
from bot_runtime.db.backtest_results import BacktestStore

log = logging.getLogger(__name__)


class BotUnavailable(Exception):
    """The named TradingBot cannot be backtested now; `final` when waiting will not help."""

    def __init__(self, message: str, final: bool) -> None:
        super().__init__(message)
        self.final = final


class BacktestReconciler:
    def __init__(
        self,
        settings: OperatorSettings,
        cluster: Cluster,
        store: BacktestStore,
        ensure_namespace: Callable[[str], None],
    ) -> None:
        self.settings, self.cluster, self.store = settings, cluster, store
        self.ensure_namespace = ensure_namespace  # the runtime's database Secret and NetworkPolicy
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def seen(self, namespace: str, name: str) -> None:
        if self.settings.owns_bot(namespace, name):
            self.reconcile(namespace, name)

    def pod_changed(self, namespace: str, owner_references: list[dict[str, Any]]) -> None:
        owner = next((o for o in owner_references if o.get("kind") == c.BACKTEST_KIND), None)
        if owner is not None:
            self.seen(namespace, owner["name"])

    def pass_all(self, namespace: str | None) -> None:
        """Every unfinished Backtest (one waiting for its TradingBot starts once the bot is there)."""
        for body in self.cluster.list_backtests(namespace):
            backtest = BacktestObject.from_resource(body)
            if not backtest.finished:
                try:
                    self.seen(backtest.namespace, backtest.name)
                except Exception:
                    log.exception("reconcile of backtest %s failed", backtest.ref)

    def reconcile(self, namespace: str, name: str) -> None:
        with self._locks[(namespace, name)]:
            body = self.cluster.read_backtest(namespace, name)
            if body is None:
                self._locks.pop((namespace, name), None)
                return
            backtest = BacktestObject.from_resource(body)
            if backtest.deleting or backtest.finished:
                return
            self._write(backtest, self._decide(backtest))

    def _decide(self, backtest: BacktestObject) -> BacktestStatus:
        base = backtest.status.model_copy(update={"observed_generation": backtest.generation})
        spec, result = validate_backtest(backtest.spec)
        if spec is None:
            return failed_status(base, "invalid Backtest: " + "; ".join(result.errors))
        pod = self.cluster.get_pod(backtest.namespace, backtest_pod_name(backtest.name))
        if pod is not None and pod_generation(pod) != backtest.generation:
            if not pod["metadata"].get("deletionTimestamp"):
                self.cluster.delete_pod(backtest.namespace, pod["metadata"]["name"])
            return _pending(base, f"the spec changed: the run of generation {pod_generation(pod)} makes way")
        if pod is None:
            return self._start(backtest, spec, base)
        stored = None
        if pod.get("status", {}).get("phase") == "Succeeded":
            found = self.store.find(backtest.uid, backtest.generation)
            stored = None if found is None else (found.id, found.fill_model, found.metrics)
        return observed_status(backtest, pod, stored)

    def _start(self, backtest: BacktestObject, spec: BacktestSpec, base: BacktestStatus) -> BacktestStatus:
        try:
            bot = self._bot_spec(backtest.namespace, spec)
        except BotUnavailable as exc:
            return failed_status(base, str(exc)) if exc.final else _pending(base, str(exc))
        refusal = image_refusal(bot, self.settings)
        if refusal is not None:
            return failed_status(base, refusal)
        self.ensure_namespace(backtest.namespace)
        job = job_document(backtest.namespace, backtest.name, backtest.uid, backtest.generation, spec, bot)
        pod = build_backtest_pod(backtest, job, bot.runtime.image or self.settings.runtime_image, self.settings)
        try:
            created = self.cluster.create_pod(pod)
        except ApiException as exc:
            if exc.status not in (400, 403, 422):  # our inputs or a quota; anything else is retried by kopf
                raise
            return failed_status(base, f"the pod was refused: {api_message(exc)}")
        if created is None:
            return _pending(base, "waiting for the previous run's pod to go")
        log.info("backtest %s: started pod %s", backtest.ref, pod["metadata"]["name"])
        return base.model_copy(
            update={
                "state": "Pending",
                "pod": pod["metadata"]["name"],
                "message": "pod created",
                "started_at": now_iso(),
                "finished_at": None,
                "summary": None,
                "result_id": None,
            }
        )

    def _bot_spec(self, namespace: str, spec: BacktestSpec) -> TradingBotSpec:
        if spec.bot is not None:
            return spec.bot
        assert spec.bot_ref is not None  # validate_backtest: exactly one of bot and botRef
        name = spec.bot_ref.name
        body = self.cluster.read_bot(namespace, name)
        if body is None:
            raise BotUnavailable(f"waiting for TradingBot {name!r} in namespace {namespace!r} (spec.botRef)", False)
        bot, result = validate_spec(dict(body.get("spec") or {}))
        if bot is None:
            raise BotUnavailable(f"TradingBot {name!r} has an invalid spec: " + "; ".join(result.errors), True)
        return bot

    def _write(self, backtest: BacktestObject, status: BacktestStatus) -> None:
        if status == backtest.status:
            return
        body = status.to_resource()
        # a merge patch keeps what it does not name: fields a new run clears are written as null
        for field in ("summary", "resultId", "finishedAt"):
            body.setdefault(field, None)
        self.cluster.patch_backtest_status(backtest.namespace, backtest.name, body)
        if status.state != backtest.status.state:
            log.info("backtest %s: %s (%s)", backtest.ref, status.state, status.message)


def _pending(base: BacktestStatus, message: str) -> BacktestStatus:
    return base.model_copy(update={"state": "Pending", "message": message})
