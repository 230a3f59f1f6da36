"""The validating webhook, called by the real apiserver (1.20): bad bots refused at apply time, database bots
written by the operator only, and an operator outage that blocks no delete."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot_operator.builders.names import pod_name
from bot_runtime.api import constants as c
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ADMIN_USER, ControlPlane, free_port
from tests.corpus import CASES
from tests.operator.helpers import apply_bot, get_bot, get_pod, insert_row, sql
from tests.support.bots import FAST_SPEC
from tests.support.kube import api_client_for, wait_for
from tests.support.operator import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.db]
SEMANTIC = [case for case in CASES if case.layer == "semantic"]


@pytest.fixture
def alice(
    control_plane: ControlPlane, kube_client: client.ApiClient, namespace: str, tmp_path: Path
) -> client.ApiClient:
    """A person who may write TradingBots in the namespace (not the operator)."""
    core, rbac = client.CoreV1Api(kube_client), client.RbacAuthorizationV1Api(kube_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "alice"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "bot-author"},
            "rules": [{"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["*"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "alice-bot-author"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bot-author"},
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": namespace}],
        },
    )
    return api_client_for(control_plane.write_service_account_kubeconfig(namespace, "alice", tmp_path / "alice"))


@pytest.fixture
def webhook_operator(
    start_operator: Callable[..., OperatorProcess], kube_client: client.ApiClient, namespace: str
) -> Iterator[OperatorProcess]:
    port, configuration = free_port(), f"botops-{namespace}"
    operator = start_operator(
        args=["--webhook-port", str(port), "--webhook-url", f"https://127.0.0.1:{port}"],
        extra_env={"BOTOPS_WEBHOOK_CONFIGURATION": configuration, "BOTOPS_OPERATOR_USERNAMES": ADMIN_USER},
    )
    operator.wait_for_log("admission webhook listening", 60)
    admission = client.AdmissionregistrationV1Api(kube_client)
    try:
        yield operator
    finally:
        operator.close()
        admission.delete_validating_webhook_configuration(configuration)


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    try:
        call()
    except ApiException as exc:
        return exc.status, json.loads(exc.body).get("message", "")
    raise AssertionError("the apiserver accepted it")


def manifest(name: str, spec: dict[str, object], labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def test_the_apiserver_refuses_what_the_operator_would_stall_naming_the_field(
    webhook_operator: OperatorProcess, alice: client.ApiClient, namespace: str
) -> None:
    objects = client.CustomObjectsApi(alice)

    def create(name: str, spec: dict[str, object], labels: dict[str, str] | None = None) -> object:
        return objects.create_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, manifest(name, spec, labels)
        )

    first = SEMANTIC[0]
    # the apiserver reads new webhook configurations within a second or so
    wait_for(lambda: _refused(lambda: create("probe", first.spec())), 20, "the webhook in force")
    for number, case in enumerate(SEMANTIC):
        status, message = refusal(partial(create, f"bad-{number}", case.spec()))
        assert status == 422, (case.id, status, message)
        assert 'admission webhook "tradingbots.botops.io" denied the request' in message, message
        for part in case.semantic_expect or case.expect:
            assert part in message, (case.id, part, message)

    image = {**FAST_SPEC, "runtime": {"image": "evil.example/miner:1"}}
    status, message = refusal(lambda: create("miner", image))
    assert status == 422 and "spec.runtime.image: 'evil.example/miner:1' is not allowed here" in message

    status, message = refusal(lambda: create("impostor", FAST_SPEC, {c.LABEL_SOURCE: c.SOURCE_DATABASE}))
    assert status == 403 and "written by the operator's database sync only" in message, message

    create("fine", FAST_SPEC)  # a valid bot goes through
    objects.patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, "fine", {"spec": {"suspended": True}}
    )
    status, message = refusal(
        lambda: objects.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, "fine", {"spec": {"market": {"exchange": "binanse"}}}
        )
    )
    assert status == 422 and "spec.market.exchange: 'binanse' is not a ccxt exchange id" in message, message


def _refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except ApiException as exc:
        return exc.status == 422
    return False


def test_database_bots_are_written_by_the_operator_only_and_an_outage_blocks_no_delete(
    webhook_operator: OperatorProcess,
    alice: client.ApiClient,
    kube_client: client.ApiClient,
    repository: BotRepository,
    namespace: str,
    user_id: int,
) -> None:
    row_id = insert_row(repository, user_id, "guarded")
    name = f"guarded-{row_id}"
    wait_for(lambda: get_pod(kube_client, namespace, pod_name(name)), 30, "the database bot's pod")
    objects = client.CustomObjectsApi(alice)
    status, message = refusal(
        lambda: objects.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, name, {"spec": {"broker": {"cash": 1_000_000}}}
        )
    )
    assert status == 403 and "change the trading_bots row instead" in message, message
    status, message = refusal(
        lambda: objects.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, name, {"metadata": {"labels": {c.LABEL_SOURCE: "kubernetes"}}}
        )
    )
    assert status == 403, message

    # the operator itself still writes it: a row change reaches the resource
    sql(
        repository,
        "UPDATE trading_bots SET broker_config = broker_config || '{\"cash\": 12345}' WHERE id = :id",
        id=row_id,
    )
    wait_for(lambda: get_bot(kube_client, namespace, name)["spec"]["broker"]["cash"] == 12345, 20, "the row's change")

    apply_bot(alice, namespace, "mine")
    webhook_operator.close()  # an outage: the webhook's port answers nothing now
    objects.delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, "mine")
    objects.delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, name)
    assert get_bot(kube_client, namespace, "mine") is None and get_bot(kube_client, namespace, name) is None
    # a write while it is down goes through (failurePolicy Ignore); the reconcile validates it when it is back
    apply_bot(alice, namespace, "written-during-outage")
