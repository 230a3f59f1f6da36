"""A Backtest's pod and the status its observation gives (pure: the reconcile in bot_operator.backtest_runs
reads and writes).

The pod runs `bot-runtime backtest-job` once (restartPolicy Never) with the job the operator resolved in its
environment: it needs no API access (no token mounted), only the runtime's database Secret to write the
result. It carries the runtime component label, so the namespace's runtime NetworkPolicy applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot_operator.builders.names import child_name, label_value
from bot_operator.builders.pod import (
    RUNTIME_COMPONENT,
    SECRETS_DIR,
    restricted_container_security,
    restricted_pod_security,
    secret_mounts,
    secret_volume,
    tmp_volume,
)
from bot_operator.builders.rbac import controller_reference
from bot_operator.settings import OperatorSettings
from bot_runtime.api import constants as c
from bot_runtime.api.backtest_resource import FINAL_STATES, JOB_ENV, BacktestStatus, BacktestSummary

DATA_DIR = "/var/lib/botops"  # the downloaded candles of a history run
DATA_SIZE_LIMIT = "2Gi"  # a year of 1m candles for one symbol is about 40 MiB of CSV
LABEL_BACKTEST = "botops.io/backtest"
ANNOTATION_GENERATION = "botops.io/generation"


@dataclass(frozen=True)
class BacktestObject:
    """A Backtest as the operator reads it (the spec stays raw: an invalid spec is still a Backtest)."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: BacktestStatus
    deleting: bool

    @classmethod
    def from_resource(cls, body: dict[str, Any]) -> BacktestObject:
        meta = body.get("metadata") or {}
        raw_status = body.get("status") or {}
        try:
            status = BacktestStatus.model_validate(raw_status, strict=False)
        except ValueError:  # a status the schema no longer knows: read as empty, rewritten by the next decision
            status = BacktestStatus()
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            spec=dict(body.get("spec") or {}),
            status=status,
            deleting=bool(meta.get("deletionTimestamp")),
        )

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        """Its current generation has run to an end (Succeeded or Failed): nothing left to do for it."""
        return self.status.observed_generation == self.generation and self.status.state in FINAL_STATES


def backtest_pod_name(name: str) -> str:
    return child_name(name, "backtest")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_backtest_pod(backtest: BacktestObject, job: str, image: str, settings: OperatorSettings) -> dict[str, Any]:
    database = secret_volume("database", settings.backtest_database_secret(), {"DATABASE_URL": "url"})
    env = [
        {"name": JOB_ENV, "value": job},
        {"name": "BOTOPS_OHLCV_CACHE", "value": f"{DATA_DIR}/ohlcv"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "DATABASE_URL_FILE", "value": f"{SECRETS_DIR}/database/url"},
        *({"name": k, "value": v} for k, v in sorted(settings.runtime_env.items())),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": backtest_pod_name(backtest.name),
            "namespace": backtest.namespace,
            "labels": {
                c.LABEL_NAME: "tradingbot-backtest",
                c.LABEL_MANAGED_BY: c.MANAGER,
                "app.kubernetes.io/component": RUNTIME_COMPONENT,
                LABEL_BACKTEST: label_value(backtest.name),
            },
            "annotations": {
                ANNOTATION_GENERATION: str(backtest.generation),
                # make lint's checkov: a run-once batch pod serves nothing a probe could ask
                "checkov.io/skip1": "CKV_K8S_8=a backtest pod runs once and serves no endpoint to probe",
                "checkov.io/skip2": "CKV_K8S_9=a backtest pod runs once and serves no endpoint to probe",
            },
            "ownerReferences": [controller_reference(c.BACKTEST_KIND, backtest.name, backtest.uid)],
        },
        "spec": {
            "automountServiceAccountToken": False,  # the job is resolved: the pod never reads the API
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "securityContext": restricted_pod_security(),
            "containers": [
                {
                    "name": "backtest",
                    "image": image,
                    "imagePullPolicy": settings.runtime_image_pull_policy,
                    "command": ["bot-runtime", "backtest-job"],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "env": env,
                    "resources": settings.default_resources(),
                    "securityContext": restricted_container_security(),
                    "volumeMounts": [
                        {"name": "data", "mountPath": DATA_DIR},
                        {"name": "tmp", "mountPath": "/tmp"},
                        *secret_mounts([database]),
                    ],
                }
            ],
            "volumes": [
                {"name": "data", "emptyDir": {"sizeLimit": DATA_SIZE_LIMIT}},
                tmp_volume(),
                database,
            ],
        },
    }


def pod_generation(pod: dict[str, Any]) -> int | None:
    value = (pod.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_GENERATION)
    return int(value) if value and value.isdigit() else None


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return dict(terminated)
    return {}


def _waiting(pod: dict[str, Any]) -> str | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
            return f"{waiting.get('reason')}: {waiting.get('message') or ''}".strip(": ")
    return None


def observed_status(
    backtest: BacktestObject,
    pod: dict[str, Any],
    stored: tuple[int, str, dict[str, Any]] | None,
) -> BacktestStatus:
    """The status a run's pod (of this generation) gives; `stored` is the run's result row (id, fill model,
    metrics) once the pod has succeeded."""
    base = backtest.status.model_copy(
        update={"observed_generation": backtest.generation, "pod": pod["metadata"]["name"]}
    )
    phase = pod.get("status", {}).get("phase") or "Pending"
    if phase == "Succeeded":
        if stored is None:
            return failed_status(base, "the run ended without writing its result to the database")
        result_id, model, metrics = stored
        summary = BacktestSummary.from_metrics(metrics, model)
        return base.model_copy(
            update={
                "state": "Succeeded",
                "message": f"result in backtest_results row {result_id}",
                "result_id": result_id,
                "summary": summary,
                "finished_at": _terminated(pod).get("finishedAt") or now_iso(),
            }
        )
    if phase == "Failed":
        terminated = _terminated(pod)
        said = (terminated.get("message") or "").strip().splitlines()
        why = said[-1] if said else f"exit code {terminated.get('exitCode', '?')}"
        return failed_status(base, why, terminated.get("finishedAt"))
    waiting = _waiting(pod)
    state = "Running" if phase == "Running" else "Pending"
    message = waiting or ("running" if state == "Running" else "the pod is being scheduled")
    return base.model_copy(update={"state": state, "message": message})


def failed_status(base: BacktestStatus, message: str, at: str | None = None) -> BacktestStatus:
    return base.model_copy(update={"state": "Failed", "message": message, "finished_at": at or now_iso()})
