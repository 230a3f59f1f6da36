"""Trust boundaries of the operator: a label names no row, a namespace names the user, no row stalls the sync."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from kubernetes import client

from bot_operator.builders.names import pod_name
from bot_runtime.api import constants as c
from bot_runtime.db.repository import BotRepository
from tests.operator.helpers import apply_bot, condition, events, get_bot, get_pod, insert_row, list_bots, sql
from tests.support.bots import FAST_SPEC
from tests.support.kube import wait_for
from tests.support.operator import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.db]


def stalled(api: client.ApiClient, namespace: str, name: str, reason: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        cond = condition(get_bot(api, namespace, name), "Stalled")
        return cond if cond.get("status") == "True" and cond.get("reason") == reason else None

    return wait_for(check, 20, f"{name} Stalled ({reason})")


def row_state(repository: BotRepository, row_id: int) -> tuple[Any, ...]:
    with repository.session() as s:
        return tuple(
            s.execute(
                sa.text(
                    "SELECT status, error_message, external_ref, source, user_id, lease_holder, account_fingerprint "
                    "FROM trading_bots WHERE id = :id"
                ),
                {"id": row_id},
            ).one()
        )


def test_a_resource_labelled_as_a_database_row_is_not_that_row(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    row_id = insert_row(repository, user_id, "owned bot")
    operator = start_operator()
    name = f"owned-bot-{row_id}"
    wait_for(lambda: get_pod(kube_client, namespace, pod_name(name)), 20, "the row's own pod")
    before = row_state(repository, row_id)
    # another user's labels, so the sync (which lists this user's bots) never removes it: only ownership decides
    spoofed = {c.LABEL_SOURCE: c.SOURCE_DATABASE, c.LABEL_BOT_ID: str(row_id), c.LABEL_USER_ID: str(user_id + 100000)}
    apply_bot(kube_client, namespace, "impostor", labels=spoofed)

    cond = stalled(kube_client, namespace, "impostor", "NotOwned")
    assert f"{namespace}/impostor" in cond["message"], cond
    assert get_pod(kube_client, namespace, pod_name("impostor")) is None
    impostor = get_bot(kube_client, namespace, "impostor")
    assert impostor is not None and "botId" not in (impostor.get("status") or {})
    assert row_state(repository, row_id) == before

    client.CustomObjectsApi(kube_client).delete_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, "impostor"
    )
    operator.wait_for_log(rf"TradingBot {namespace}/impostor deleted: it owns no trading_bots row", 20)
    assert row_state(repository, row_id) == before, "deleting an impostor touches no row"
    assert get_pod(kube_client, namespace, pod_name(name)) is not None


def test_a_kubernetes_bot_takes_its_user_from_its_namespace_not_its_labels(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    start_operator()
    apply_bot(kube_client, namespace, "self-declared", labels={c.LABEL_USER_ID: "424242"})
    row = wait_for(lambda: repository.get_bot_by_ref(namespace, "self-declared"), 20, "the bot registered")
    assert row.user_id is None, "a bot's own label names no user"

    client.CoreV1Api(kube_client).patch_namespace(namespace, {"metadata": {"labels": {c.LABEL_USER_ID: str(user_id)}}})
    wait_for(  # read again within a few seconds (NAMESPACE_USER_TTL), at the next reconcile
        lambda: (r := repository.get_bot_by_ref(namespace, "self-declared")) and r.user_id == user_id,
        30,
        "the namespace's user on the row",
    )


def test_no_row_stalls_the_sync(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    good = insert_row(repository, user_id, "good bot")
    broken_ref = insert_row(repository, user_id, "broken ref")
    sql(repository, "UPDATE trading_bots SET external_ref = 'no-slash' WHERE id = :id", id=broken_ref)
    squatted = insert_row(repository, user_id, "squatted")
    to_disable = insert_row(repository, user_id, "to disable")
    # a Git-managed bot already holds the name the sync would give the row `squatted`
    squatter_spec = copy.deepcopy(FAST_SPEC)
    squatter_spec["risk"] = {"maxOpenOrders": 7}
    apply_bot(kube_client, namespace, f"squatted-{squatted}", squatter_spec)
    start_operator(user_id=user_id)

    wait_for(lambda: get_pod(kube_client, namespace, pod_name(f"good-bot-{good}")), 30, "the good bot's pod")
    wait_for(lambda: get_bot(kube_client, namespace, f"to-disable-{to_disable}"), 30, "the bot to disable")
    row = wait_for(
        lambda: (r := repository.get_bot(broken_ref)) and r.status == "error" and r, 20, "the broken ref marked"
    )
    assert "external_ref" in (row.error_message or "") and "'no-slash'" in (row.error_message or "")
    row = wait_for(lambda: (r := repository.get_bot(squatted)) and r.status == "error" and r, 20, "the squat marked")
    assert f"{namespace}/squatted-{squatted}" in (row.error_message or "") and "already" in (row.error_message or "")
    assert row.source == c.SOURCE_DATABASE, "the squatter does not take the row over"
    squatter = get_bot(kube_client, namespace, f"squatted-{squatted}")
    assert squatter is not None and squatter["spec"]["risk"]["maxOpenOrders"] == 7, "the sync leaves it alone"
    assert c.LABEL_SOURCE not in (squatter["metadata"].get("labels") or {})
    assert repository.events(squatted, "sync_conflict")
    wait_for(  # the Git bot was there first: it keeps running
        lambda: (
            condition(get_bot(kube_client, namespace, f"squatted-{squatted}"), "Synced").get("reason") == "Registered"
        ),
        20,
        "the squatter registered",
    )

    # with both bad rows still there, a disable anywhere in the fleet takes effect
    sql(repository, "UPDATE trading_bots SET enabled = false WHERE id = :id", id=to_disable)
    wait_for(lambda: get_bot(kube_client, namespace, f"to-disable-{to_disable}") is None, 20, "the disabled bot gone")
    wait_for(lambda: (r := repository.get_bot(to_disable)) and r.status == "stopped", 20, "its row stopped")
    # the disabled row keeps its name: a resource applied under it is refused and takes nothing over
    apply_bot(kube_client, namespace, f"to-disable-{to_disable}")
    cond = stalled(kube_client, namespace, f"to-disable-{to_disable}", "NameTaken")
    assert f"trading_bots row {to_disable}" in cond["message"]
    assert get_pod(kube_client, namespace, pod_name(f"to-disable-{to_disable}")) is None
    row = repository.get_bot(to_disable)
    assert row is not None and row.source == c.SOURCE_DATABASE and row.status == "stopped"

    # the name freed, the row gets its bot and its error goes
    client.CustomObjectsApi(kube_client).delete_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, f"squatted-{squatted}"
    )
    wait_for(
        lambda: (
            (b := get_bot(kube_client, namespace, f"squatted-{squatted}"))
            and (b["metadata"].get("labels") or {}).get(c.LABEL_SOURCE) == c.SOURCE_DATABASE
        ),
        30,
        "the row's own bot",
    )
    wait_for(lambda: (r := repository.get_bot(squatted)) and r.status != "error", 20, "the conflict cleared")
    names = {b["metadata"]["name"] for b in list_bots(kube_client, namespace)}
    assert names == {f"good-bot-{good}", f"squatted-{squatted}", f"to-disable-{to_disable}"}, names
    assert not [e for e in events(kube_client, namespace, f"good-bot-{good}") if e["type"] == "Warning"]


def test_an_image_outside_the_allow_list_and_a_pod_the_apiserver_refuses_are_stalled(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    # an operator misconfigured with an environment variable name the apiserver refuses in every pod
    start_operator(extra_env={"BOTOPS_RUNTIME_ENV": '{"1-not-a-name": "x"}'})
    mining = copy.deepcopy(FAST_SPEC)
    mining["runtime"] = {"image": "docker.io/someone/miner:latest"}
    apply_bot(kube_client, namespace, "miner", mining)
    cond = stalled(kube_client, namespace, "miner", "InvalidSpec")
    assert "spec.runtime.image: 'docker.io/someone/miner:latest' is not allowed here" in cond["message"], cond
    assert "'tradingbot-operator:'" in cond["message"]
    assert get_pod(kube_client, namespace, pod_name("miner")) is None

    apply_bot(kube_client, namespace, "refused")
    cond = stalled(kube_client, namespace, "refused", "PodRefused")
    assert "the apiserver refused the bot pod" in cond["message"] and "1-not-a-name" in cond["message"], cond
    body = get_bot(kube_client, namespace, "refused")
    assert body is not None and body["status"]["phase"] == "Error"


def test_each_bot_pod_is_fenced_by_its_namespaces_network_policy(
    start_operator: Callable[..., OperatorProcess],
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    start_operator()
    apply_bot(kube_client, namespace, "fenced")
    pod = wait_for(lambda: get_pod(kube_client, namespace, pod_name("fenced")), 20, "the bot pod")
    network = client.NetworkingV1Api(kube_client)
    policies = wait_for(lambda: network.list_namespaced_network_policy(namespace).items, 20, "the bots' policy")
    (policy,) = [kube_client.sanitize_for_serialization(p) for p in policies]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()), (selector, pod["metadata"])
    apply_bot(kube_client, namespace, "second")
    second = wait_for(lambda: get_pod(kube_client, namespace, pod_name("second")), 20, "the second bot pod")
    assert all(second["metadata"]["labels"].get(k) == v for k, v in selector.items())
    assert len(network.list_namespaced_network_policy(namespace).items) == 1  # one for the namespace's bots
    ingress_from = policy["spec"]["ingress"][0]["from"]
    assert ingress_from == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
