"""Each bot pod as the pod watch last showed it, so a reconcile reads no pod from the apiserver.

Kept as a PodView (what a decision reads of a pod), never the body: a thousand pods cost little memory. Seeded
by one paged listing before the watch starts; until then `get` answers None and the caller reads the pod.
Watch events and our own creates and deletes arrive out of order with each other: an update older than what the
index holds (a lower resourceVersion: etcd's revisions only grow) is ignored, and a deleted pod stays as "none" at
its last version, so a late event of it cannot bring it back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from bot_operator.builders.lifecycle import PodView
from bot_runtime.api import constants as c


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    """An object's (namespace, name)."""
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def resource_version(meta: dict[str, Any]) -> int:
    return version_number(meta.get("resourceVersion"))


def version_number(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:  # opaque to clients by contract; etcd's are integers, anything else never wins
        return 0


class PodIndex:
    def __init__(self) -> None:
        self._pods: dict[tuple[str, str], tuple[int, PodView]] = {}  # (resourceVersion, view); PodView(): gone
        self._lock = threading.Lock()
        self._seeded = False

    def seed(self, pods: Iterable[dict[str, Any]]) -> None:
        for pod in pods:
            self.update(pod)
        self._seeded = True

    def heal(self, pods: Iterable[dict[str, Any]]) -> None:
        """A listing taken now: newer states than ours are taken, and a pod we hold that the listing lacks is gone
        (a deletion the watch missed) when it is older than the listing's newest pod (so it existed before the
        listing's snapshot, which no longer has it)."""
        listed: set[tuple[str, str]] = set()
        newest = 0
        for pod in pods:
            self.update(pod)
            listed.add(key_of(pod))
            newest = max(newest, resource_version(pod.get("metadata") or {}))
        with self._lock:
            for key, (version, view) in list(self._pods.items()):
                if key not in listed and view.exists and version < newest:
                    self._pods[key] = (version, PodView())

    def update(self, pod: dict[str, Any]) -> None:
        self._put(pod, PodView.of(pod, c.ANNOTATION_SPEC_HASH))

    def remove(self, pod: dict[str, Any]) -> None:
        """The watch saw it deleted."""
        self._put(pod, PodView())

    def deleting(self, namespace: str, name: str) -> None:
        """We just deleted it: gone, until the watch says it is still terminating (a newer version)."""
        with self._lock:
            version = self._pods.get((namespace, name), (0, PodView()))[0]
            self._pods[(namespace, name)] = (version, PodView())

    def _put(self, pod: dict[str, Any], view: PodView) -> None:
        key, version = key_of(pod), resource_version(pod.get("metadata") or {})
        with self._lock:
            held = self._pods.get(key)
            if held is None or version > held[0]:  # etcd's versions only grow: a lower one is an older state
                self._pods[key] = (version, view)

    def get(self, namespace: str, name: str) -> PodView | None:
        """The pod's view, PodView() when there is none, None while the index is not seeded yet."""
        if not self._seeded:
            return None
        with self._lock:
            held = self._pods.get((namespace, name))
        return held[1] if held else PodView()
