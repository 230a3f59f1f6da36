"""kopf handlers: thin. Each hands the object to the Reconciler (in memo) and returns.

Imported by the runner to register them (kopf's decorators register on import).
"""

from __future__ import annotations

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
def bot_event(*, type: str | None, name: str, namespace: str | None, body: Any, memo: Any, **_: Any) -> None:
    if type == "DELETED":  # no finalizer: deletion never waits for us; this only marks the row stopped
        memo.reconciler.forget(namespace, name, dict(body.get("metadata", {}).get("labels") or {}))
    else:  # the initial listing (None), ADDED, MODIFIED
        memo.reconciler.bot_seen(namespace, name, body)


@kopf.on.event(c.GROUP, c.VERSION, c.BACKTEST_PLURAL)
def backtest_event(*, type: str | None, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    if type != "DELETED":  # its pod goes with it (garbage collector); its result rows stay
        memo.backtests.seen(namespace, name)


@kopf.on.event("", "v1", "pods", labels={c.LABEL_MANAGED_BY: c.MANAGER})
def pod_event(*, type: str | None, body: Any, namespace: str | None, meta: Any, memo: Any, **_: Any) -> None:
    if type == "DELETED":
        memo.reconciler.pods.remove(dict(body))
    else:
        memo.reconciler.pods.update(dict(body))
    owners = [dict(o) for o in meta.get("ownerReferences") or []]
    memo.reconciler.reconcile_owner_of(namespace, owners)
    memo.backtests.pod_changed(namespace, owners)
