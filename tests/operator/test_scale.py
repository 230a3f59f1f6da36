"""What a fleet asks of the operator: few API writes per bot, no wait on kopf's 60 s retry, a row change
applied by itself. Against the real control plane and database; the figures themselves are measured by
`make bench-fleet`, never asserted here as times."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from bot_operator.builders.names import pod_name, service_account_name
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane, find_assets
from tests.conftest import install_crds, require_controllers
from tests.operator.helpers import apply_bot, get_bot, get_pod, insert_row, sql
from tests.support.kube import api_client_for, create_namespace, wait_for
from tests.support.operator import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.db]


def writes(operator: OperatorProcess) -> dict[str, float]:
    """The operator's own count of its API writes, by component and verb."""
    found = re.findall(
        r'^botops_operator_api_writes_total\{component="(\w+)",verb="(\w+)"\} ([0-9.e+]+)$', operator.metrics(), re.M
    )
    return {f"{component} {verb}": float(value) for component, verb, value in found}


@pytest.fixture
def tokenless_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane whose token controller does not run: a ServiceAccount gets no token until a test
    gives it one, as on a 1.20 cluster whose token controller lags a burst of new accounts."""
    plane = ControlPlane(find_assets(), controllers=("garbagecollector", "namespace", "serviceaccount"))
    require_controllers(plane)
    plane.start()
    try:
        install_crds(plane)
        yield plane
    finally:
        plane.stop()


def give_token(api: client.ApiClient, namespace: str, account: str) -> None:
    """What the token controller does: a token Secret for the account, referenced from the account."""
    core = client.CoreV1Api(api)
    sa = core.read_namespaced_service_account(account, namespace)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=f"{account}-token",
            annotations={
                "kubernetes.io/service-account.name": account,
                "kubernetes.io/service-account.uid": sa.metadata.uid,
            },
        ),
        type="kubernetes.io/service-account-token",
        string_data={"token": "not-a-real-token"},
    )
    core.create_namespaced_secret(namespace, secret)
    core.patch_namespaced_service_account(account, namespace, {"secrets": [{"name": f"{account}-token"}]})


def test_a_pod_refused_for_want_of_its_token_is_created_once_the_token_exists_not_at_kopfs_retry(
    tokenless_plane: ControlPlane, migrated_database_url: str, tmp_path: Path
) -> None:
    namespace = "tokens"
    create_namespace(tokenless_plane, namespace)
    api = api_client_for(tokenless_plane.kubeconfig_path)
    operator = OperatorProcess(tokenless_plane, migrated_database_url, namespace, tmp_path, user_id=999_001)
    try:
        operator.wait_for_log("Trading service running")
        apply_bot(api, namespace, "patient")
        # its ServiceAccount, Role, RoleBinding, NetworkPolicy and the namespace's runtime Secret, then pod creates
        wait_for(lambda: writes(operator).get("reconciler create", 0) >= 7, 20, "pod creates refused and repeated")
        assert get_pod(api, namespace, pod_name("patient")) is None
        give_token(api, namespace, service_account_name("patient"))
        # the next repeat (at most 5 s apart) succeeds; kopf's own retry would come 60 s after the refusal
        wait_for(lambda: get_pod(api, namespace, pod_name("patient")), 10, "the bot pod")
        assert "Traceback" not in operator.log(), operator.log()[-3000:]
    finally:
        operator.close()


def test_a_new_bot_costs_few_writes_and_none_of_kopfs_bookkeeping(
    start_operator: Callable[..., OperatorProcess], kube_client: client.ApiClient, namespace: str
) -> None:
    operator = start_operator()
    apply_bot(kube_client, namespace, "frugal")
    wait_for(lambda: get_pod(kube_client, namespace, pod_name("frugal")), 20, "the bot pod")
    wait_for(lambda: (get_bot(kube_client, namespace, "frugal") or {}).get("status", {}).get("pod"), 20, "status")
    counted = writes(operator)
    # ServiceAccount, Role, RoleBinding, NetworkPolicy, pod; one status patch; the namespace's runtime Secret
    assert counted.get("reconciler create", 0) <= 6, counted
    assert counted.get("reconciler patch", 0) <= 2, counted  # the bot-id label of an applied bot, its status
    annotations = get_bot(kube_client, namespace, "frugal")["metadata"].get("annotations") or {}
    assert [k for k in annotations if k.startswith("botops.io/")] == []  # kopf's diff base and progress: none


def test_a_row_change_between_polls_updates_only_that_bot(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    first, second = insert_row(repository, user_id, "first"), insert_row(repository, user_id, "second")
    operator = start_operator(extra_env={"BOTOPS_POLL_INTERVAL": "3600"})  # only NOTIFY can bring the change
    for row_id, name in ((first, "first"), (second, "second")):
        wait_for(lambda n=f"{name}-{row_id}": get_bot(kube_client, namespace, n), 20, f"TradingBot {name}")
    before = get_bot(kube_client, namespace, f"second-{second}")["metadata"]["resourceVersion"]
    sql(repository, "UPDATE trading_bots SET symbol = 'ETH/USDT' WHERE id = :id", id=first)
    wait_for(
        lambda: get_bot(kube_client, namespace, f"first-{first}")["spec"]["market"]["symbol"] == "ETH/USDT",
        10,
        "the edited row's bot updated",
    )
    assert re.search(rf"updated TradingBot {namespace}/first-{first}", operator.log())
    assert get_bot(kube_client, namespace, f"second-{second}")["metadata"]["resourceVersion"] == before
    sql(repository, "DELETE FROM trading_bots WHERE id = :id", id=second)
    wait_for(lambda: get_bot(kube_client, namespace, f"second-{second}") is None, 10, "the deleted row's bot removed")
