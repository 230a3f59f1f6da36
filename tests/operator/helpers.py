"""Small readers for operator tests."""

from __future__ import annotations

import copy
from typing import Any

from kubernetes import client

from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.db.repository import BotRepository
from tests.support.bots import FAST_SPEC


def list_bots(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    return list(
        client.CustomObjectsApi(api).list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL)["items"]
    )


def get_bot(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(
            client.CustomObjectsApi(api).get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, name)
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def apply_bot(
    api: client.ApiClient,
    namespace: str,
    name: str,
    spec: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            c.GROUP,
            c.VERSION,
            namespace,
            c.PLURAL,
            {
                "apiVersion": c.API_VERSION,
                "kind": c.KIND,
                "metadata": {"name": name, "labels": labels or {}},
                "spec": spec or copy.deepcopy(FAST_SPEC),
            },
        )
    )


def get_pod(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(api.sanitize_for_serialization(client.CoreV1Api(api).read_namespaced_pod(name, namespace)))
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def bot_pods(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"{c.LABEL_MANAGED_BY}={c.MANAGER}")
    return [dict(api.sanitize_for_serialization(p)) for p in pods.items]


def condition(body: dict[str, Any] | None, type: str) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type:
            return dict(cond)
    return {}


def phase(body: dict[str, Any] | None) -> str | None:
    return ((body or {}).get("status") or {}).get("phase")


def events(api: client.ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [{"type": e.type, "reason": e.reason, "message": e.message} for e in items]


def insert_row(repo: BotRepository, user_id: int, name: str, spec: dict[str, Any] | None = None) -> int:
    return repo.create_bot(TradingBotSpec.model_validate(spec or FAST_SPEC), name=name, user_id=user_id)


def sql(repo: BotRepository, statement: str, **params: Any) -> None:
    import sqlalchemy as sa

    with repo.session() as s:
        s.execute(sa.text(statement), params)
