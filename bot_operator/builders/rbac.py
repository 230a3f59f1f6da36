"""A bot's own identity: a ServiceAccount, a Role that reaches only this bot, and their binding.

The runtime may get its TradingBot, patch its status and create events; nothing else. The Role's
resourceNames pin it to this bot (events cannot be pinned by name: their names are generated).
"""

from __future__ import annotations

from typing import Any

from bot_operator.builders.names import service_account_name
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBot


def owner_reference(bot: TradingBot) -> dict[str, Any]:
    return controller_reference(c.KIND, bot.name, bot.metadata.uid)


def controller_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The owner reference of a botops.io object to what it controls (deletion never waits for it)."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def _meta(bot: TradingBot, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": bot.namespace, "labels": labels, "ownerReferences": [owner_reference(bot)]}


def build_service_account(bot: TradingBot, labels: dict[str, str]) -> dict[str, Any]:
    name = service_account_name(bot.name)
    # The token reaches the runtime through the pod's projected volume only.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(bot, name, labels),
        "automountServiceAccountToken": False,
    }


def build_role(bot: TradingBot, labels: dict[str, str]) -> dict[str, Any]:
    bot_name = bot.name
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(bot, service_account_name(bot_name), labels),
        "rules": [
            {"apiGroups": [c.GROUP], "resources": [c.PLURAL], "resourceNames": [bot_name], "verbs": ["get"]},
            {
                "apiGroups": [c.GROUP],
                "resources": [f"{c.PLURAL}/status"],
                "resourceNames": [bot_name],
                "verbs": ["get", "patch"],
            },
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        ],
    }


def build_role_binding(bot: TradingBot, labels: dict[str, str]) -> dict[str, Any]:
    name = service_account_name(bot.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(bot, name, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": bot.namespace}],
    }
