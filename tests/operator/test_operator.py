"""The real bot-operator on the test control plane and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from bot_operator.builders.names import pod_name
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.support.bots import FAST_SPEC, Bot, RuntimeProcess
from tests.support.kube import wait_for
from tests.support.kubelet import report_running
from tests.support.operator import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.db]


def bots(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    return list(client.CustomObjectsApi(api).list_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL)["items"])


def bot(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.CustomObjectsApi(api).get_namespaced_custom_object(c.GROUP, c.VERSION, namespace,
                                                                                c.PLURAL, name))
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def pod(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(api.sanitize_for_serialization(client.CoreV1Api(api).read_namespaced_pod(name, namespace)))
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def condition(body: dict[str, Any] | None, type: str) -> str | None:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type:
            return str(cond["status"])
    return None


def test_row_to_ready_bot_then_update_then_disable(
    start_operator: Callable[..., OperatorProcess], repository: BotRepository, kube_client: client.ApiClient,
    control_plane: ControlPlane, namespace: str, user_id: int, tmp_path: Any, fake_exchange: Any,
    migrated_database_url: str,
) -> None:
    operator = start_operator()
    operator.wait_for_log("Trading service running with 0 bots")
    row_id = repository.create_bot(TradingBotSpec.model_validate(FAST_SPEC), name="SMA BTC", user_id=user_id)
    name = f"sma-btc-{row_id}"
    tb = wait_for(lambda: bot(kube_client, namespace, name), 10, "the TradingBot from the row")
    assert tb["metadata"]["labels"][c.LABEL_SOURCE] == "database"
    assert tb["metadata"]["labels"][c.LABEL_BOT_ID] == str(row_id)
    bot_pod = wait_for(lambda: pod(kube_client, namespace, pod_name(name)), 20, "the bot pod")
    container = bot_pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["BOTOPS_BOT_NAME"]["value"] == name
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "tradingbot-runtime-db"
    assert bot_pod["metadata"]["ownerReferences"][0]["uid"] == tb["metadata"]["uid"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert bot_pod["spec"]["serviceAccountName"] == f"{name}-bot"

    # play the kubelet: the pod runs, the real runtime heartbeats with the bot's own credentials
    report_running(kube_client, namespace, pod_name(name))
    handle = Bot.attach(control_plane, kube_client, repository, namespace, name, tmp_path)
    runtime = RuntimeProcess(handle, migrated_database_url, tmp_path, exchange_url=fake_exchange.url)
    try:
        ready = wait_for(lambda: condition(bot(kube_client, namespace, name), "Ready") == "True", 60,
                         "Ready=True")
        tb = bot(kube_client, namespace, name)
        assert tb["status"]["phase"] == "Running" and tb["status"]["botId"] == row_id
        assert tb["status"]["runtime"]["feedState"] == "LIVE" and ready
        assert tb["status"]["observedGeneration"] == tb["metadata"]["generation"]
        first_uid = pod(kube_client, namespace, pod_name(name))["metadata"]["uid"]

        # the row changes: the pod is replaced (the old one is deleted before the new one exists)
        with repository.session() as s:
            s.execute(__import__("sqlalchemy").text(
                "UPDATE trading_bots SET risk_config = '{\"max_open_orders\": 2}' WHERE id = :id"), {"id": row_id})
        wait_for(lambda: (p := pod(kube_client, namespace, pod_name(name))) is None
                 or p["metadata"]["uid"] != first_uid, 20, "the old pod gone")
        runtime.terminate()
        new_pod = wait_for(lambda: pod(kube_client, namespace, pod_name(name)), 20, "the new pod")
        assert new_pod["metadata"]["uid"] != first_uid
        assert bot(kube_client, namespace, name)["spec"]["risk"]["maxOpenOrders"] == 2
    finally:
        runtime.close()

    # disabled: resource and pod gone, row stopped, history kept
    with repository.session() as s:
        s.execute(__import__("sqlalchemy").text("UPDATE trading_bots SET enabled = false WHERE id = :id"),
                  {"id": row_id})
    wait_for(lambda: bot(kube_client, namespace, name) is None, 20, "the TradingBot deleted")
    wait_for(lambda: (r := repository.get_bot(row_id)) is not None and r.status == "stopped", 20, "row stopped")
    assert repository.runs(row_id), "runs are kept"
    operator.terminate()
