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


@kopf.on.resume(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.PLURAL)
def bot_changed(*, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    memo.reconciler.reconcile_named(namespace, name)


@kopf.on.event(c.GROUP, c.VERSION, c.PLURAL)
def bot_event(*, type: str, name: str, namespace: str | None, labels: Any, memo: Any, **_: Any) -> None:
    if type == "DELETED":  # no finalizer: deletion never waits for us; this only marks the row stopped
        memo.reconciler.forget(namespace, name, dict(labels))


@kopf.on.event("", "v1", "pods", labels={c.LABEL_MANAGED_BY: c.MANAGER})
def pod_event(*, namespace: str | None, meta: Any, memo: Any, **_: Any) -> None:
    owners = meta.get("ownerReferences") or []
    memo.reconciler.reconcile_owner_of(namespace, [dict(o) for o in owners])
