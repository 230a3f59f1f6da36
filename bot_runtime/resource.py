"""The runtime's view of the cluster: read its own TradingBot and merge-patch `status.runtime`.
In a pod it uses the ServiceAccount; outside one, a kubeconfig (KUBECONFIG or --kubeconfig)."""

from __future__ import annotations

import logging
import os
from typing import Any

from kubernetes import client, config

from bot_runtime.api import constants as c

log = logging.getLogger(__name__)


def api_client(kubeconfig: str | None = None, connections: int | None = None) -> client.ApiClient:
    """`connections`: kept open to the apiserver, one per thread that calls at once (the default, 5 per CPU,
    makes a busier caller discard and re-handshake TLS connections)."""
    cfg = client.Configuration()
    if kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    else:
        config.load_incluster_config(client_configuration=cfg)
    if connections is not None:
        cfg.connection_pool_maxsize = connections
    return client.ApiClient(cfg)


class BotResource:
    """One TradingBot, as its runtime is allowed to see and touch it (get, patch status)."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, request_timeout: float = 10.0) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.objects = client.CustomObjectsApi(api)
        self.timeout = request_timeout

    def read(self) -> dict[str, Any]:
        body: Any = self.objects.get_namespaced_custom_object(
            c.GROUP, c.VERSION, self.namespace, c.PLURAL, self.name, _request_timeout=self.timeout
        )
        return dict(body)

    def patch_runtime_status(self, runtime: dict[str, Any]) -> None:
        """A merge patch of status.runtime only: the operator's fields are never touched."""
        self.objects.patch_namespaced_custom_object_status(
            c.GROUP,
            c.VERSION,
            self.namespace,
            c.PLURAL,
            self.name,
            {"status": {"runtime": runtime}},
            _content_type="application/merge-patch+json",
            _request_timeout=self.timeout,
        )
