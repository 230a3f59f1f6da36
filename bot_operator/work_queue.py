"""What the watches hand over: each TradingBot as last seen, and a queue of bots to reconcile.

The kopf handlers only record and enqueue (in the event loop, at once), so kopf never holds a backlog of event
bodies for bots waiting on a worker: at 1,000 new bots that backlog was most of the operator's peak memory.
A bot is queued once however many events arrive before a worker takes it (the newest copy is in the cache), and
one worker at a time handles it; events during its reconcile queue it again, behind the others.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from bot_operator.pod_index import key_of, resource_version

Key = tuple[str, str]  # (namespace, name)
SHAPE = ("uid", "generation", "labels", "annotations", "deletionTimestamp")  # metadata the sync decides from


@dataclass
class Work:
    forget: dict[str, str] | None = None  # the labels of a deleted bot: its row is released first
    pod_changed: bool = False  # reconcile even if the bot's own inputs did not change


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[Key, Work] = {}
        self._order: deque[Key] = deque()
        self._busy: set[Key] = set()

    def put(self, key: Key, *, forget: dict[str, str] | None = None, pod_changed: bool = False) -> None:
        with self._cond:
            work = self._pending.get(key)
            if work is None:
                work = self._pending[key] = Work()
                if key not in self._busy:  # a busy key is queued again when its worker is done
                    self._order.append(key)
                    self._cond.notify()
            if forget is not None:
                work.forget = forget
            work.pod_changed = work.pod_changed or pod_changed

    def take(self) -> tuple[Key, Work]:
        with self._cond:
            while not self._order:
                self._cond.wait()
            key = self._order.popleft()
            self._busy.add(key)
            return key, self._pending.pop(key)

    def done(self, key: Key) -> None:
        with self._cond:
            self._busy.discard(key)
            if key in self._pending:
                self._order.append(key)
                self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)


@dataclass(frozen=True)
class Seen:
    version: int  # resourceVersion
    digest: int  # what a reconcile decides from in it (reconcile.bot_digest)
    source: str  # its botops.io/source label
    shape: int  # what the sync compares: uid, generation (the spec), labels, annotations
    body: bytes  # compact JSON without managedFields: a tenth of the parsed body's memory


class BotCache:
    """Each TradingBot as the watch last showed it, so neither a pod event nor a periodic pass reads or lists
    the bots. The newest resourceVersion wins (etcd's revisions only grow)."""

    def __init__(self) -> None:
        self._bots: dict[Key, Seen] = {}
        self._lock = threading.Lock()
        self.changes = 0  # bots added, removed or changed in shape: the sync lists the bots only after one

    def put(self, body: dict[str, Any], digest: int, source: str) -> None:
        meta = body.get("metadata") or {}
        key, version = key_of(body), resource_version(meta)
        slim = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
        shape = hash(json.dumps([meta.get(k) for k in SHAPE], sort_keys=True, default=str))
        seen = Seen(version, digest, source, shape, json.dumps(slim, separators=(",", ":")).encode())
        with self._lock:
            held = self._bots.get(key)
            if held is None or version >= held.version:
                self._bots[key] = seen
                self.changes += held is None or held.shape != shape

    def remove(self, key: Key) -> None:
        with self._lock:
            self.changes += self._bots.pop(key, None) is not None

    def get(self, key: Key) -> Seen | None:
        with self._lock:
            return self._bots.get(key)

    def items(self) -> list[tuple[Key, Seen]]:
        with self._lock:
            return list(self._bots.items())

    def retain(self, keys: set[Key]) -> None:
        """Only these (a listing's): a deletion the watch missed leaves no bot behind."""
        with self._lock:
            kept = {key: seen for key, seen in self._bots.items() if key in keys}
            self.changes += len(kept) != len(self._bots)
            self._bots = kept


def body_of(seen: Seen) -> dict[str, Any]:
    return dict(json.loads(seen.body))
