"""The operator's side of continuity: whenFlat rollouts and one trader per account and market."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bot_operator.builders.names import pod_name
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.continuity.test_continuity import HOLDER, live_spec
from tests.operator.helpers import apply_bot, condition, get_bot, get_pod
from tests.support.bots import Bot, RuntimeProcess, spec_with
from tests.support.kube import wait_for
from tests.support.kubelet import report_running

pytestmark = [pytest.mark.cluster, pytest.mark.db]


def test_when_flat_rollout_waits_for_the_position_to_close(
    start_operator: Callable[..., Any],
    repository: BotRepository,
    kube_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    fake_exchange: Any,
    migrated_database_url: str,
) -> None:
    start_operator()
    trader = {**HOLDER, "exit_on_opposite_signal": True}  # flat again at the next bearish cross
    apply_bot(
        kube_client,
        namespace,
        "careful",
        spec_with(strategy={"type": "CustomStrategy", "params": trader}, rollout={"strategy": "whenFlat"}),
    )
    first = wait_for(lambda: get_pod(kube_client, namespace, pod_name("careful")), 30, "the pod")
    report_running(kube_client, namespace, pod_name("careful"))
    handle = Bot.attach(control_plane, kube_client, repository, namespace, "careful", tmp_path)
    runtime = RuntimeProcess(handle, migrated_database_url, tmp_path, exchange_url=fake_exchange.url)
    try:
        wait_for(lambda: (handle.runtime_status().get("position") or 0) > 0, 120, "an open position")
        handle.patch_spec({"risk": {"maxOpenOrders": 3}})  # a new generation while the position is open
        held = wait_for(
            lambda: (
                condition(get_bot(kube_client, namespace, "careful"), "Reconciling").get("reason") == "WaitingForFlat"
                and get_bot(kube_client, namespace, "careful")
            ),
            30,
            "the rollout held",
        )
        assert "waits until the bot is flat" in held["status"]["message"] and held["status"]["rolloutHeldSince"]
        uid = first["metadata"]["uid"]
        while (handle.runtime_status().get("position") or 0) > 0:  # while it holds, the pod stays
            assert get_pod(kube_client, namespace, pod_name("careful"))["metadata"]["uid"] == uid
            time.sleep(1)
        wait_for(
            lambda: (p := get_pod(kube_client, namespace, pod_name("careful"))) is None or p["metadata"]["uid"] != uid,
            30,
            "the rollout once flat",
        )
    finally:
        runtime.close()


def test_the_operator_refuses_a_second_bot_on_the_same_account_and_market(
    start_operator: Callable[..., Any],
    kube_client: client.ApiClient,
    namespace: str,
    repository: BotRepository,
) -> None:
    core = client.CoreV1Api(kube_client)
    for name in ("keys", "same-keys"):  # two Secrets, one exchange account
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": name}, "stringData": {"apiKey": "shared-key", "secret": "s"}}
        )
    start_operator()
    apply_bot(kube_client, namespace, "first-trader", live_spec())
    wait_for(
        lambda: condition(get_bot(kube_client, namespace, "first-trader"), "Valid").get("status") == "True",
        30,
        "the first bot valid",
    )
    other_secret = {"credentialsSecretRef": {"name": "same-keys"}}
    apply_bot(kube_client, namespace, "second-trader", live_spec(broker=other_secret))
    body = wait_for(
        lambda: (
            (b := get_bot(kube_client, namespace, "second-trader"))
            and condition(b, "Valid").get("status") == "False"
            and b
        ),
        30,
        "the second bot refused",
    )
    message = condition(body, "Valid")["message"]
    assert f"already trades BTC/USDT through bot {namespace}/first-trader" in message
    assert "allowSharedAccount" in message and "shared-key" not in str(body)
    assert get_pod(kube_client, namespace, pod_name("second-trader")) is None
    assert get_pod(kube_client, namespace, pod_name("first-trader")) is not None
    client.CustomObjectsApi(kube_client).delete_namespaced_custom_object(
        "botops.io", "v1alpha1", namespace, "tradingbots", "first-trader"
    )
    wait_for(
        lambda: condition(get_bot(kube_client, namespace, "second-trader"), "Valid").get("status") == "True",
        30,
        "the second bot allowed once the first is gone",
    )
