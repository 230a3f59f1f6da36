"""The Helm chart, with the real Helm engine (helm-python-sdk embeds Helm 4; no binary needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "tradingbot-operator"
DB = {"database": {"url": "postgresql://bots@db.example:5432/bots"}}
DIGEST = "sha256:" + "0" * 64

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": DB,
    "existing-secret": {"database": {"existingSecret": "pg", "existingSecretKey": "dsn"}},
    "namespaced": {
        **DB,
        "rbac": {"clusterWide": False},
        "operator": {"watchNamespace": "bots", "botsNamespace": "bots"},
    },
    "cluster-wide": {**DB, "rbac": {"clusterWide": True}},
    "cert-manager": {**DB, "webhook": {"certManager": {"enabled": True}}},
    "no-webhook": {**DB, "webhook": {"enabled": False}},
    "ha-monitored": {
        **DB,
        "replicas": 3,
        "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        "grafana": {"dashboard": {"enabled": True}},
        "networkPolicy": {"enabled": True},
        "operator": {"userId": 0},
    },
    "runtime-overrides": {
        **DB,
        "database": {**DB["database"], "runtimeUrl": "postgresql://runtime@db/bots"},
        "runtime": {
            "image": {"repository": "registry.example/bot", "tag": "2"},
            "heartbeatSeconds": 5,
            "env": {"HTTPS_PROXY": "http://proxy:3128"},
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        },
    },
    "pinned-by-digest": {**DB, "image": {"digest": DIGEST}},
    "sharded": {**DB, "replicas": 2, "operator": {"shards": 3}},
}


def render(values: dict[str, Any], namespace: str = "ops") -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values=values, name="tbo", namespace=namespace, is_install=True)
    return [
        doc
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_chart_lints_strictly_for_old_and_new_clusters(values: dict[str, Any]) -> None:
    for kube in ("v1.20.0", "v1.30.0"):
        report = helm.lint(CHART, values, strict=True, kube_version=kube)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert problems == [], (kube, problems)


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_chart_renders_a_restricted_operator(values: dict[str, Any]) -> None:
    docs = render(values)
    deployment, *shards = by_kind(docs, "Deployment")  # shards render from the same template
    assert len(shards) == values.get("operator", {}).get("shards", 1) - 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]
    assert (
        container["securityContext"]["readOnlyRootFilesystem"]
        and not container["securityContext"]["allowPrivilegeEscalation"]
    )
    assert container["command"] == ["bot-operator", "run"]
    env = {e["name"]: e for e in container["env"]}
    secret = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    if values["database"].get("existingSecret"):
        assert secret == {"name": "pg", "key": "dsn"}
    else:
        assert secret == {"name": "tbo-tradingbot-operator-database", "key": "url"}
    assert all("postgresql://" not in str(e.get("value", "")) for e in container["env"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_replicas_bring_spread_and_a_disruption_budget() -> None:
    single = render(DB)
    assert not by_kind(single, "PodDisruptionBudget")
    ha = render(VALUE_SETS["ha-monitored"])
    (pdb,) = by_kind(ha, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    spread = by_kind(ha, "Deployment")[0]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
    kinds = {d["kind"] for d in ha}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap", "NetworkPolicy"} <= kinds
    rules = {r["alert"] for g in by_kind(ha, "PrometheusRule")[0]["spec"]["groups"] for r in g["rules"]}
    assert rules == {
        "TradingBotHeartbeatStale",
        "TradingBotInError",
        "TradingBotOperatorDown",
        "TradingBotDailyLossHalt",
    }
    dashboard = yaml.safe_load(by_kind(ha, "ConfigMap")[0]["data"]["tradingbots.json"])
    titles = {p["title"] for p in dashboard["panels"]}
    assert {
        "Fleet by phase",
        "Equity per bot",
        "PnL per bot",
        "Heartbeat age",
        "Reconcile errors (per minute)",
    } <= titles


def test_runtime_defaults_reach_the_operator() -> None:
    (deployment,) = by_kind(render(VALUE_SETS["runtime-overrides"]), "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BOTOPS_RUNTIME_IMAGE"] == "registry.example/bot:2"
    assert env["BOTOPS_RUNTIME_HEARTBEAT_SECONDS"] == "5"
    assert yaml.safe_load(env["BOTOPS_RUNTIME_ENV"]) == {"HTTPS_PROXY": "http://proxy:3128"}
    assert env["BOTOPS_RUNTIME_MEMORY_LIMIT"] == "256Mi"


def test_image_digest_pins_the_operator_migrations_and_runtime() -> None:
    docs = render(VALUE_SETS["pinned-by-digest"])
    pods = [d["spec"]["template"]["spec"] for d in by_kind(docs, "Deployment") + by_kind(docs, "Job")]
    env = {e["name"]: e.get("value") for e in pods[0]["containers"][0]["env"]}
    images = [c["image"] for pod in pods for c in pod["containers"]] + [env["BOTOPS_RUNTIME_IMAGE"]]
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert images == [f"tradingbot-operator:{version}@{DIGEST}"] * 3


def test_migration_job_is_a_pre_install_hook() -> None:
    (job,) = by_kind(render(DB), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["bot-operator", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert not by_kind(render({**DB, "migrations": {"enabled": False}}), "Job")


def test_migration_pods_get_a_network_policy_before_they_start() -> None:
    docs = render(VALUE_SETS["ha-monitored"])
    (job,) = by_kind(docs, "Job")
    (policy,) = [p for p in by_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("-migrate")]
    hook, job_hook = policy["metadata"]["annotations"], job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == job_hook["helm.sh/hook"]
    assert int(hook["helm.sh/hook-weight"]) < int(job_hook["helm.sh/hook-weight"])
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert "ingress" not in policy["spec"]  # nothing reaches them
    assert {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]} == {53, 5432}


def test_chart_crd_is_the_generated_one() -> None:
    generated = (CHART.parents[1] / "crds" / "tradingbots.botops.io.yaml").read_text()
    assert (CHART / "crds" / "tradingbots.botops.io.yaml").read_text() == generated


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "database.url is required without database.existingSecret"),
        (
            {**DB, "operator": {"watchNamespace": "a", "botsNamespace": "b"}},
            "operator.botsNamespace must be the watched namespace",
        ),
        ({**DB, "replicas": 0}, "replicas"),
        ({**DB, "operator": {"logLevel": "LOUD"}}, "logLevel"),
        ({"database": {"url": "mysql://root@db/bots"}}, "url"),
        ({**DB, "image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({**DB, "operatr": {}}, "operatr"),
    ],
)
def test_bad_values_are_refused_with_the_field(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    assert message in str(caught.value)


def test_shards_are_one_deployment_each_with_its_own_index_and_pods() -> None:
    deployments = [d for d in render(VALUE_SETS["sharded"]) if d["kind"] == "Deployment"]
    assert [d["metadata"]["name"] for d in deployments] == [f"tbo-tradingbot-operator-shard-{i}" for i in range(3)]
    for index, deployment in enumerate(deployments):
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert (env["BOTOPS_SHARD_INDEX"], env["BOTOPS_SHARD_COUNT"]) == (str(index), "3")
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["botops.io/shard"] == str(index)  # a shard's Deployment never adopts another's pods
        assert deployment["spec"]["replicas"] == 2  # each shard with its own standby
    (single,) = [d for d in render(DB) if d["kind"] == "Deployment"]
    assert "botops.io/shard" not in single["spec"]["selector"]["matchLabels"]
    assert {e["name"]: e.get("value") for e in single["spec"]["template"]["spec"]["containers"][0]["env"]}[
        "BOTOPS_SHARD_COUNT"
    ] == "1"


def test_the_webhook_has_the_operators_rules_and_reaches_every_replica() -> None:
    from bot_operator.builders.webhook import WEBHOOK_PATH, webhook_rules

    docs = render(VALUE_SETS["defaults"])
    (configuration,) = by_kind(docs, "ValidatingWebhookConfiguration")
    (webhook,) = configuration["webhooks"]
    client_config = webhook.pop("clientConfig")
    assert webhook == webhook_rules()  # the same object the operator builds in its self-managed mode
    service = client_config["service"]
    assert service["path"] == WEBHOOK_PATH and service["namespace"] == "ops"
    (svc,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == service["name"]]
    (deployment,) = by_kind(docs, "Deployment")
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]  # leader and standbys alike
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BOTOPS_OPERATOR_USERNAMES"] == "system:serviceaccount:ops:tbo-tradingbot-operator"
    (secret,) = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-webhook-tls")]
    assert client_config["caBundle"] == secret["data"]["ca.crt"]
    assert {"ca.crt", "tls.crt", "tls.key"} <= set(secret["data"])

    managed = render(VALUE_SETS["cert-manager"])
    (configuration,) = by_kind(managed, "ValidatingWebhookConfiguration")
    assert configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"ops/{service['name']}"
    assert "caBundle" not in configuration["webhooks"][0]["clientConfig"]
    (certificate,) = by_kind(managed, "Certificate")
    assert certificate["spec"]["dnsNames"][0] == f"{service['name']}.ops.svc"
    assert not [s for s in by_kind(managed, "Secret") if s["metadata"]["name"].endswith("-webhook-tls")]
    assert not by_kind(render(VALUE_SETS["no-webhook"]), "ValidatingWebhookConfiguration")


def test_by_default_the_operator_is_namespaced_and_its_bots_live_apart() -> None:
    docs = render(VALUE_SETS["defaults"])
    assert not by_kind(docs, "ClusterRoleBinding") or all(
        b["roleRef"]["name"].endswith("namespace-reader-ops") for b in by_kind(docs, "ClusterRoleBinding")
    )
    (namespace,) = by_kind(docs, "Namespace")
    assert namespace["metadata"]["name"] == "ops-bots"
    assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "tbo-tradingbot-operator"]
    assert role["metadata"]["namespace"] == "ops-bots"
    (deployment,) = by_kind(docs, "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BOTOPS_NAMESPACE"] == "ops-bots" and env["BOTOPS_BOTS_NAMESPACE"] == "ops-bots"
    assert "BOTOPS_ALL_NAMESPACES" not in env
