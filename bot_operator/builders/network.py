"""The NetworkPolicy of the bot pods of a namespace: they reach DNS, the venues, PostgreSQL and the API server;
only the monitoring namespace reaches their metrics, so no bot reaches another. One per namespace, not per bot:
every bot gets the same rules, and a fleet of a thousand saves a thousand writes. It stays when the last bot
goes, like the namespace's runtime Secret.

Venues and managed databases change addresses, so egress is limited by port, not by address (a cluster that
knows its database's CIDR can narrow it with a policy of its own: NetworkPolicies add up).
"""

from __future__ import annotations

from typing import Any

from bot_operator.builders.pod import HEALTH_PORT, RUNTIME_COMPONENT
from bot_operator.settings import OperatorSettings
from bot_runtime.api import constants as c

# set by Kubernetes on every namespace since 1.21; on older clusters label the monitoring namespace yourself
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


POLICY_NAME = "tradingbot-runtime"


def build_network_policy(namespace: str, settings: OperatorSettings) -> dict[str, Any]:
    ports = [{"port": port, "protocol": "TCP"} for port in settings.bot_egress_port_list()]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": POLICY_NAME,
            "namespace": namespace,
            "labels": {c.LABEL_MANAGED_BY: c.MANAGER, c.LABEL_NAME: POLICY_NAME},
        },
        "spec": {
            "podSelector": {
                "matchLabels": {c.LABEL_MANAGED_BY: c.MANAGER, "app.kubernetes.io/component": RUNTIME_COMPONENT},
            },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: settings.metrics_namespace}}}
                    ],
                    "ports": [{"port": HEALTH_PORT, "protocol": "TCP"}],
                }
            ],
            "egress": [
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                {"ports": ports},
            ],
        },
    }
