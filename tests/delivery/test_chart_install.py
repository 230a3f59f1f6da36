"""The chart installed into the test control plane, and its RBAC against what the operator really does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kubernetes import client

from bot_operator.builders.backtest_pod import backtest_pod_name
from bot_operator.builders.names import pod_name
from bot_runtime.api import constants as c
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.operator.helpers import apply_bot, events, get_bot, get_pod, insert_row, phase
from tests.support.kube import wait_for
from tests.support.operator import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.db]

CHART = Path(__file__).resolve().parents[2] / "helm" / "tradingbot-operator"

# Everything the operator may do in bot namespaces; a new call must be added here on purpose.
EXPECTED_RULES = [
    {
        "apiGroups": ["botops.io"],
        "resources": ["tradingbots"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {"apiGroups": ["botops.io"], "resources": ["tradingbots/status"], "verbs": ["get", "patch"]},
    {"apiGroups": ["botops.io"], "resources": ["backtests"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["botops.io"], "resources": ["backtests/status"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "create", "update"]},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": ["get", "create", "update"],
    },
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "create", "update"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]


@pytest.mark.parametrize("cluster_wide", [True, False], ids=["cluster-wide", "namespaced"])
def test_chart_installs_and_grants_the_operator_exactly_what_it_uses(
    cluster_wide: bool,
    control_plane: ControlPlane,
    kube_client: client.ApiClient,
    namespace: str,
    migrated_database_url: str,
    repository: BotRepository,
    tmp_path: Path,
    user_id: int,
) -> None:
    release = f"tbo-{namespace}"
    values: dict[str, Any] = {
        "database": {"url": migrated_database_url},
        "migrations": {"enabled": False},
        "replicas": 2,
        "operator": {"watchNamespace": namespace, "botsNamespace": namespace},
        "rbac": {"clusterWide": cluster_wide},
    }
    with helm.Config(kubeconfig_path=str(control_plane.kubeconfig_path), namespace=namespace) as cfg:
        installed = cfg.install(str(CHART), release, values, namespace=namespace, timeout=120)
        try:
            manifest = list(yaml.safe_load_all(installed["manifest"]))
            pdb = next(d for d in manifest if d and d["kind"] == "PodDisruptionBudget")
            assert pdb["apiVersion"] == "policy/v1beta1"  # chosen from the 1.20 cluster's capabilities
            apps = client.AppsV1Api(kube_client)
            deployment = apps.read_namespaced_deployment(f"{release}-tradingbot-operator", namespace)
            assert deployment.spec.replicas == 2
            rbac = client.RbacAuthorizationV1Api(kube_client)
            role = (
                rbac.read_cluster_role(f"{release}-tradingbot-operator")
                if cluster_wide
                else rbac.read_namespaced_role(f"{release}-tradingbot-operator", namespace)
            )
            rules = [kube_client.sanitize_for_serialization(r) for r in role.rules]
            assert rules == EXPECTED_RULES
            _operator_works_with_the_chart_identity(
                control_plane, kube_client, namespace, release, migrated_database_url, repository, tmp_path, user_id
            )
        finally:
            cfg.uninstall(release, ignore_not_found=True)


def _operator_works_with_the_chart_identity(
    plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    release: str,
    database_url: str,
    repository: BotRepository,
    tmp_path: Path,
    user_id: int,
) -> None:
    kubeconfig = plane.write_service_account_kubeconfig(
        namespace, f"{release}-tradingbot-operator", tmp_path / "operator.kubeconfig"
    )
    operator = OperatorProcess(
        plane,
        database_url,
        namespace,
        tmp_path,
        user_id=user_id,
        kubeconfig=kubeconfig,
        extra_env={"BOTOPS_LEADER_LEASE_NAME": f"{release}-tradingbot-operator-leader"},
    )
    try:
        operator.wait_for_log("Trading service running")
        row = insert_row(repository, user_id, "chart rbac")
        from_row = f"chart-rbac-{row}"
        wait_for(lambda: get_pod(api, namespace, pod_name(from_row)), 30, "the database bot's pod")
        apply_bot(api, namespace, "from-git")
        wait_for(lambda: get_pod(api, namespace, pod_name("from-git")), 30, "the applied bot's pod")
        objects = client.CustomObjectsApi(api)
        objects.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, from_row, {"spec": {"broker": {"cash": 1}}}
        )
        wait_for(
            lambda: any(e["reason"] == "HandEditReverted" for e in events(api, namespace, from_row)),
            30,
            "the hand edit reverted",
        )
        backtest = {"apiVersion": c.API_VERSION, "kind": c.BACKTEST_KIND, "metadata": {"name": "of-git"}}
        backtest["spec"] = {"botRef": {"name": "from-git"}, "data": {"bars": 500}}
        objects.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.BACKTEST_PLURAL, backtest)
        wait_for(lambda: get_pod(api, namespace, backtest_pod_name("of-git")), 30, "the backtest's pod")
        objects.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, "from-git", {"spec": {"suspended": True}}
        )
        wait_for(lambda: phase(get_bot(api, namespace, "from-git")) == "Suspended", 30, "suspended")
        objects.delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, "from-git")
        wait_for(
            lambda: (r := repository.get_bot_by_ref(namespace, "from-git")) and r.status == "stopped",
            30,
            "the deleted bot's row stopped",
        )
        log = operator.log()
        assert "Forbidden" not in log and "(403)" not in log, log[-3000:]
    finally:
        operator.close()
