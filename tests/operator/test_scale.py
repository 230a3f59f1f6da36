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
from bot_operator.settings import OperatorSettings
from bot_runtime.api import constants as c
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
    """A control plane whose token controller does not run: a ServiceAccount gets no token Secret, as on a
    1.20 cluster whose token controller lags a burst of new accounts (or on 1.24+, which makes none)."""
    plane = ControlPlane(find_assets(), controllers=("garbagecollector", "namespace", "serviceaccount"))
    require_controllers(plane)
    plane.start()
    try:
        install_crds(plane)
        yield plane
    finally:
        plane.stop()


def test_a_bot_pod_needs_no_legacy_token_secret_so_it_is_created_at_once(
    tokenless_plane: ControlPlane, migrated_database_url: str, tmp_path: Path
) -> None:
    """Before 1.24 an automounted token needs the account's token Secret, which the token controller makes
    after the account exists: a pod created right after was refused with a 500, and kopf retried 60 s later
    (3.5 pod creates per bot at 1,000 bots). A projected token needs no Secret."""
    namespace = "tokens"
    create_namespace(tokenless_plane, namespace)
    api = api_client_for(tokenless_plane.kubeconfig_path)
    operator = OperatorProcess(tokenless_plane, migrated_database_url, namespace, tmp_path, user_id=999_001)
    try:
        operator.wait_for_log("Trading service running")
        apply_bot(api, namespace, "patient")
        pod = wait_for(lambda: get_pod(api, namespace, pod_name("patient")), 20, "the bot pod")
        assert pod["spec"]["automountServiceAccountToken"] is False
        sources = next(v for v in pod["spec"]["volumes"] if v["name"] == "kube-api-access")["projected"]["sources"]
        assert sources[0]["serviceAccountToken"]["path"] == "token"
        account = client.CoreV1Api(api).read_namespaced_service_account(service_account_name("patient"), namespace)
        assert not account.secrets  # no token controller ran: there is none
        # one pod create, no retries; the seventh is the bot's database Secret (its own role)
        assert writes(operator).get("reconciler create", 0) == 7, writes(operator)
    finally:
        operator.close()


def test_a_new_bot_costs_few_writes_and_none_of_kopfs_bookkeeping(
    start_operator: Callable[..., OperatorProcess], kube_client: client.ApiClient, namespace: str
) -> None:
    operator = start_operator(extra_env={"BOTOPS_LOG_LEVEL": "DEBUG"})
    apply_bot(kube_client, namespace, "frugal")
    wait_for(lambda: get_pod(kube_client, namespace, pod_name("frugal")), 20, "the bot pod")
    wait_for(lambda: (get_bot(kube_client, namespace, "frugal") or {}).get("status", {}).get("pod"), 20, "status")
    counted = writes(operator)
    # ServiceAccount, Role, RoleBinding, NetworkPolicy, pod, the bot's database Secret (its own role); the
    # namespace's Backtest Secret
    assert counted.get("reconciler create", 0) <= 7, counted
    # the bot-id label of an applied bot, and one status patch
    assert counted.get("reconciler patch", 0) <= 2, (counted, re.findall(".*status: .*", operator.log()))
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
    before = get_bot(kube_client, namespace, f"second-{second}")["metadata"]["generation"]
    sql(repository, "UPDATE trading_bots SET symbol = 'ETH/USDT' WHERE id = :id", id=first)
    wait_for(
        lambda: get_bot(kube_client, namespace, f"first-{first}")["spec"]["market"]["symbol"] == "ETH/USDT",
        10,
        "the edited row's bot updated",
    )
    assert re.search(rf"updated TradingBot {namespace}/first-{first}", operator.log())
    assert get_bot(kube_client, namespace, f"second-{second}")["metadata"]["generation"] == before
    assert f"updated TradingBot {namespace}/second-" not in operator.log()
    sql(repository, "DELETE FROM trading_bots WHERE id = :id", id=second)
    wait_for(lambda: get_bot(kube_client, namespace, f"second-{second}") is None, 10, "the deleted row's bot removed")


def test_two_shards_split_the_fleet_and_one_shards_failover_leaves_the_other_alone(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    settings = [OperatorSettings(database_url="postgresql://x@db/bots", shard_index=i, shard_count=2) for i in (0, 1)]

    def shard_of(name: str) -> int:
        (shard,) = [i for i, s in enumerate(settings) if s.owns_bot(namespace, name)]
        return shard

    names = [f"shard-{i}-{insert_row(repository, user_id, f'shard {i}')}" for i in range(40)]
    assert {shard_of(n) for n in names} == {0, 1}

    def shard(index: int, identity: str) -> OperatorProcess:
        return start_operator(identity=identity, args=["--shard-index", str(index), "--shard-count", "2"])

    first, standby, other = shard(0, "zero-a"), shard(0, "zero-b"), shard(1, "one")
    for name in names:
        wait_for(lambda n=name: get_pod(kube_client, namespace, pod_name(n)), 60, f"the pod of {name}")

    def created(operator: OperatorProcess) -> set[str]:
        return set(re.findall(rf"created bot pod {namespace}/(\S+)-runtime", operator.log()))

    assert created(first) | created(standby) == {n for n in names if shard_of(n) == 0}
    assert created(other) == {n for n in names if shard_of(n) == 1}
    leases = client.CoordinationV1Api(kube_client).list_namespaced_lease(namespace).items
    assert {(lease.metadata.name, lease.spec.holder_identity) for lease in leases} >= {
        ("tradingbot-operator-leader-shard-1-of-2", "one")
    }
    untouched = {n: get_pod(kube_client, namespace, pod_name(n))["metadata"]["uid"] for n in names if shard_of(n) == 1}
    leader, waiting = (first, standby) if "became the leader" in first.log() else (standby, first)

    leader.kill()  # shard 0 fails over to its standby
    waiting.wait_for_log("became the leader", 30)
    late = [f"shard-{i}-{insert_row(repository, user_id, f'shard {i}')}" for i in range(40, 46)]
    for name in late:
        wait_for(lambda n=name: get_pod(kube_client, namespace, pod_name(n)), 30, f"the pod of {name}")
    assert {n for n in late if shard_of(n) == 0} <= created(waiting)
    assert {n for n in late if shard_of(n) == 1} <= created(other)
    assert {n: get_pod(kube_client, namespace, pod_name(n))["metadata"]["uid"] for n in untouched} == untouched
    assert other.log().count("became the leader") == 1 and "deleting bot pod" not in other.log()


def test_a_restart_comes_at_its_back_off_time_not_at_the_next_pass(
    start_operator: Callable[..., OperatorProcess], kube_client: client.ApiClient, namespace: str
) -> None:
    from datetime import datetime

    from tests.support.bots import spec_with
    from tests.support.kubelet import report_failed

    start_operator(args=["--resync-interval", "600"])  # no periodic pass within this test
    apply_bot(kube_client, namespace, "prompt", spec_with(restartPolicy={"maxRestarts": 3, "initialDelaySeconds": 3}))
    first = wait_for(lambda: get_pod(kube_client, namespace, pod_name("prompt")), 20, "the bot pod")
    report_failed(kube_client, namespace, pod_name("prompt"), 2, "AuthenticationError: invalid key")
    due = wait_for(
        lambda: ((get_bot(kube_client, namespace, "prompt") or {}).get("status") or {}).get("nextRestartAt"),
        20,
        "the restart scheduled",
    )
    second = wait_for(
        lambda: (
            (p := get_pod(kube_client, namespace, pod_name("prompt")))
            and p["metadata"]["uid"] != first["metadata"]["uid"]
            and p
        ),
        15,
        "the pod again at its restart time",
    )
    created = datetime.fromisoformat(second["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert created >= datetime.fromisoformat(due.replace("Z", "+00:00")), (created, due)  # not before its time


def test_a_halt_the_runtime_reports_reaches_ready_in_seconds_not_at_the_next_pass(
    start_operator: Callable[..., OperatorProcess], kube_client: client.ApiClient, namespace: str
) -> None:
    """The runtime learns of a fleet halt by NOTIFY and patches status.runtime at once (tested with runtimes
    in tests/continuity); here that patch, as the runtime writes it, must move the bot's Ready at once."""
    from tests.operator.helpers import condition

    start_operator(args=["--resync-interval", "600"])
    apply_bot(kube_client, namespace, "halted")
    wait_for(lambda: get_pod(kube_client, namespace, pod_name("halted")), 20, "the bot pod")
    client.CustomObjectsApi(kube_client).patch_namespaced_custom_object_status(
        "botops.io",
        "v1alpha1",
        namespace,
        "tradingbots",
        "halted",
        {"status": {"runtime": {"halted": True, "haltReason": "fleet halt: maintenance", "tradingState": "halted"}}},
    )
    ready = wait_for(
        lambda: (
            "halted" in (condition(get_bot(kube_client, namespace, "halted"), "Ready").get("message") or "")
            and condition(get_bot(kube_client, namespace, "halted"), "Ready")
        ),
        5,
        "Ready saying the halt",
    )
    assert ready["status"] == "False" and "fleet halt: maintenance" in ready["message"]


def test_an_idle_pass_skips_a_settled_bot_but_puts_back_a_rewritten_status(
    start_operator: Callable[..., OperatorProcess], kube_client: client.ApiClient, namespace: str
) -> None:
    """A pass every 2 s: a bot whose inputs did not change is not reconciled again (an idle fleet of 1,000 cost
    1,000 reconciles a pass); a status a runtime rewrote is an input, and is put back at the next pass."""
    import time

    operator = start_operator()
    apply_bot(kube_client, namespace, "settled")
    wait_for(lambda: (get_bot(kube_client, namespace, "settled") or {}).get("status", {}).get("pod"), 20, "status")
    time.sleep(5)  # two passes: the one after the status write reconciles once more, then the bot is settled
    before = operator.metric_total("botops_operator_reconciles_total", 'result="ok"')
    time.sleep(8)  # four passes
    assert operator.metric_total("botops_operator_reconciles_total", 'result="ok"') == before, (
        "an unchanged bot was reconciled by an idle pass"
    )
    client.CustomObjectsApi(kube_client).patch_namespaced_custom_object_status(
        "botops.io", "v1alpha1", namespace, "tradingbots", "settled", {"status": {"phase": "Running"}}
    )
    wait_for(
        lambda: get_bot(kube_client, namespace, "settled")["status"]["phase"] == "Starting", 10, "the phase put back"
    )


def test_an_idle_sync_lists_no_bots_yet_recreates_a_bot_deleted_by_hand(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    """A full sync every 2 s: while neither the rows nor the bots the watch shows change, it lists no bots (at
    1,000 bots a listing was most of an idle operator's CPU); a database bot deleted by hand is a change, and the
    next full sync creates it again."""
    row_id = insert_row(repository, user_id, "kept")
    operator = start_operator(extra_env={"BOTOPS_LOG_LEVEL": "DEBUG"})
    name = f"kept-{row_id}"
    first = wait_for(lambda: get_bot(kube_client, namespace, name), 20, "the row's bot")
    wait_for(lambda: get_pod(kube_client, namespace, pod_name(name)), 20, "its pod")

    def syncs() -> float:
        return operator.metric_total("botops_operator_syncs_total")

    polls = syncs()
    wait_for(lambda: syncs() >= polls + 3, 30, "three more polls")  # the first pass heals by listing: done now
    lists, polls = operator.log().count("full sync: listing the bots"), syncs()
    wait_for(lambda: syncs() >= polls + 4, 30, "four more polls")
    assert operator.log().count("full sync: listing the bots") == lists, "an idle full sync listed the bots"
    client.CustomObjectsApi(kube_client).delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, name)
    again = wait_for(
        lambda: (b := get_bot(kube_client, namespace, name)) and b["metadata"]["uid"] != first["metadata"]["uid"] and b,
        20,
        "the bot created again by the sync",
    )
    assert again["metadata"]["labels"][c.LABEL_BOT_ID] == str(row_id)
