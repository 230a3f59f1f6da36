"""kopf handlers: thin. A bot's or bot pod's event is recorded and queued for the Reconciler's workers, in the event
loop, at once: kopf holds no backlog of events waiting for a worker thread.

Imported by the runner to register them (kopf's decorators register on import).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import kopf

from bot_runtime.api import constants as c


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # KUBECONFIG is read now, not at import time (the runner may set it from --kubeconfig).
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(**kwargs)
    return kopf.login_with_service_account(**kwargs)


# Event handlers only: kopf's create/update handlers would write their bookkeeping (diff base, progress) into
# every bot, three or four PATCHes per bot; our reconcile is level-based and needs none of it.
@kopf.on.event(c.GROUP, c.VERSION, c.PLURAL)
async def bot_event(*, type: str | None, body: Any, memo: Any, **_: Any) -> None:
    memo.reconciler.watched_bot(type, dict(body))


@kopf.on.event(c.GROUP, c.VERSION, c.BACKTEST_PLURAL)
def backtest_event(*, type: str | None, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    if type != "DELETED":  # its pod goes with it (garbage collector); its result rows stay
        memo.backtests.seen(namespace, name)


@kopf.on.event("", "v1", "pods", labels={c.LABEL_MANAGED_BY: c.MANAGER})
async def pod_event(*, type: str | None, body: Any, namespace: str | None, meta: Any, memo: Any, **_: Any) -> None:
    memo.reconciler.watched_pod(type, dict(body))
    owners = [dict(o) for o in meta.get("ownerReferences") or []]
    if any(o.get("kind") == c.BACKTEST_KIND for o in owners):  # a Backtest's pod: reconciled on a thread
        await asyncio.get_running_loop().run_in_executor(None, memo.backtests.pod_changed, namespace, owners)
