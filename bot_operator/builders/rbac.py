"""A bot's own identity: a ServiceAccount, a Role that reaches only this bot, and their binding.

The runtime may get its TradingBot, patch its status and create events; nothing else. The Role's
resourceNames pin it to this bot (events cannot be pinned by name: their names are generated).
"""

from __future__ import annotations

from typing import Any

from bot_operator.builders.names import service_account_name
from bot_runtime.api import constants as c


def owner_reference(bot: dict[str, Any]) -> dict[str, Any]:
    meta = bot["metadata"]
    return {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": False}


def _meta(bot: dict[str, Any], name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": bot["metadata"]["namespace"], "labels": labels,
            "ownerReferences": [owner_reference(bot)]}


def build_service_account(bot: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    name = service_account_name(bot["metadata"]["name"])
    # The token reaches the runtime through the pod's projected volume only.
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(bot, name, labels),
            "automountServiceAccountToken": False}


def build_role(bot: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    bot_name = bot["metadata"]["name"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": _meta(bot, service_account_name(bot_name), labels),
        "rules": [
            {"apiGroups": [c.GROUP], "resources": [c.PLURAL], "resourceNames": [bot_name], "verbs": ["get"]},
            {"apiGroups": [c.GROUP], "resources": [f"{c.PLURAL}/status"], "resourceNames": [bot_name],
             "verbs": ["get", "patch"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        ],
    }


def build_role_binding(bot: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    name = service_account_name(bot["metadata"]["name"])
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(bot, name, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": bot["metadata"]["namespace"]}],
    }
