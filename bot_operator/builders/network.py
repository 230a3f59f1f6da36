"""A bot's NetworkPolicy: its pod reaches DNS, the venue, PostgreSQL and the API server; only the monitoring
namespace reaches its metrics. Owned by the TradingBot, so it goes with it.

Venues and managed databases change addresses, so egress is limited by port, not by address (a cluster that
knows its database's CIDR can narrow it with a policy of its own: NetworkPolicies add up).
"""

from __future__ import annotations

from typing import Any

from bot_operator.builders.names import child_name, label_value
from bot_operator.builders.pod import HEALTH_PORT
from bot_operator.builders.rbac import owner_reference
from bot_operator.settings import OperatorSettings
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBot

# set by Kubernetes on every namespace since 1.21; on older clusters label the monitoring namespace yourself
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def build_network_policy(bot: TradingBot, labels: dict[str, str], settings: OperatorSettings) -> dict[str, Any]:
    ports = [{"port": port, "protocol": "TCP"} for port in settings.bot_egress_port_list()]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": child_name(bot.name, "net"),
            "namespace": bot.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(bot)],
        },
        "spec": {
            "podSelector": {
                "matchLabels": {c.LABEL_BOT: label_value(bot.name), c.LABEL_MANAGED_BY: c.MANAGER},
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
