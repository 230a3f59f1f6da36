"""The operator's calls to the Kubernetes API, in one place: every write is counted by component."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter

from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBot

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
RETRY_FOR_SECONDS = 30.0  # a write the apiserver asks us to repeat is repeated this long, then fails the reconcile
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0
PAGE = 250  # objects per list call: bounds what a full pass holds at once


def api_message(exc: ApiException) -> str:
    """The apiserver's own words for a refusal (its Status message), else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def retry_delay(exc: ApiException, backoff: float) -> float | None:
    """How long to wait before repeating a refused write, or None when repeating it cannot help. 429: the
    apiserver's max-in-flight limit or API priority and fairness turned it away, and says when to come back."""
    if exc.status == 429:
        header = (exc.headers or {}).get("Retry-After", "")
        return max(float(header), backoff) if header.isdigit() else backoff
    return None


class Cluster:
    """Reads and writes of one component (reconciler or syncer); `writes` counts its API writes."""

    def __init__(self, api: client.ApiClient, component: str, writes: Counter | None = None) -> None:
        self.api = api
        self.component = component
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.network = client.NetworkingV1Api(api)
        self.objects = client.CustomObjectsApi(api)
        self._writes = writes

    def _write(self, verb: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API write, counted; repeated with backoff while the apiserver asks for it (retry_delay)."""
        deadline, backoff = time.monotonic() + RETRY_FOR_SECONDS, FIRST_RETRY_SECONDS
        while True:
            if self._writes is not None:
                self._writes.labels(component=self.component, verb=verb).inc()
            try:
                return call(*args, **kwargs)
            except ApiException as exc:
                delay = retry_delay(exc, backoff)
                if delay is None or time.monotonic() + delay > deadline:
                    raise
                log.debug("%s refused (%s %s); again in %.1f s", verb, exc.status, exc.reason, delay)
                time.sleep(delay)
                backoff = min(backoff * 2, MAX_RETRY_SECONDS)

    def _write_raw(self, verb: str, call: Callable[..., Any], *args: Any) -> bytes:
        """A write whose answer is not made into the client's models (about 1 ms of CPU an object, at 7,000 writes
        for 1,000 new bots); reading the body returns the connection to the pool."""
        return bytes(self._write(verb, call, *args, _preload_content=False).data)

    def to_dict(self, obj: Any) -> dict[str, Any]:
        return dict(self.api.sanitize_for_serialization(obj))

    # ------------------------------------------------------------------------------ TradingBots

    def list_bots(self, namespace: str | None, label_selector: str | None = None) -> list[dict[str, Any]]:
        return list(self.iter_bots(namespace, label_selector))

    def iter_bots(self, namespace: str | None, label_selector: str | None = None) -> Iterator[dict[str, Any]]:
        """Every TradingBot, a page at a time."""
        selector = label_selector or ""
        if namespace:
            list_namespaced = self.objects.list_namespaced_custom_object
            return _paged(list_namespaced, c.GROUP, c.VERSION, namespace, c.PLURAL, label_selector=selector)
        return _paged(self.objects.list_cluster_custom_object, c.GROUP, c.VERSION, c.PLURAL, label_selector=selector)

    def read_bot(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.objects.get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def get_bot(self, namespace: str, name: str) -> TradingBot | None:
        body = self.read_bot(namespace, name)
        return None if body is None else TradingBot.from_resource(body)

    def create_bot(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self._write(
                "create", self.objects.create_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.PLURAL, body
            )
        )

    def replace_bot_spec(
        self, namespace: str, name: str, spec: dict[str, Any], labels: dict[str, str], annotations: dict[str, str]
    ) -> None:
        """Replace the whole spec (a merge patch would keep keys a person added) and our metadata."""
        ops = [{"op": "replace", "path": "/spec", "value": spec}]
        ops += [{"op": "add", "path": f"/metadata/labels/{_escape(k)}", "value": v} for k, v in labels.items()]
        ops += [
            {"op": "add", "path": f"/metadata/annotations/{_escape(k)}", "value": v} for k, v in annotations.items()
        ]
        self._patch_bot(namespace, name, ops, JSON_PATCH)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        try:
            return dict(self.core.read_namespace(namespace).metadata.labels or {})
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise

    def patch_bot_metadata(
        self, namespace: str, name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
    ) -> str:
        meta = {k: v for k, v in {"labels": labels, "annotations": annotations}.items() if v}
        return self._patch_bot(namespace, name, {"metadata": meta}, MERGE_PATCH)

    def patch_bot_status(self, namespace: str, name: str, status: dict[str, Any]) -> str:
        """A merge patch of operator-owned status fields (status.runtime belongs to the runtime)."""
        return self._patch_bot(namespace, name, {"status": status}, MERGE_PATCH, status=True)

    def _patch_bot(self, namespace: str, name: str, body: Any, content_type: str, status: bool = False) -> str:
        """The bot's resourceVersion after the patch."""
        patch = (
            self.objects.patch_namespaced_custom_object_status
            if status
            else self.objects.patch_namespaced_custom_object
        )
        patched = self._write(
            "patch", patch, c.GROUP, c.VERSION, namespace, c.PLURAL, name, body, _content_type=content_type
        )
        return str(((patched or {}).get("metadata") or {}).get("resourceVersion", ""))

    def delete_bot(self, namespace: str, name: str) -> None:
        try:
            self._write(
                "delete", self.objects.delete_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.PLURAL, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    # ----------------------------------------------------------------------------- bot children

    # -------------------------------------------------------------------------------- Backtests

    def list_backtests(self, namespace: str | None) -> list[dict[str, Any]]:
        result: Any
        if namespace:
            result = self.objects.list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.BACKTEST_PLURAL)
        else:
            result = self.objects.list_cluster_custom_object(c.GROUP, c.VERSION, c.BACKTEST_PLURAL)
        return list(result.get("items", []))

    def read_backtest(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.objects.get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.BACKTEST_PLURAL, name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_backtest_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        patch = self.objects.patch_namespaced_custom_object_status
        body = {"status": status}
        self._write(
            "patch", patch, c.GROUP, c.VERSION, namespace, c.BACKTEST_PLURAL, name, body, _content_type=MERGE_PATCH
        )

    # ------------------------------------------------------------------------------------- pods

    def iter_bot_pods(self, namespace: str | None) -> Iterator[dict[str, Any]]:
        """Every bot pod, a page at a time: a caller that keeps what it needs of each never holds a thousand pod
        bodies at once."""
        selector = f"{c.LABEL_MANAGED_BY}={c.MANAGER}"
        if namespace:
            return _paged(self.core.list_namespaced_pod, namespace, label_selector=selector)
        return _paged(self.core.list_pod_for_all_namespaces, label_selector=selector)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.to_dict(self.core.read_namespaced_pod(name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_pod(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """Create; the pod as created, or None when the name is still taken (the previous pod has not gone yet)."""
        try:
            response = self._write(
                "create", self.core.create_namespaced_pod, pod["metadata"]["namespace"], pod, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise
        return dict(json.loads(response.data))

    def delete_pod(self, namespace: str, name: str) -> None:
        try:
            self._write_raw("delete", self.core.delete_namespaced_pod, name, namespace)  # with its grace period
        except ApiException as exc:
            if exc.status != 404:
                raise

    def secret_exists(self, namespace: str, name: str) -> bool:
        try:
            # unread and undecoded: only whether it exists; draining returns the connection to the pool
            response: Any = self.core.read_namespaced_secret(name, namespace, _preload_content=False)
            response.drain_conn()
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def ensure(self, obj: dict[str, Any], likely_new: bool = False) -> bool:
        """Create the object if missing, or put back the fields we own if they drifted. True if written.
        `likely_new`: created first and read only if it exists (a new bot's children: one call, not two)."""
        kind, meta = obj["kind"], obj["metadata"]
        read, create, replace = self._verbs(kind)
        if likely_new and self._create_if_absent(create, obj):
            return True
        try:
            current = json.loads(read(meta["name"], meta["namespace"], _preload_content=False).data)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self._create_if_absent(create, obj)
            return True
        owned: list[str] = [k for k in ("rules", "roleRef", "subjects", "automountServiceAccountToken") if k in obj]
        if kind == "NetworkPolicy":
            owned = ["spec"]
        if kind == "Secret":
            wanted = {k: _b64(v) for k, v in obj["stringData"].items()}
            drifted = current.get("data") != wanted
        else:
            drifted = any(current.get(k) != obj[k] for k in owned)
        if drifted:
            body = {**obj, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}
            self._write_raw("replace", replace, meta["name"], meta["namespace"], body)
        return drifted

    def _create_if_absent(self, create: Callable[..., Any], obj: dict[str, Any]) -> bool:
        """False when it exists already."""
        try:
            self._write_raw("create", create, obj["metadata"]["namespace"], obj)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return False
        return True

    def _verbs(self, kind: str) -> tuple[Any, Any, Any]:
        if kind == "ServiceAccount":
            return (
                self.core.read_namespaced_service_account,
                self.core.create_namespaced_service_account,
                self.core.replace_namespaced_service_account,
            )
        if kind == "Role":
            return (self.rbac.read_namespaced_role, self.rbac.create_namespaced_role, self.rbac.replace_namespaced_role)
        if kind == "RoleBinding":
            return (
                self.rbac.read_namespaced_role_binding,
                self.rbac.create_namespaced_role_binding,
                self.rbac.replace_namespaced_role_binding,
            )
        if kind == "NetworkPolicy":
            return (
                self.network.read_namespaced_network_policy,
                self.network.create_namespaced_network_policy,
                self.network.replace_namespaced_network_policy,
            )
        if kind == "Secret":
            return (
                self.core.read_namespaced_secret,
                self.core.create_namespaced_secret,
                self.core.replace_namespaced_secret,
            )
        raise ValueError(f"cannot ensure a {kind}")

    # ----------------------------------------------------------------------------------- events

    def event(self, bot: TradingBot, type: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        try:
            self._write_raw(
                "event",
                self.core.create_namespaced_event,
                bot.namespace,
                client.CoreV1Event(
                    metadata=client.V1ObjectMeta(generate_name=f"{bot.name}."),
                    involved_object=client.V1ObjectReference(
                        api_version=c.API_VERSION,
                        kind=c.KIND,
                        name=bot.name,
                        namespace=bot.namespace,
                        uid=bot.metadata.uid or None,
                    ),
                    reason=reason,
                    message=message[:1024],
                    type=type,
                    first_timestamp=now,
                    last_timestamp=now,
                    count=1,
                    source=client.V1EventSource(component="tradingbot-operator", host=socket.gethostname()),
                    reporting_component="botops.io/tradingbot-operator",
                    reporting_instance=socket.gethostname(),
                ),
            )
        except ApiException as exc:  # an event is a courtesy: never fail a reconcile for it
            log.warning("could not post event %s on %s: %s", reason, bot.ref, exc.reason)


def _paged(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """The items of a list call, PAGE at a time, as plain JSON (the client's models cost ~1 ms an object)."""
    token: str | None = None
    while True:
        more = {"_continue": token} if token else {}
        body = json.loads(call(*args, limit=PAGE, _preload_content=False, **kwargs, **more).data)
        yield from body.get("items") or []
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _b64(value: str) -> str:
    import base64

    return base64.b64encode(value.encode()).decode()
