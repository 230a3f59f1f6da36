"""The operator's intake from the watches: a queue that holds each bot once, the cache of bots and the pod index."""

from __future__ import annotations

import threading

from bot_operator.work_queue import BotCache, WorkQueue, body_of


def test_a_bot_is_queued_once_however_many_events_arrive_before_a_worker_takes_it() -> None:
    queue = WorkQueue()
    for _ in range(5):
        queue.put(("ns", "a"))
    queue.put(("ns", "b"), pod_changed=True)
    queue.put(("ns", "a"), pod_changed=True)
    assert len(queue) == 2
    key, work = queue.take()
    assert key == ("ns", "a") and work.pod_changed and work.forget is None  # first come, first served
    assert queue.take()[0] == ("ns", "b")


def test_a_bot_changed_while_its_worker_is_busy_waits_for_that_worker() -> None:
    queue = WorkQueue()
    queue.put(("ns", "a"))
    key, _ = queue.take()
    queue.put(key)  # an event during its reconcile
    queue.put(("ns", "b"))
    assert queue.take()[0] == ("ns", "b"), "a busy bot was handed to a second worker"
    taken: list[object] = []
    waiter = threading.Thread(target=lambda: taken.append(queue.take()[0]), daemon=True)
    waiter.start()
    waiter.join(0.2)
    assert taken == []  # still busy: nobody else may take it
    queue.done(key)
    waiter.join(5)
    assert taken == [("ns", "a")]


def test_a_deletion_is_kept_with_later_events_of_the_same_name() -> None:
    queue = WorkQueue()
    queue.put(("ns", "a"), forget={"botops.io/source": "kubernetes"})
    queue.put(("ns", "a"))  # applied again under the name before a worker came
    _, work = queue.take()
    assert work.forget == {"botops.io/source": "kubernetes"}


def bot(version: str, phase: str) -> dict[str, object]:
    return {
        "metadata": {"namespace": "ns", "name": "a", "resourceVersion": version, "managedFields": [{"m": 1}]},
        "status": {"phase": phase},
    }


def test_the_cache_keeps_the_newest_copy_without_managed_fields() -> None:
    cache = BotCache()
    cache.put(bot("7", "Running"), 1, "kubernetes")
    cache.put(bot("5", "Starting"), 2, "kubernetes")  # an older copy arriving late
    seen = cache.get(("ns", "a"))
    assert seen is not None and seen.digest == 1 and seen.version == 7
    body = body_of(seen)
    assert body["status"] == {"phase": "Running"} and "managedFields" not in body["metadata"]
    cache.retain(set())
    assert cache.get(("ns", "a")) is None


def pod(name: str, version: int) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(version)}, "status": {}}


def test_a_listing_heals_a_deletion_the_pod_watch_missed_but_never_a_newer_pod() -> None:
    from bot_operator.pod_index import PodIndex

    index = PodIndex()
    index.seed([pod("missed", 10), pod("kept", 11)])
    index.update(pod("created-after-the-listing", 40))
    index.heal([pod("kept", 20), pod("other", 30)])  # the listing's snapshot: "missed" was deleted meanwhile
    assert not index.get("ns", "missed").exists
    assert index.get("ns", "kept").exists and index.get("ns", "other").exists
    assert index.get("ns", "created-after-the-listing").exists
