"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it.

Exactly one replica acts. A candidate takes the Lease when it is free or expired (optimistic
concurrency on resourceVersion decides ties); the leader renews it every few seconds; a leader that
cannot renew within the lease duration stops acting (crash-only: the process exits and restarts).
A leader that stops cleanly hands the Lease back, so a standby takes over at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float,
        renew_seconds: float,
    ) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self.is_leader = False
        self.last_renew = 0.0

    def _body(self, transitions: int, acquired: datetime | None = None) -> dict[str, Any]:
        now = _now()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_seconds)),
            "acquireTime": _micro(acquired or now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            try:
                self.coordination.create_namespaced_lease(
                    self.namespace,
                    {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._body(0)},
                )
            except ApiException as err:
                if err.status == 409:
                    return False
                raise
            return True
        spec = lease.spec
        holder = spec.holder_identity or ""
        renewed = _parse(spec.renew_time) or datetime.min.replace(tzinfo=UTC)
        duration = timedelta(seconds=spec.lease_duration_seconds or self.lease_seconds)
        mine = holder == self.identity
        if not mine and holder and _now() < renewed + duration:
            return False  # somebody else leads and is alive
        transitions = (spec.lease_transitions or 0) + (0 if mine else 1)
        body = {
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": lease.metadata.resource_version,
            },
            "spec": self._body(transitions, _parse(spec.acquire_time) if mine else None),
        }
        try:
            self.coordination.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote first
                return False
            raise
        return True

    def wait_for_leadership(self, stop: threading.Event) -> bool:
        log.info("waiting to lead (Lease %s/%s as %s)", self.namespace, self.name, self.identity)
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    self.is_leader, self.last_renew = True, time.monotonic()
                    log.info("became the leader (%s)", self.identity)
                    return True
            except ApiException as exc:
                log.warning("leader election: %s", exc.reason)
            stop.wait(self.renew_seconds)
        return False

    def keep_leading(self, stop: threading.Event, on_lost: Callable[[], None]) -> None:
        """Renew until stopped; call on_lost once renewal failed for the whole lease duration."""
        while not stop.wait(self.renew_seconds):
            try:
                if self.try_acquire_or_renew():
                    self.last_renew = time.monotonic()
                    continue
            except Exception as exc:
                log.warning("lease renewal failed: %s", exc)
            if time.monotonic() - self.last_renew > self.lease_seconds:
                self.is_leader = False
                log.error("lost the leader lease %s/%s; stopping", self.namespace, self.name)
                on_lost()
                return

    def release(self) -> None:
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = ""
            lease.spec.lease_duration_seconds = 1
            self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
            log.info("released the leader lease")
        except ApiException as exc:
            log.warning("could not release the leader lease: %s", exc.reason)
